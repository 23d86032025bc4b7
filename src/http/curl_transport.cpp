#include "http/curl_transport.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <utility>

#include "common/redact.hpp"
#include "common/text.hpp"
#include "common/url.hpp"

namespace pc {
namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

struct SlistDeleter {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};

struct Sink {
  std::string body;
  Headers headers;
  std::size_t max_body = 0;
  bool too_large = false;
};

// libcurl callbacks: C linkage semantics, must never throw.
size_t on_body(char* data, size_t size, size_t count, void* user) noexcept {
  auto* sink = static_cast<Sink*>(user);
  const size_t n = size * count;
  if (sink->body.size() + n > sink->max_body) {
    sink->too_large = true;
    return 0;  // aborts the transfer
  }
  try {
    sink->body.append(data, n);
  } catch (...) {
    return 0;
  }
  return n;
}

size_t on_header(char* data, size_t size, size_t count, void* user) noexcept {
  auto* sink = static_cast<Sink*>(user);
  const size_t n = size * count;
  try {
    std::string_view line(data, n);
    if (line.rfind("HTTP/", 0) == 0) {
      sink->headers.clear();  // a new response (redirect, 100-continue)
    }
    auto colon = line.find(':');
    if (colon != std::string_view::npos) {
      sink->headers.emplace_back(std::string(line.substr(0, colon)), trim(line.substr(colon + 1)));
    }
  } catch (...) {
    return 0;
  }
  return n;
}

// "host:port" of a URL, without any user-info, for messages.
// "" when the URL does not parse (libcurl's own reason says so then).
std::string host_of(std::string_view url) {
  auto parsed = parse_url(strip_userinfo(url));
  if (!parsed) {
    return "";
  }
  return parsed->port.empty() ? parsed->host : parsed->host + ":" + parsed->port;
}

std::string size_text(std::size_t bytes) {
  constexpr std::size_t kMiB = std::size_t{1} << 20;
  if (bytes >= kMiB && bytes % kMiB == 0) {
    return std::to_string(bytes / kMiB) + " MiB";
  }
  return std::to_string(bytes) + " bytes";
}

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

}  // namespace

std::optional<std::string> HttpResponse::header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (iequals(key, name)) {
      return value;
    }
  }
  return std::nullopt;
}

std::vector<TransportOutcome> HttpTransport::send_all(const std::vector<HttpRequest>& requests) {
  std::vector<TransportOutcome> outcomes(requests.size());
  for (std::size_t i = 0; i < requests.size(); ++i) {
    try {
      outcomes[i].response = send(requests[i]);
    } catch (const TransportError& e) {
      outcomes[i].error = e;
    }
  }
  return outcomes;
}

HttpTransport::Ticket HttpTransport::start(const HttpRequest& request) {
  const Ticket ticket = new_ticket();
  TransportOutcome outcome;
  try {
    outcome.response = send(request);
  } catch (const TransportError& e) {
    outcome.error = e;
  }
  answered_.emplace_back(ticket, std::move(outcome));
  return ticket;
}

std::vector<std::pair<HttpTransport::Ticket, TransportOutcome>> HttpTransport::poll(
    std::chrono::milliseconds /*wait*/) {
  return std::exchange(answered_, {});
}

namespace {

struct EasyDeleter {
  void operator()(CURL* curl) const { curl_easy_cleanup(curl); }
};
using EasyPtr = std::unique_ptr<CURL, EasyDeleter>;

struct MultiDeleter {
  void operator()(CURLM* multi) const { curl_multi_cleanup(multi); }
};

EasyPtr new_easy() {
  EasyPtr curl(curl_easy_init());
  if (!curl) {
    throw TransportError("cannot initialise libcurl", false);
  }
  return curl;
}

}  // namespace

// One request in flight, on its easy handle, whose options point into it.
struct CurlTransport::Transfer {
  EasyPtr easy;
  Sink sink;
  std::unique_ptr<curl_slist, SlistDeleter> headers;
  char error_buffer[CURL_ERROR_SIZE] = {};
  std::string url;
  Ticket ticket = 0;  // of start(); 0 = of send_all
  // start()'s copy of its request: libcurl reads the body from it while the
  // transfer runs (CURLOPT_POSTFIELDS is not copied).
  HttpRequest request;
};

// Every request goes through one multi handle, whose connection cache they
// all share: send() as a batch of one, send_all's batches and start()'s
// transfers. Their easy handles are kept for reuse once done. The multi
// handle is cleaned up first (members are destroyed in reverse order).
struct CurlTransport::Handle {
  std::vector<EasyPtr> spare;  // easy handles of finished transfers
  std::map<Ticket, std::unique_ptr<Transfer>> started;
  std::vector<std::pair<Ticket, TransportOutcome>> finished;  // for poll()
  std::unique_ptr<CURLM, MultiDeleter> multi;
  long max_in_flight;

  explicit Handle(long most) : max_in_flight(most) {}
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  // Transfers still in flight leave the multi handle before it is cleaned up.
  ~Handle() {
    for (auto& [ticket, transfer] : started) {
      curl_multi_remove_handle(multi.get(), transfer->easy.get());
    }
  }

  EasyPtr take_easy() {
    if (spare.empty()) {
      return new_easy();
    }
    EasyPtr easy = std::move(spare.back());
    spare.pop_back();
    return easy;
  }

  // `transfer` leaves the multi handle; its easy handle goes back to the spares.
  void retire(Transfer& transfer) {
    curl_multi_remove_handle(multi.get(), transfer.easy.get());
    spare.push_back(std::move(transfer.easy));
  }

  CURLM* multi_handle() {
    if (!multi) {
      multi.reset(curl_multi_init());
      if (!multi) {
        throw TransportError("cannot initialise libcurl's multi interface", false);
      }
      curl_multi_setopt(multi.get(), CURLMOPT_MAX_TOTAL_CONNECTIONS, max_in_flight);
      curl_multi_setopt(multi.get(), CURLMOPT_MAX_HOST_CONNECTIONS, max_in_flight);
    }
    return multi.get();
  }
};

CurlTransport::CurlTransport(TlsOptions tls, std::chrono::milliseconds default_timeout,
                             long max_in_flight, std::size_t max_body_bytes)
    : handle_(std::make_unique<Handle>(max_in_flight)),
      tls_(std::move(tls)),
      default_timeout_(default_timeout),
      max_body_bytes_(max_body_bytes) {
  global_init();
}

CurlTransport::~CurlTransport() = default;

void CurlTransport::configure(Transfer& transfer, const HttpRequest& request) const {
  CURL* curl = transfer.easy.get();
  // Keeps the connection cache, so the next request reuses the connection.
  curl_easy_reset(curl);
  transfer.sink.max_body = max_body_bytes_;
  transfer.url = request.url;

  constexpr std::chrono::milliseconds kFallbackTimeout{30000};
  constexpr std::chrono::milliseconds kMaxConnectTimeout{10000};
  auto timeout = request.timeout.count() > 0 ? request.timeout : default_timeout_;
  if (timeout.count() <= 0) {
    timeout = kFallbackTimeout;  // never wait forever
  }
  const auto connect_timeout = std::min(timeout, kMaxConnectTimeout);

  for (const auto& [key, value] : request.headers) {
    std::string line = key + ": " + value;
    curl_slist* appended = curl_slist_append(transfer.headers.get(), line.c_str());
    if (appended == nullptr) {
      throw TransportError("out of memory building request headers", false, false);
    }
    (void)transfer.headers.release();  // `appended` is the same list, now one longer
    transfer.headers.reset(appended);
  }

  curl_easy_setopt(curl, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  if (request.method == "GET") {
    curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
  } else if (request.method == "HEAD") {
    curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  } else if (!request.body.empty() || request.method != "DELETE") {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, request.body.c_str());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
                     static_cast<curl_off_t>(request.body.size()));
  }
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, transfer.headers.get());
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(connect_timeout.count()));
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 5L);
#if LIBCURL_VERSION_NUM >= 0x075500  // 7.85.0
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#endif
  // A declared Content-Length over the limit fails before any byte arrives;
  // the write callback catches bodies without one.
  curl_easy_setopt(curl, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(max_body_bytes_));
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &transfer.sink);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &transfer.sink);
  curl_easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, "");
  if (!tls_.ca_file.empty()) {
    curl_easy_setopt(curl, CURLOPT_CAINFO, tls_.ca_file.c_str());
  }
  if (tls_.insecure_skip_verify) {
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, transfer.error_buffer);
}

HttpResponse CurlTransport::finish(Transfer& transfer, int curl_code) const {
  const auto rc = static_cast<CURLcode>(curl_code);
  const std::string host = host_of(transfer.url);
  if (transfer.sink.too_large || rc == CURLE_FILESIZE_EXCEEDED) {
    throw TransportError(
        "response from " + host + " larger than " + size_text(max_body_bytes_) + "; refused", false,
        false);
  }
  if (rc != CURLE_OK) {
    std::string reason =
        transfer.error_buffer[0] != '\0' ? transfer.error_buffer : curl_easy_strerror(rc);
    // Name the host when libcurl's reason does not (timeouts, resets).
    if (!host.empty() && reason.find(host.substr(0, host.rfind(':'))) == std::string::npos) {
      reason = host + ": " + reason;
    }
    // A certificate that does not verify will not verify on a retry either.
    const bool tls_failure = rc == CURLE_PEER_FAILED_VERIFICATION ||
                             rc == CURLE_SSL_CACERT_BADFILE || rc == CURLE_SSL_CERTPROBLEM ||
                             rc == CURLE_SSL_ISSUER_ERROR || rc == CURLE_SSL_PINNEDPUBKEYNOTMATCH;
    throw TransportError(redact_url_userinfo(reason), rc == CURLE_OPERATION_TIMEDOUT, !tls_failure,
                         tls_failure);
  }
  HttpResponse response;
  curl_easy_getinfo(transfer.easy.get(), CURLINFO_RESPONSE_CODE, &response.status);
  response.body = std::move(transfer.sink.body);
  response.headers = std::move(transfer.sink.headers);
  return response;
}

// Through the multi handle, as a batch of one: its connections are the
// batches' and the started requests progress while it waits.
HttpResponse CurlTransport::send(const HttpRequest& request) {
  auto outcomes = send_all({request});
  if (outcomes[0].error) {
    throw *outcomes[0].error;
  }
  return std::move(*outcomes[0].response);
}

std::vector<TransportOutcome> CurlTransport::send_all(const std::vector<HttpRequest>& requests) {
  std::vector<TransportOutcome> outcomes(requests.size());
  CURLM* multi = handle_->multi_handle();
  std::vector<Transfer> transfers(requests.size());
  for (std::size_t i = 0; i < requests.size(); ++i) {
    transfers[i].easy = handle_->take_easy();
    configure(transfers[i], requests[i]);
    curl_easy_setopt(transfers[i].easy.get(), CURLOPT_PRIVATE, &transfers[i]);
    curl_multi_add_handle(multi, transfers[i].easy.get());
  }
  std::vector<std::optional<CURLcode>> results(requests.size());
  std::size_t done = 0;
  while (done < requests.size()) {
    const bool stepped = step([&](Transfer& transfer, int curl_code) {
      results[static_cast<std::size_t>(&transfer - transfers.data())] =
          static_cast<CURLcode>(curl_code);
      ++done;
    });
    if (!stepped) {
      break;
    }
    if (done < requests.size()) {
      curl_multi_poll(multi, nullptr, 0, 1000, nullptr);
    }
  }
  for (std::size_t i = 0; i < requests.size(); ++i) {
    try {
      outcomes[i].response = finish(transfers[i], results[i].value_or(CURLE_RECV_ERROR));
    } catch (const TransportError& e) {
      outcomes[i].error = e;
    }
    handle_->retire(transfers[i]);
  }
  return outcomes;
}

// One step of the multi handle: it performs, then each finished transfer
// goes to `batch_done` (send_all's) or is kept for poll() (start()'s). False
// when libcurl fails.
bool CurlTransport::step(const std::function<void(Transfer&, int)>& batch_done) {
  int running = 0;
  if (curl_multi_perform(handle_->multi.get(), &running) != CURLM_OK) {
    return false;
  }
  int queued = 0;
  while (CURLMsg* message = curl_multi_info_read(handle_->multi.get(), &queued)) {
    if (message->msg != CURLMSG_DONE) {
      continue;
    }
    Transfer* transfer = nullptr;
    curl_easy_getinfo(message->easy_handle, CURLINFO_PRIVATE, &transfer);
    if (transfer->ticket != 0) {
      started_done(*transfer, message->data.result);
    } else if (batch_done) {
      batch_done(*transfer, message->data.result);
    }
  }
  return true;
}

HttpTransport::Ticket CurlTransport::start(const HttpRequest& request) {
  CURLM* multi = handle_->multi_handle();
  auto transfer = std::make_unique<Transfer>();
  transfer->easy = handle_->take_easy();
  transfer->ticket = new_ticket();
  transfer->request = request;
  configure(*transfer, transfer->request);
  curl_easy_setopt(transfer->easy.get(), CURLOPT_PRIVATE, transfer.get());
  if (curl_multi_add_handle(multi, transfer->easy.get()) != CURLM_OK) {
    handle_->spare.push_back(std::move(transfer->easy));
    throw TransportError("cannot start a request with libcurl's multi interface", false);
  }
  const Ticket ticket = transfer->ticket;
  handle_->started.emplace(ticket, std::move(transfer));
  int running = 0;
  curl_multi_perform(multi, &running);  // on its way now (what finishes, poll() reports)
  return ticket;
}

void CurlTransport::started_done(Transfer& transfer, int curl_code) {
  const Ticket ticket = transfer.ticket;
  TransportOutcome outcome;
  try {
    outcome.response = finish(transfer, curl_code);
  } catch (const TransportError& e) {
    outcome.error = e;
  }
  handle_->finished.emplace_back(ticket, std::move(outcome));
  handle_->retire(transfer);
  handle_->started.erase(ticket);
}

std::vector<std::pair<HttpTransport::Ticket, TransportOutcome>> CurlTransport::poll(
    std::chrono::milliseconds wait) {
  if (handle_->started.empty()) {
    return std::exchange(handle_->finished, {});
  }
  CURLM* multi = handle_->multi.get();
  // Progress, then wait for a socket (at most `wait`) and progress again.
  for (int round = 0; round < 2; ++round) {
    step(nullptr);  // only start()'s are in flight here
    if (round == 0 && handle_->finished.empty() && !handle_->started.empty() && wait.count() > 0) {
      curl_multi_poll(multi, nullptr, 0, static_cast<int>(wait.count()), nullptr);
    } else {
      break;
    }
  }
  return std::exchange(handle_->finished, {});
}

}  // namespace pc
