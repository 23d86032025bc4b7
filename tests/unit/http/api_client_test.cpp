#include "http/api_client.hpp"

#include <catch2/catch.hpp>
#include <ctime>
#include <functional>
#include <optional>
#include <sstream>
#include <thread>

#include "http/fake_transport.hpp"

using namespace pc;
using pc::testing::FakeSleeper;
using pc::testing::FakeTransport;
using std::chrono::milliseconds;

namespace {

struct Fixture {
  FakeTransport transport;
  FakeSleeper sleeper;
  std::ostringstream log_text;
  std::shared_ptr<Redactor> redactor = std::make_shared<Redactor>();
  ApiOptions options;
  RetryPolicy policy;

  Fixture() {
    options.base_url = "http://prefect:4200/api";
    policy.jitter = 0.0;
  }
  ApiClient client() { return client_with(transport); }
  // A client over another transport (one that counts what it is sent).
  ApiClient client_with(HttpTransport& other) {
    return ApiClient(other, options, Logger(LogLevel::kDebug, LogFormat::kText, redactor, log_text),
                     policy, sleeper);
  }
  std::string header(std::size_t i, const std::string& name) const {
    for (const auto& [k, v] : transport.requests.at(i).headers) {
      if (k == name)
        return v;
    }
    return "<none>";
  }
};

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.message();  // the fix of each class: tests/unit/common/hint_test.cpp
  }
  return "<no error>";
}

std::optional<Hint> hint_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.hint();
  }
  return std::nullopt;
}

}  // namespace

TEST_CASE("ApiClient sends JSON with the API version and auth headers", "[http]") {
  Fixture f;
  SECTION("Basic auth wins over the key") {
    f.options.api_key = "pnu_key";
    f.options.auth_string = "admin:pass";
    f.transport.reply(200, R"({"ok":true})");
    auto r = f.client().request("POST", "/work_pools/filter", nlohmann::json{{"limit", 1}});
    CHECK(r.status == 200);
    CHECK(r.body["ok"] == true);
    const auto& req = f.transport.requests.at(0);
    CHECK(req.method == "POST");
    CHECK(req.url == "http://prefect:4200/api/work_pools/filter");
    CHECK(req.body == R"({"limit":1})");
    CHECK(f.header(0, "Authorization") == "Basic YWRtaW46cGFzcw==");
    CHECK(f.header(0, "X-PREFECT-API-VERSION") == "0.8.4");
    CHECK(f.header(0, "Content-Type") == "application/json");
  }
  SECTION("Bearer key") {
    f.options.api_key = "pnu_key";
    f.transport.reply(204);
    auto r = f.client().request("PATCH", "/work_pools/x", nlohmann::json{{"is_paused", true}});
    CHECK(r.status == 204);
    CHECK(r.body.is_null());
    CHECK(f.header(0, "Authorization") == "Bearer pnu_key");
  }
  SECTION("no credentials, no Authorization header") {
    f.transport.reply(200, "true");
    f.client().request("GET", "/health");
    CHECK(f.header(0, "Authorization") == "<none>");
    CHECK(f.header(0, "Content-Type") == "<none>");
  }
}

TEST_CASE("ApiClient retries 503 and connection errors with backoff", "[http]") {
  Fixture f;
  f.transport.reply(503, "").fail("Connection refused").reply(200, "[]");
  auto r = f.client().request("POST", "/flow_runs/filter", nlohmann::json::object());
  CHECK(r.status == 200);
  CHECK(f.transport.requests.size() == 3);
  CHECK(f.sleeper.slept == std::vector<milliseconds>{milliseconds(1000), milliseconds(2000)});
  // The same body each time (state proposals keep their transition_id).
  CHECK(f.transport.requests[0].body == f.transport.requests[2].body);
  CHECK(f.log_text.str().find("retry 1 of 5 in 1.0 s") != std::string::npos);
  CHECK(f.log_text.str().find("POST http://prefect:4200/api/flow_runs/filter -> 503") !=
        std::string::npos);
}

TEST_CASE("ApiClient honours Retry-After on 429", "[http]") {
  Fixture f;
  f.transport.reply(429, "", {{"Retry-After", "7"}}).reply(200, "1");
  f.client().request("POST", "/flow_runs/count", nlohmann::json::object());
  CHECK(f.sleeper.slept == std::vector<milliseconds>{milliseconds(7000)});
}

TEST_CASE("ApiClient does not retry other 4xx and quotes the server's detail", "[http]") {
  Fixture f;
  f.transport.reply(422, R"({"detail":[{"loc":["body","x"],"msg":"extra fields not permitted"}]})");
  auto m = message_of([&] { f.client().request("POST", "/x", nlohmann::json::object()); });
  CHECK(m.find("POST http://prefect:4200/api/x: 422 Unprocessable Entity: ") == 0);
  CHECK(m.find("extra fields not permitted") != std::string::npos);
  CHECK(f.transport.requests.size() == 1);

  Fixture g;
  g.options.api_key = "pnu_secret_key_1";
  g.redactor->add_secret("pnu_secret_key_1");
  g.transport.reply(401, R"({"exception_message":"Unauthorized"})");
  try {
    g.client().request("GET", "/work_pools/p");
    FAIL("expected an error");
  } catch (const HttpStatusError& e) {
    CHECK(e.status() == 401);
    CHECK(e.detail() == "Unauthorized");
    CHECK(e.code() == ExitCode::kApi);
    std::string what = e.what();
    CHECK(e.hint() == Hint::kApiAuth);
    CHECK(what.find("GET http://prefect:4200/api/work_pools/p: 401 Unauthorized: Unauthorized; "
                    "fix: set PREFECT_API_AUTH_STRING") == 0);
    CHECK(what.find("pnu_secret_key_1") == std::string::npos);
  }
  CHECK(g.log_text.str().find("pnu_secret_key_1") == std::string::npos);
}

TEST_CASE("ApiClient returns 404 and 409 to the caller", "[http]") {
  Fixture f;
  f.transport.reply(404, R"({"detail":"Work pool not found."})").reply(409, "");
  auto client = f.client();
  CHECK(client.request("GET", "/work_pools/x").status == 404);
  CHECK(client.request("POST", "/work_pools/", nlohmann::json::object()).status == 409);
}

TEST_CASE("ApiClient gives up: attempts, budget, interruption, malformed JSON", "[http]") {
  SECTION("unreachable after max attempts") {
    Fixture f;
    f.policy.max_attempts = 3;
    f.transport.fail("Failed to connect to prefect port 4200: Connection refused")
        .fail("Failed to connect")
        .fail("Failed to connect to prefect port 4200: Connection refused");
    auto m = message_of([&] { f.client().request("GET", "/health"); });
    CHECK(m ==
          "cannot reach Prefect API at http://prefect:4200/api: Failed to connect to prefect "
          "port 4200: Connection refused (GET /health, after 3 attempt(s))");
    CHECK(f.sleeper.slept.size() == 2);
  }
  SECTION("503 until the attempts are used up") {
    Fixture f;
    f.policy.max_attempts = 2;
    f.transport.reply(503, "busy").reply(503, "busy");
    auto m = message_of([&] { f.client().request("GET", "/health"); });
    CHECK(m ==
          "GET http://prefect:4200/api/health: 503 Service Unavailable after 2 "
          "attempt(s): busy");
  }
  SECTION("the deadline bounds the retries") {
    Fixture f;
    f.transport.reply(503).reply(503).reply(503);
    RequestOptions options;
    options.deadline = milliseconds(2500);
    auto m = message_of([&] { f.client().request("PATCH", "/p", nlohmann::json{}, options); });
    CHECK(m ==
          "PATCH http://prefect:4200/api/p: 503 Service Unavailable; giving up after 2 "
          "attempt(s) in 1.0 s, retry budget 2.5 s");
    CHECK(f.sleeper.slept == std::vector<milliseconds>{milliseconds(1000)});
  }
  SECTION("a stop signal ends the backoff") {
    Fixture f;
    f.sleeper.interrupted = true;
    f.transport.reply(502).reply(200, "true");
    auto m = message_of([&] { f.client().request("GET", "/health"); });
    CHECK(m ==
          "GET http://prefect:4200/api/health: 502 Bad Gateway; not retried: a stop signal "
          "arrived");
    CHECK(f.transport.pending() == 1);
  }
  SECTION("no retries when asked") {
    Fixture f;
    f.transport.reply(503).reply(200);
    RequestOptions options;
    options.retry = false;
    CHECK_THROWS_AS(f.client().request("GET", "/health", std::nullopt, options), HttpStatusError);
    CHECK(f.transport.pending() == 1);
  }
  SECTION("malformed JSON") {
    Fixture f;
    f.transport.reply(200, R"({"id": "truncat)");
    auto m = message_of([&] { f.client().request("GET", "/work_pools/x"); });
    CHECK(m ==
          "GET http://prefect:4200/api/work_pools/x: malformed JSON in the response (15 "
          "bytes)");
  }
}

TEST_CASE("url_encode_segment and base64_encode", "[http]") {
  CHECK(url_encode_segment("hello world") == "hello%20world");
  CHECK(url_encode_segment("a/b?c#d%") == "a%2Fb%3Fc%23d%25");
  CHECK(url_encode_segment("flow-name_1.x~") == "flow-name_1.x~");
  CHECK(base64_encode("") == "");
  CHECK(base64_encode("f") == "Zg==");
  CHECK(base64_encode("fo") == "Zm8=");
  CHECK(base64_encode("foo") == "Zm9v");
  CHECK(base64_encode("user:pass") == "dXNlcjpwYXNz");
}

TEST_CASE("ApiClient: debug line per attempt, warn line per retry", "[http]") {
  Fixture f;
  f.transport.reply(502, "").reply(200, R"({"id":"x"})");
  f.client().request("GET", "/work_pools/etl");
  const std::string log = f.log_text.str();
  CHECK(log.find("GET http://prefect:4200/api/work_pools/etl -> 502 (") != std::string::npos);
  CHECK(log.find("GET http://prefect:4200/api/work_pools/etl -> 200 (") != std::string::npos);
  CHECK(log.find("GET http://prefect:4200/api/work_pools/etl: 502 Bad Gateway; retry 1 of 5 in "
                 "1.0 s") != std::string::npos);
  CHECK(f.header(0, "User-Agent") == std::string("prefect-cycle/") + PREFECT_CYCLE_VERSION);
  CHECK(f.header(0, "Accept") == "application/json");
}

TEST_CASE("ApiClient retry decisions by status", "[http]") {
  SECTION("408 is retried") {
    Fixture f;
    f.transport.reply(408).reply(200, "true");
    CHECK(f.client().request("GET", "/health").body == true);
    CHECK(f.transport.requests.size() == 2);
  }
  SECTION("500 is not (Prefect's client does not retry it either)") {
    Fixture f;
    f.transport.reply(500, R"({"exception_message":"Internal Server Error"})").reply(200);
    CHECK(message_of([&] { f.client().request("GET", "/x"); }) ==
          "GET http://prefect:4200/api/x: 500 Internal Server Error: Internal Server Error");
    CHECK(f.transport.pending() == 1);
  }
  SECTION("backoff grows with jitter inside +-10 %") {
    Fixture f;
    f.policy.jitter = 0.10;
    f.transport.reply(503).reply(503).reply(503).reply(200, "1");
    f.client().request("GET", "/x");
    REQUIRE(f.sleeper.slept.size() == 3);
    for (std::size_t i = 0; i < 3; ++i) {
      const long base = 1000L << i;
      CHECK(f.sleeper.slept[i].count() >= base * 9 / 10);
      CHECK(f.sleeper.slept[i].count() <= base * 11 / 10);
    }
  }
}

TEST_CASE("ApiClient Retry-After: seconds, HTTP date, capped", "[http]") {
  SECTION("an HTTP date replaces the backoff") {
    Fixture f;
    std::time_t in_20s = std::time(nullptr) + 20;
    std::tm tm{};
    gmtime_r(&in_20s, &tm);
    char date[64];
    std::strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    f.transport.reply(503, "", {{"retry-after", date}}).reply(200, "1");
    f.client().request("GET", "/x");
    REQUIRE(f.sleeper.slept.size() == 1);
    CHECK(f.sleeper.slept[0] > milliseconds(17000));
    CHECK(f.sleeper.slept[0] <= milliseconds(20000));
  }
  SECTION("never longer than the policy cap") {
    Fixture f;
    f.transport.reply(429, "", {{"Retry-After", "3600"}}).reply(200, "1");
    f.client().request("GET", "/x");
    CHECK(f.sleeper.slept == std::vector<milliseconds>{milliseconds(60000)});
  }
  SECTION("an unparsable value falls back to the backoff") {
    Fixture f;
    f.transport.reply(429, "", {{"Retry-After", "later"}}).reply(200, "1");
    f.client().request("GET", "/x");
    CHECK(f.sleeper.slept == std::vector<milliseconds>{milliseconds(1000)});
  }
}

TEST_CASE("ApiClient quotes validation errors without the echoed input", "[http]") {
  Fixture f;
  // What Prefect 3.8.8 answers to an invalid /flow_runs/filter body.
  f.transport.reply(422, R"({"exception_message":"Invalid request received.",
      "exception_detail":[{"type":"uuid_parsing","loc":["body","flow_runs","id","any_",0],
      "msg":"Input should be a valid UUID","input":"SECRET-INPUT"}],
      "request_body":{"flow_runs":{"id":{"any_":["SECRET-INPUT"]}}}})");
  try {
    f.client().request("POST", "/flow_runs/filter", nlohmann::json::object());
    FAIL("expected an error");
  } catch (const HttpStatusError& e) {
    CHECK(e.hint() == Hint::kApiAnswer);
    CHECK(e.message() ==
          "POST http://prefect:4200/api/flow_runs/filter: 422 Unprocessable Entity: Invalid "

          "request received.: body.flow_runs.id.any_.0: Input should be a valid UUID");
    CHECK(e.status() == 422);
  }
}

TEST_CASE("ApiClient 403: auth hint only where it helps", "[http]") {
  Fixture f;
  f.transport
      .reply(403,
             R"({"detail":"Work pools starting with 'Prefect' are reserved for internal use."})")
      .reply(403, R"({"detail":"Invalid CSRF token or client identifier."})")
      .reply(403, R"({"detail":"Forbidden"})");
  auto client = f.client();
  CHECK(message_of([&] { client.request("POST", "/work_pools/", nlohmann::json::object()); }) ==
        "POST http://prefect:4200/api/work_pools/: 403 Forbidden: Work pools starting with "
        "'Prefect' are reserved for internal use.");
  CHECK(hint_of([&] { client.request("POST", "/x", nlohmann::json::object()); }) == Hint::kApiCsrf);
  CHECK(hint_of([&] { client.request("GET", "/x"); }) == Hint::kApiAuth);
}

TEST_CASE("ApiClient keeps secrets out of messages and log lines", "[http]") {
  Fixture f;
  // No secret registered with the Redactor: the client must be clean alone.
  f.options.base_url = "https://user:urlpass99@prefect.example/api";
  f.options.auth_string = "admin:hunter2pw";
  f.transport.reply(401, R"({"detail":"bad credentials admin:hunter2pw / YWRtaW46aHVudGVyMnB3"})")
      .fail("Failed to connect to https://user:urlpass99@prefect.example: refused")
      .fail("Failed to connect to https://user:urlpass99@prefect.example: refused");
  f.policy.max_attempts = 2;
  auto client = f.client();
  const std::string denied = message_of([&] { client.request("GET", "/work_pools/x"); });
  CHECK(denied.find("GET https://user:***@prefect.example/api/work_pools/x: 401 Unauthorized: "
                    "bad credentials *** / ***") == 0);
  const std::string unreachable = message_of([&] { client.request("GET", "/health"); });
  CHECK(unreachable.find("cannot reach Prefect API at https://user:***@prefect.example/api") == 0);
  CHECK(client.base_url() == "https://user:***@prefect.example/api");
  for (const std::string& text : {denied, unreachable, f.log_text.str()}) {
    CHECK(text.find("hunter2pw") == std::string::npos);
    CHECK(text.find("urlpass99") == std::string::npos);
    CHECK(text.find("YWRtaW46aHVudGVyMnB3") == std::string::npos);
  }
  // The header itself still carries the real credentials.
  CHECK(f.header(0, "Authorization") == "Basic YWRtaW46aHVudGVyMnB3");
}

TEST_CASE("ApiClient does not retry an oversized response", "[http]") {
  Fixture f;
  f.transport.script_error(
      TransportError("response from prefect:4200 larger than 64 MiB; refused", false, false));
  f.transport.reply(200, "[]");
  CHECK(message_of([&] { f.client().request("POST", "/flow_runs/filter", nlohmann::json{}); }) ==
        "POST http://prefect:4200/api/flow_runs/filter: response from prefect:4200 larger than "
        "64 MiB; refused");
  CHECK(f.transport.pending() == 1);
  CHECK(f.sleeper.slept.empty());
}

TEST_CASE("ApiClient::request_all: rounds, the retries waiting once, together", "[http]") {
  Fixture f;
  // The first round: ok, 503 (retried), 500 (not retried), refused
  // (retried); the second round: the two retries, after one wait.
  f.transport.reply(200, R"({"a":1})")
      .reply(503)
      .reply(500, R"({"detail":"boom"})")
      .fail("Connection refused")
      .reply(200, R"({"b":2})")
      .reply(200, R"({"d":4})");
  auto client = f.client();
  auto results = client.request_all({{"POST", "/a", nlohmann::json::object()},
                                     {"POST", "/b", nlohmann::json{{"x", 1}}},
                                     {"PATCH", "/c", std::nullopt},
                                     {"GET", "/d", std::nullopt}});
  REQUIRE(results.size() == 4);
  CHECK(results[0].get().body == nlohmann::json{{"a", 1}});
  CHECK(results[1].get().body == nlohmann::json{{"b", 2}});
  CHECK(message_of([&] { results[2].get(); }) ==
        "PATCH http://prefect:4200/api/c: 500 Internal Server Error: boom");
  CHECK(results[3].get().body == nlohmann::json{{"d", 4}});
  REQUIRE(f.transport.requests.size() == 6);
  CHECK(f.transport.requests[4].url == "http://prefect:4200/api/b");
  CHECK(f.transport.requests[4].body == f.transport.requests[1].body);
  CHECK(f.transport.requests[5].url == "http://prefect:4200/api/d");
  CHECK(client.attempts() == 6);
  CHECK(f.sleeper.slept == std::vector<milliseconds>{milliseconds(1000)});
}

TEST_CASE("ApiClient::request_all: a stop during the wait fails the calls to retry", "[http]") {
  Fixture f;
  f.sleeper.interrupted = true;
  f.transport.reply(204).reply(503);
  auto client = f.client();
  auto results = client.request_all({{"PATCH", "/a", std::nullopt}, {"PATCH", "/b", std::nullopt}});
  CHECK(results[0].get().status == 204);
  CHECK(hint_of([&] { results[1].get(); }) == Hint::kStopped);
  CHECK(f.transport.requests.size() == 2);
}

TEST_CASE("ApiClient::request_all: after a busy answer to a round, one request at a time",
          "[http]") {
  // Counts the rounds sent through the (concurrent) send_all override.
  struct CountingTransport : FakeTransport {
    int together = 0;
    std::vector<TransportOutcome> send_all(const std::vector<HttpRequest>& batch) override {
      ++together;
      return HttpTransport::send_all(batch);
    }
  };
  CountingTransport transport;
  Fixture f;
  auto client = f.client_with(transport);
  transport.reply(204).reply(204);
  client.request_all({{"PATCH", "/a", std::nullopt}, {"PATCH", "/b", std::nullopt}});
  CHECK(transport.together == 1);  // no busy answer: together
  transport.reply(204).reply(503).reply(204);
  client.request_all({{"PATCH", "/a", std::nullopt}, {"PATCH", "/b", std::nullopt}});
  CHECK(transport.together == 2);  // the retry of /b went alone
  CHECK(f.log_text.str().find("sending them one after another from now on") != std::string::npos);
  transport.reply(204).reply(204);
  client.request_all({{"PATCH", "/a", std::nullopt}, {"PATCH", "/b", std::nullopt}});
  CHECK(transport.together == 2);
  CHECK(transport.pending() == 0);
}

TEST_CASE("ApiClient::start: a retry is a timer of poll(), not a sleep", "[http]") {
  Fixture f;
  f.policy.initial = milliseconds(30);
  f.transport.reply(503).reply(500, R"({"detail":"boom"})").reply(200, R"({"b":2})");
  auto client = f.client();
  const auto b = client.start({"PATCH", "/b", nlohmann::json{{"x", 1}}});
  const auto c = client.start({"PATCH", "/c", std::nullopt});
  CHECK(client.in_flight() == 2);

  // /c failed for good (500); /b waits 30 ms for its retry, and nobody slept.
  auto ended = client.poll(milliseconds(0));
  REQUIRE(ended.size() == 1);
  CHECK(ended[0].first == c);
  CHECK(message_of([&] { ended[0].second.get(); }) ==
        "PATCH http://prefect:4200/api/c: 500 Internal Server Error: boom");
  CHECK(client.in_flight() == 1);
  CHECK(f.transport.requests.size() == 2);
  CHECK(client.poll(milliseconds(0)).empty());  // not due yet: nothing sent
  CHECK(f.transport.requests.size() == 2);

  std::this_thread::sleep_for(milliseconds(40));
  ended = client.poll(milliseconds(0));
  REQUIRE(ended.size() == 1);
  CHECK(ended[0].first == b);
  CHECK(ended[0].second.get().body == nlohmann::json{{"b", 2}});
  REQUIRE(f.transport.requests.size() == 3);
  CHECK(f.transport.requests[2].body == f.transport.requests[0].body);
  CHECK(client.in_flight() == 0);
  CHECK(f.sleeper.slept.empty());
}

TEST_CASE("ApiClient::start: after a busy answer to calls in flight together, one at a time",
          "[http]") {
  // Counts the requests in flight at the transport (started, not yet polled).
  struct CountingTransport : FakeTransport {
    int in_flight = 0;
    int most = 0;
    Ticket start(const HttpRequest& request) override {
      most = std::max(most, ++in_flight);
      return HttpTransport::start(request);
    }
    std::vector<std::pair<Ticket, TransportOutcome>> poll(milliseconds wait) override {
      auto answered = HttpTransport::poll(wait);
      in_flight -= static_cast<int>(answered.size());
      return answered;
    }
  };
  CountingTransport transport;
  Fixture f;
  f.policy.initial = milliseconds(10);
  auto client = f.client_with(transport);

  transport.reply(204).reply(503);
  client.start({"PATCH", "/a", std::nullopt});
  client.start({"PATCH", "/b", std::nullopt});
  CHECK(transport.most == 2);                       // no busy answer yet: together
  CHECK(client.poll(milliseconds(0)).size() == 1);  // /a; /b answered 503, waits 10 ms
  CHECK(f.log_text.str().find("sending them one after another from now on") != std::string::npos);

  transport.reply(204).reply(204).reply(204);
  transport.most = transport.in_flight;
  client.start({"PATCH", "/c", std::nullopt});
  client.start({"PATCH", "/d", std::nullopt});  // waits for /c
  CHECK(transport.requests.size() == 3);
  std::size_t ended = 0;
  for (int i = 0; i < 50 && client.in_flight() > 0; ++i) {
    ended += client.poll(milliseconds(0)).size();
    std::this_thread::sleep_for(milliseconds(2));
  }
  CHECK(ended == 3);  // /b again, /c, /d
  CHECK(transport.most == 1);
  CHECK(transport.requests.size() == 5);
  CHECK(transport.pending() == 0);
  CHECK(f.sleeper.slept.empty());
}

TEST_CASE("ApiClient: a call that must not be lost is retried through a first stop signal",
          "[http]") {
  Fixture f;
  f.sleeper.interrupted = true;  // a first stop signal arrived
  f.transport.reply(502).reply(502).reply(204);
  RequestOptions must_not_be_lost;
  must_not_be_lost.through_stop = true;
  CHECK(f.client().request("PATCH", "/work_pools/etl", std::nullopt, must_not_be_lost).status ==
        204);
  CHECK(f.sleeper.slept == std::vector<milliseconds>{milliseconds(1000), milliseconds(2000)});

  // Any other call ends at the stop; and after a second signal, so does this one.
  f.transport.reply(502);
  CHECK(message_of([&] { f.client().request("GET", "/health"); }) ==
        "GET http://prefect:4200/api/health: 502 Bad Gateway; not retried: a stop signal arrived");
  f.sleeper.hurried = true;
  f.transport.reply(502);
  CHECK(message_of([&] {
          f.client().request("PATCH", "/work_pools/etl", std::nullopt, must_not_be_lost);
        }) ==
        "PATCH http://prefect:4200/api/work_pools/etl: 502 Bad Gateway; not retried: a "
        "second stop signal asked to hurry");
  CHECK(f.transport.pending() == 0);
}

TEST_CASE("ApiClient::start: an attempt the transport cannot start ends in poll(), not start()",
          "[http]") {
  // libcurl could not take the request (no easy handle, the multi handle
  // refused it): start() throws, `refusals` times.
  struct RefusingTransport : FakeTransport {
    int refusals = 0;
    Ticket start(const HttpRequest& request) override {
      if (refusals > 0) {
        --refusals;
        throw TransportError("cannot start a request with libcurl's multi interface", false);
      }
      return HttpTransport::start(request);
    }
  };
  RefusingTransport transport;
  Fixture f;
  f.policy.initial = milliseconds(1);
  f.policy.max_attempts = 2;
  auto client = f.client_with(transport);

  auto poll_until_ended = [&](ApiClient::CallId id) -> std::optional<ApiClient::Result> {
    for (int i = 0; i < 200; ++i) {
      for (auto& [ended, result] : client.poll(milliseconds(0))) {
        if (ended == id) {
          return result;
        }
      }
      std::this_thread::sleep_for(milliseconds(2));  // the retry's delay
    }
    return std::nullopt;
  };

  SECTION("once: the retry goes out") {
    transport.refusals = 1;
    transport.reply(200, R"({"ok":true})");
    const auto id = client.start({"GET", "/a", std::nullopt});
    auto result = poll_until_ended(id);
    REQUIRE(result);
    CHECK(result->get().body == nlohmann::json{{"ok", true}});
  }
  SECTION("every time: the call ends with the error, for its owner to hear") {
    transport.refusals = 100;
    const auto id = client.start({"GET", "/a", std::nullopt});
    auto result = poll_until_ended(id);
    REQUIRE(result);
    CHECK(message_of([&] { result->get(); }) ==
          "cannot reach Prefect API at http://prefect:4200/api: cannot start a request with "
          "libcurl's multi interface (GET /a, after 2 attempt(s))");
  }
  CHECK(client.in_flight() == 0);
  CHECK(transport.pending() == 0);
}
