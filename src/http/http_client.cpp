#include "http/http_client.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <mutex>

#include "common/redact.hpp"

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
      auto value = line.substr(colon + 1);
      auto begin = value.find_first_not_of(" \t");
      auto end = value.find_last_not_of(" \t\r\n");
      sink->headers.emplace_back(
          std::string(line.substr(0, colon)),
          begin == std::string_view::npos ? "" : std::string(value.substr(begin, end - begin + 1)));
    }
  } catch (...) {
    return 0;
  }
  return n;
}

// "host:port" of a URL, without any user-info, for messages.
std::string host_of(std::string_view url) {
  auto scheme = url.find("://");
  std::string_view rest = scheme == std::string_view::npos ? url : url.substr(scheme + 3);
  rest = rest.substr(0, rest.find_first_of("/?#"));
  if (auto at = rest.rfind('@'); at != std::string_view::npos) {
    rest.remove_prefix(at + 1);
  }
  return std::string(rest);
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

struct CurlTransport::Handle {
  CURL* curl = nullptr;
  ~Handle() {
    if (curl != nullptr) {
      curl_easy_cleanup(curl);
    }
  }
};

CurlTransport::CurlTransport(TlsOptions tls, std::chrono::milliseconds default_timeout,
                             std::size_t max_body_bytes)
    : handle_(std::make_unique<Handle>()),
      tls_(std::move(tls)),
      default_timeout_(default_timeout),
      max_body_bytes_(max_body_bytes) {
  global_init();
  handle_->curl = curl_easy_init();
  if (handle_->curl == nullptr) {
    throw TransportError("cannot initialise libcurl", false);
  }
}

CurlTransport::~CurlTransport() = default;

HttpResponse CurlTransport::send(const HttpRequest& request) {
  CURL* curl = handle_->curl;
  // Keeps the connection cache, so the next request reuses the connection.
  curl_easy_reset(curl);
  Sink sink;
  sink.max_body = max_body_bytes_;

  constexpr std::chrono::milliseconds kFallbackTimeout{30000};
  constexpr std::chrono::milliseconds kMaxConnectTimeout{10000};
  auto timeout = request.timeout.count() > 0 ? request.timeout : default_timeout_;
  if (timeout.count() <= 0) {
    timeout = kFallbackTimeout;  // never wait forever
  }
  const auto connect_timeout = std::min(timeout, kMaxConnectTimeout);

  std::unique_ptr<curl_slist, SlistDeleter> headers;
  for (const auto& [key, value] : request.headers) {
    std::string line = key + ": " + value;
    curl_slist* appended = curl_slist_append(headers.get(), line.c_str());
    if (appended == nullptr) {
      throw TransportError("out of memory building request headers", false, false);
    }
    (void)headers.release();  // `appended` is the same list, now one longer
    headers.reset(appended);
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
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers.get());
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
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &sink);
  curl_easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, "");
  if (!tls_.ca_file.empty()) {
    curl_easy_setopt(curl, CURLOPT_CAINFO, tls_.ca_file.c_str());
  }
  if (tls_.insecure_skip_verify) {
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  char error_buffer[CURL_ERROR_SIZE] = {};
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error_buffer);

  const CURLcode rc = curl_easy_perform(curl);
  const std::string host = host_of(request.url);
  if (sink.too_large || rc == CURLE_FILESIZE_EXCEEDED) {
    throw TransportError(
        "response from " + host + " larger than " + size_text(max_body_bytes_) + "; refused", false,
        false);
  }
  if (rc != CURLE_OK) {
    std::string reason = error_buffer[0] != '\0' ? error_buffer : curl_easy_strerror(rc);
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
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &response.status);
  response.body = std::move(sink.body);
  response.headers = std::move(sink.headers);
  return response;
}

}  // namespace pc
