#pragma once
// The HTTP seam. HttpTransport sends one request and returns the response, or
// throws TransportError when no response came (DNS, connect, reset, timeout,
// oversized body). CurlTransport is the libcurl implementation; unit tests use
// a recording fake (tests/unit/http/fake_transport.hpp).

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pc {

using Headers = std::vector<std::pair<std::string, std::string>>;

struct HttpRequest {
  std::string method;
  std::string url;
  std::string body;
  Headers headers;
  std::chrono::milliseconds timeout{0};  // 0 = the transport's default
};

struct HttpResponse {
  long status = 0;
  std::string body;
  Headers headers;
  // Case-insensitive header lookup.
  std::optional<std::string> header(std::string_view name) const;
};

// No response: connection refused, DNS failure, timeout, reset, or a body over
// the size limit. The message names the host and libcurl's reason, with any
// URL password redacted.
class TransportError : public std::runtime_error {
 public:
  TransportError(const std::string& message, bool timed_out, bool retryable = true,
                 bool tls = false)
      : std::runtime_error(message), timed_out_(timed_out), retryable_(retryable), tls_(tls) {}
  bool timed_out() const { return timed_out_; }
  // False when trying again cannot help (an oversized response body).
  bool retryable() const { return retryable_; }
  // The server's certificate did not verify (PREFECT_API_SSL_CERT_FILE decides).
  bool tls() const { return tls_; }

 private:
  bool timed_out_;
  bool retryable_;
  bool tls_;
};

// The outcome of one request of a batch: a response, or why none came.
struct TransportOutcome {
  std::optional<HttpResponse> response;
  std::optional<TransportError> error;
};

class HttpTransport {
 public:
  // A request started with start(), until poll() returns its outcome.
  using Ticket = std::uint64_t;

  virtual ~HttpTransport() = default;
  virtual HttpResponse send(const HttpRequest& request) = 0;
  // Sends every request, possibly at the same time, and returns their
  // outcomes in the same order. The default sends them one after another.
  virtual std::vector<TransportOutcome> send_all(const std::vector<HttpRequest>& requests);

  // Requests that go on while the caller does other work (the worker's
  // loop): start() hands one over and returns at once; poll() lets those in
  // flight progress for up to `wait` and returns the ones that finished.
  // The defaults (a fake's) send the request inside start() and return its
  // outcome from the next poll(): correct, not concurrent.
  virtual Ticket start(const HttpRequest& request);
  virtual std::vector<std::pair<Ticket, TransportOutcome>> poll(std::chrono::milliseconds wait);

 private:
  Ticket next_ticket_ = 1;
  std::vector<std::pair<Ticket, TransportOutcome>> answered_;  // by the default start()

 protected:
  Ticket new_ticket() { return next_ticket_++; }
};

struct TlsOptions {
  std::filesystem::path ca_file;  // empty = system bundle
  bool insecure_skip_verify = false;
};

// libcurl, one multi handle for every request, so that all share its
// connections (keep-alive) and a started request progresses while another
// one is waited for; not thread-safe: one instance per thread. Each request has a total timeout
// (the request's, else `default_timeout`, else 30 s) and a connect timeout of min(10 s, total).
// Redirects are followed (http/https only). Responses larger than
// `max_body_bytes` are aborted with a non-retryable TransportError, so a
// runaway body never sits in memory.
class CurlTransport final : public HttpTransport {
 public:
  CurlTransport(TlsOptions tls, std::chrono::milliseconds default_timeout,
                long max_in_flight = kDefaultMaxInFlight, std::size_t max_body_bytes = 64u << 20);
  ~CurlTransport() override;
  CurlTransport(const CurlTransport&) = delete;
  CurlTransport& operator=(const CurlTransport&) = delete;

  HttpResponse send(const HttpRequest& request) override;
  // Concurrent, through libcurl's multi interface: at most `max_in_flight`
  // connections at once (HTTP/2 multiplexes on one where the server offers
  // it), kept alive between batches.
  std::vector<TransportOutcome> send_all(const std::vector<HttpRequest>& requests) override;
  // On the same multi handle (and connections) as send_all.
  Ticket start(const HttpRequest& request) override;
  std::vector<std::pair<Ticket, TransportOutcome>> poll(std::chrono::milliseconds wait) override;

  // As Prefect's own client (httpx limits of 16 connections).
  static constexpr long kDefaultMaxInFlight = 16;

 private:
  struct Handle;
  struct Transfer;
  void configure(Transfer& transfer, const HttpRequest& request) const;
  HttpResponse finish(Transfer& transfer, int curl_code) const;
  // A finished transfer of start(): its outcome is kept for poll().
  void started_done(Transfer& transfer, int curl_code);
  bool step(const std::function<void(Transfer&, int)>& batch_done);

  std::unique_ptr<Handle> handle_;
  TlsOptions tls_;
  std::chrono::milliseconds default_timeout_;
  std::size_t max_body_bytes_;
};

}  // namespace pc
