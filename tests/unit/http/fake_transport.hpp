#pragma once
// A recording fake HttpTransport: replays scripted responses (or transport
// errors) in order, one per send(), and records every request it was sent in
// `requests` (and how many went together in `rounds`). An unscripted send() throws a TransportError
// naming the request.
//   FakeTransport t;
//   t.reply(503).fail("Connection refused").reply(200, R"({"id":"p1"})");

#include <deque>
#include <string>
#include <variant>
#include <vector>

#include "http/curl_transport.hpp"
#include "http/retry.hpp"

namespace pc::testing {

class FakeTransport : public HttpTransport {
 public:
  // Queue a response: status, body, headers.
  FakeTransport& reply(long status, std::string body = "", Headers headers = {}) {
    HttpResponse r;
    r.status = status;
    r.body = std::move(body);
    r.headers = std::move(headers);
    script_.emplace_back(std::move(r));
    return *this;
  }
  // Queue a transport failure (connection refused, timeout...).
  FakeTransport& fail(std::string message, bool timed_out = false) {
    script_.emplace_back(TransportError(message, timed_out));
    return *this;
  }
  // Queue any TransportError (e.g. a non-retryable one).
  FakeTransport& script_error(TransportError error) {
    script_.emplace_back(std::move(error));
    return *this;
  }

  HttpResponse send(const HttpRequest& request) override {
    if (!in_round_) {
      rounds.push_back(1);
    }
    requests.push_back(request);
    if (script_.empty()) {
      throw TransportError(
          "FakeTransport: no scripted response for " + request.method + " " + request.url, false);
    }
    auto next = std::move(script_.front());
    script_.pop_front();
    if (auto* error = std::get_if<TransportError>(&next)) {
      throw *error;
    }
    return std::get<HttpResponse>(next);
  }

  // A batch (ApiClient::request_all) is one round of requests sent together.
  std::vector<TransportOutcome> send_all(const std::vector<HttpRequest>& batch) override {
    rounds.push_back(batch.size());
    in_round_ = true;
    auto outcomes = HttpTransport::send_all(batch);
    in_round_ = false;
    return outcomes;
  }

  std::size_t pending() const { return script_.size(); }
  std::vector<HttpRequest> requests;
  // The size of each round: a batch, or a request sent alone (1).
  std::vector<std::size_t> rounds;

 private:
  bool in_round_ = false;
  std::deque<std::variant<HttpResponse, TransportError>> script_;
};

// Records the delays it was asked to sleep; never sleeps.
class FakeSleeper : public Sleeper {
 public:
  bool sleep_for(std::chrono::milliseconds d) override {
    slept.push_back(d);
    return !interrupted;
  }
  void sleep_through(std::chrono::milliseconds d) override { slept.push_back(d); }
  std::vector<std::chrono::milliseconds> slept;
  bool interrupted = false;
};

}  // namespace pc::testing
