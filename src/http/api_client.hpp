#pragma once
// The Prefect API over HTTP: base URL, auth, API-version header, JSON bodies,
// retries (see retry.hpp), one debug log line per attempt, and errors that
// say what failed, with the server's `detail`, and never a secret.

#include <chrono>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/clock.hpp"
#include "common/error.hpp"
#include "http/curl_transport.hpp"
#include "http/retry.hpp"
#include "log/logger.hpp"

namespace pc {

struct ApiOptions {
  std::string base_url;     // ends in /api, no trailing slash
  std::string api_key;      // Bearer (Prefect Cloud)
  std::string auth_string;  // user:pass, Basic (self-hosted); wins over the key
  std::chrono::milliseconds request_timeout{30000};
};

struct RequestOptions {
  bool retry = true;
  // Total budget for the call including retries; nullopt = the policy's.
  std::optional<std::chrono::milliseconds> deadline;
  // A call that must not be lost (the pause): its retries wait their delay
  // even after a first stop signal (Sleeper::sleep_through); only a second
  // one ends them. Calls started with start() are never ended by a signal.
  bool through_stop = false;
  // The server answers it without its database's write lock (a read;
  // Prefect queues POST /events for its event persister): after a busy
  // answer, a started call so marked never waits its turn, nor holds up
  // another's, and a round of such calls still goes together.
  bool takes_no_lock = false;
};

// nlohmann::json's move is noexcept; clang-tidy cannot see through it.
struct ApiResponse {  // NOLINT(bugprone-exception-escape)
  long status = 0;
  nlohmann::json body;  // null when the body is empty
};

// A non-2xx answer (other than 404/409, which request() returns).
class HttpStatusError : public Error {
 public:
  HttpStatusError(const std::string& message, Hint hint, long status, std::string detail)
      : Error(ExitCode::kApi, message, hint), status_(status), detail_(std::move(detail)) {}

  long status() const { return status_; }
  const std::string& detail() const { return detail_; }

 private:
  long status_;
  std::string detail_;
};

class ApiClient {
 public:
  // `sleeper` waits the retries' delays and `clock` measures their budget.
  ApiClient(HttpTransport& transport, ApiOptions options, Logger log, RetryPolicy policy,
            Sleeper& sleeper, const Clock& clock = real_clock());
  ~ApiClient();
  ApiClient(const ApiClient&) = delete;
  ApiClient& operator=(const ApiClient&) = delete;

  // Sends `method base_url+path` with an optional JSON body. Returns 2xx, 404
  // and 409 responses (body parsed; null when empty). Retries transport errors
  // and 408/429/502/503 (not 500, as Prefect's client) with backoff or the
  // server's Retry-After, within policy.max_attempts and the deadline
  // (default policy.max_total), resending the same body; each retry is logged
  // at warn. Throws HttpStatusError for other statuses and for exhausted
  // status retries, and pc::Error(kApi) when the server cannot be reached, a
  // stop signal cut a retry's delay short (options.through_stop: a second
  // one), or a 2xx body is malformed JSON. Messages hold
  // the method, the URL (user-info redacted) and the server's detail, never
  // the key or auth string.
  ApiResponse request(std::string_view method, std::string_view path,
                      const std::optional<nlohmann::json>& body = std::nullopt,
                      const RequestOptions& options = {});

  // Several independent calls at once (HttpTransport::send_all), each with
  // request()'s retries: the calls to be tried again wait once for the
  // longest of their delays and go out together again. Results are in the
  // calls' order, each the response or the exception request() would throw.
  // Once a round sent together gets a 503 or 429 (Prefect's server on SQLite
  // answers concurrent writes so), later rounds are sent one after another.
  struct Call {
    std::string method;
    std::string path;
    std::optional<nlohmann::json> body;
    class State;  // its attempts (api_client.cpp)
  };
  struct Result {
    std::optional<ApiResponse> response;
    std::exception_ptr error;
    // The response, or rethrows the error.
    const ApiResponse& get() const;
  };
  std::vector<Result> request_all(const std::vector<Call>& calls,
                                  const RequestOptions& options = {});

  // Calls in flight while the caller does other work (the worker's loop):
  // start() sends one and returns at once (it never throws for the
  // transport: an attempt the transport could not start fails as a
  // transport error would); poll() lets those in flight progress for up to
  // `wait` and returns the ones that ended, each with request()'s result. A
  // call to be tried again is a timer, not a sleep: it goes out again from
  // the first poll() after its delay.
  using CallId = std::uint64_t;
  CallId start(const Call& call, const RequestOptions& options = {});
  std::vector<std::pair<CallId, Result>> poll(std::chrono::milliseconds wait);
  // Calls started and not yet returned by poll().
  std::size_t in_flight() const { return started_.size(); }

  // The base URL for messages, user-info password redacted.
  const std::string& base_url() const { return redacted_base_url_; }
  // Number of HTTP attempts made so far (for the benchmark and tests).
  long attempts() const { return attempts_; }

 private:
  HttpRequest build(std::string_view method, std::string_view path,
                    const std::optional<nlohmann::json>& body) const;

  // `text` with the key, the auth string and its parts replaced by "***".
  std::string scrub(std::string text) const;

  HttpTransport& transport_;
  ApiOptions options_;
  Logger log_;
  RetryPolicy policy_;
  Sleeper& sleeper_;
  const Clock& clock_;
  std::mt19937_64 random_;
  long attempts_ = 0;
  bool one_at_a_time_ = false;  // after a busy answer to requests sent together
  // start()'s calls: their attempts, the transport's ticket of the one in
  // flight (0 while a retry waits, or the call waits its turn) and when it
  // is due.
  struct Started {
    std::unique_ptr<Call::State> state;
    bool takes_no_lock = false;  // RequestOptions::takes_no_lock
    HttpTransport::Ticket ticket = 0;
    std::chrono::steady_clock::time_point retry_at{};
  };
  // Sends the started calls that are due (one at a time: only when none is
  // in flight, takes_no_lock calls aside); returns the time until the next one waiting for its
  // delay.
  std::chrono::milliseconds send_due();
  // A 503 or 429 to requests sent together: one at a time from now on.
  void answered_busy();
  // The outcome of started call `id`'s attempt: into `ended` when the call
  // ended, else its retry is due after its delay.
  void judge_started(CallId id, TransportOutcome outcome, bool sent_together,
                     std::vector<std::pair<CallId, Result>>& ended);
  std::map<CallId, Started> started_;
  // Attempts the transport refused to start (HttpTransport::start threw),
  // judged by the next poll().
  std::vector<std::pair<CallId, TransportOutcome>> not_started_;
  CallId next_call_ = 1;
  std::string redacted_base_url_;
  std::vector<std::string> secrets_;
};

// Percent-encodes one path segment (RFC 3986 unreserved characters kept).
std::string url_encode_segment(std::string_view segment);

// Standard base64 (for Basic auth).
std::string base64_encode(std::string_view data);

}  // namespace pc
