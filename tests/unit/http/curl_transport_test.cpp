#include <catch2/catch.hpp>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "http/curl_transport.hpp"
#include "http/loopback_server.hpp"

using namespace pc;
using pc::testing::LoopbackServer;
using std::chrono::milliseconds;

namespace {

std::string ok(const std::string& body, const std::string& extra_headers = "") {
  return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + extra_headers +
         "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

HttpRequest make(const std::string& method, const std::string& url, const std::string& body = "") {
  HttpRequest r;
  r.method = method;
  r.url = url;
  r.body = body;
  return r;
}

}  // namespace

TEST_CASE("CurlTransport sends the request and reads status, headers and body", "[http]") {
  LoopbackServer server({ok(R"({"a":1})", "Retry-After: 3\r\n"), ok("[]")});
  CurlTransport transport(TlsOptions{}, milliseconds(5000));

  auto request = make("PATCH", server.url("/api/work_pools/x"), R"({"is_paused":true})");
  request.headers = {{"Content-Type", "application/json"}, {"X-PREFECT-API-VERSION", "0.8.4"}};
  auto response = transport.send(request);
  CHECK(response.status == 200);
  CHECK(response.body == R"({"a":1})");
  CHECK(response.header("retry-after") == "3");
  CHECK(response.header("CONTENT-TYPE") == "application/json");
  CHECK_FALSE(response.header("X-Missing"));

  CHECK(transport.send(make("GET", server.url("/api/health"))).body == "[]");
  auto requests = server.requests();
  REQUIRE(requests.size() == 2);
  CHECK(requests[0].rfind("PATCH /api/work_pools/x HTTP/1.1\r\n", 0) == 0);
  CHECK(requests[0].find("X-PREFECT-API-VERSION: 0.8.4\r\n") != std::string::npos);
  CHECK(requests[0].find("\r\n\r\n{\"is_paused\":true}") != std::string::npos);
  CHECK(requests[1].rfind("GET /api/health HTTP/1.1\r\n", 0) == 0);
  CHECK(server.connections() == 1);  // keep-alive: the handle is reused
}

TEST_CASE("CurlTransport refuses oversized responses", "[http]") {
  SECTION("declared by Content-Length") {
    LoopbackServer server(
        {"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n" + std::string(5000, 'x')});
    CurlTransport transport(TlsOptions{}, milliseconds(5000), CurlTransport::kDefaultMaxInFlight,
                            1024);
    try {
      transport.send(make("GET", server.url("/big")));
      FAIL("expected a TransportError");
    } catch (const TransportError& e) {
      CHECK(std::string(e.what()) == "response from 127.0.0.1:" + server.url("").substr(17) +
                                         " larger than 1024 bytes; refused");
      CHECK_FALSE(e.retryable());
      CHECK_FALSE(e.timed_out());
    }
  }
  SECTION("chunked, no length") {
    std::string chunk(600, 'y');
    std::string body;
    for (int i = 0; i < 4; ++i) {
      body += "258\r\n" + chunk + "\r\n";  // 0x258 = 600
    }
    LoopbackServer server(
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + body + "0\r\n\r\n"});
    CurlTransport transport(TlsOptions{}, milliseconds(5000), CurlTransport::kDefaultMaxInFlight,
                            1024);
    CHECK_THROWS_WITH(transport.send(make("GET", server.url("/big"))),
                      Catch::Contains("larger than 1024 bytes; refused"));
  }
}

TEST_CASE("CurlTransport times out and names the host", "[http]") {
  LoopbackServer server({""});  // reads the request, never answers
  CurlTransport transport(TlsOptions{}, milliseconds(5000));
  auto request = make("GET", server.url("/slow"));
  request.timeout = milliseconds(300);
  const auto start = std::chrono::steady_clock::now();
  try {
    transport.send(request);
    FAIL("expected a TransportError");
  } catch (const TransportError& e) {
    CHECK(e.timed_out());
    CHECK(e.retryable());
    CHECK(std::string(e.what()).find("127.0.0.1") != std::string::npos);
  }
  CHECK(std::chrono::steady_clock::now() - start < milliseconds(3000));
}

TEST_CASE("CurlTransport follows a 307 redirect with method and body", "[http]") {
  LoopbackServer server(
      {"HTTP/1.1 307 Temporary Redirect\r\nLocation: /api/flow_runs/filter\r\n"
       "Content-Length: 0\r\n\r\n",
       ok("[]")});
  CurlTransport transport(TlsOptions{}, milliseconds(5000));
  auto response = transport.send(make("POST", server.url("/api/flow_runs/filter/"), "{}"));
  CHECK(response.status == 200);
  auto requests = server.requests();
  REQUIRE(requests.size() == 2);
  CHECK(requests[1].rfind("POST /api/flow_runs/filter HTTP/1.1\r\n", 0) == 0);
  CHECK(requests[1].find("\r\n\r\n{}") != std::string::npos);
}

TEST_CASE("CurlTransport: connection refused is a quick TransportError", "[http]") {
  CurlTransport transport(TlsOptions{}, milliseconds(2000));
  const auto start = std::chrono::steady_clock::now();
  try {
    transport.send(make("GET", "http://user:s3cret@127.0.0.1:1/api/health"));
    FAIL("expected a TransportError");
  } catch (const TransportError& e) {
    std::string what = e.what();
    CHECK(what.find("127.0.0.1") != std::string::npos);
    CHECK(what.find("s3cret") == std::string::npos);
    CHECK_FALSE(e.timed_out());
    CHECK(e.retryable());
  }
  CHECK(std::chrono::steady_clock::now() - start < milliseconds(1000));
}

namespace {

// Answers each request on its own connection only once `expected` requests
// are open at the same time (or 503 after `patience`): a client that sends
// one after another gets 503s. Each answer's body is the request's path.
class BarrierServer {
 public:
  explicit BarrierServer(int expected, std::chrono::seconds patience = std::chrono::seconds(5))
      : expected_(expected), patience_(patience) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
    REQUIRE(::listen(fd_, 32) == 0);
    socklen_t len = sizeof(addr);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread([this] {
      for (int i = 0; i < expected_; ++i) {
        int c = ::accept(fd_, nullptr, nullptr);
        if (c < 0) {
          return;
        }
        handlers_.emplace_back([this, c] { handle(c); });
      }
    });
  }
  ~BarrierServer() {
    acceptor_.join();
    for (auto& t : handlers_) {
      t.join();
    }
    ::close(fd_);
  }
  BarrierServer(const BarrierServer&) = delete;
  BarrierServer& operator=(const BarrierServer&) = delete;

  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  // The most requests that were open at the same moment.
  int most_open() {
    std::lock_guard<std::mutex> lock(mutex_);
    return most_open_;
  }

 private:
  void handle(int c) {
    std::string request;
    char buf[4096];
    while (request.find("\r\n\r\n") == std::string::npos) {
      ssize_t n = ::read(c, buf, sizeof(buf));
      if (n <= 0) {
        break;
      }
      request.append(buf, static_cast<std::size_t>(n));
    }
    const std::string path = request.substr(
        request.find(' ') + 1, request.find(' ', request.find(' ') + 1) - request.find(' ') - 1);
    bool all_there = false;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      ++open_;
      most_open_ = std::max(most_open_, ++open_now_);
      cv_.notify_all();
      all_there = cv_.wait_for(lock, patience_, [this] { return open_ >= expected_; });
      --open_now_;  // before the answer: the client's next request comes after it
    }
    const std::string status = all_there ? "200 OK" : "503 Service Unavailable";
    const std::string answer = "HTTP/1.1 " + status +
                               "\r\nContent-Length: " + std::to_string(path.size()) +
                               "\r\nConnection: close\r\n\r\n" + path;
    (void)!::write(c, answer.data(), answer.size());
    ::close(c);
  }

  int expected_;
  std::chrono::seconds patience_;
  int fd_ = -1;
  int port_ = 0;
  std::thread acceptor_;
  std::vector<std::thread> handlers_;
  std::mutex mutex_;
  std::condition_variable cv_;
  int open_ = 0;      // requests opened so far
  int open_now_ = 0;  // open and not answered yet
  int most_open_ = 0;
};

}  // namespace

TEST_CASE("CurlTransport::send_all has the requests in flight together, answers in order",
          "[http]") {
  BarrierServer server(4);
  CurlTransport transport(TlsOptions{}, milliseconds(10000));
  std::vector<HttpRequest> requests;
  for (int i = 0; i < 4; ++i) {
    requests.push_back(make("POST", server.url("/api/flow_runs/r" + std::to_string(i)), "{}"));
  }
  auto outcomes = transport.send_all(requests);
  REQUIRE(outcomes.size() == 4);
  for (int i = 0; i < 4; ++i) {
    INFO(i);
    REQUIRE(outcomes[i].response);
    CHECK_FALSE(outcomes[i].error);
    CHECK(outcomes[i].response->status == 200);  // 503: they came one after another
    CHECK(outcomes[i].response->body == "/api/flow_runs/r" + std::to_string(i));
  }
}

TEST_CASE("CurlTransport: at most max_in_flight requests open at once", "[http]") {
  // Three must be open together for a 200; with two connections the third
  // waits until one of the first two has given up (503 after 1 s).
  BarrierServer server(3, std::chrono::seconds(1));
  CurlTransport transport(TlsOptions{}, milliseconds(10000), 2);
  std::vector<HttpRequest> requests;
  for (int i = 0; i < 3; ++i) {
    requests.push_back(make("POST", server.url("/api/flow_runs/r" + std::to_string(i)), "{}"));
  }
  auto outcomes = transport.send_all(requests);
  REQUIRE(outcomes.size() == 3);
  int refused = 0;
  for (const auto& outcome : outcomes) {
    REQUIRE(outcome.response);
    refused += outcome.response->status == 503 ? 1 : 0;
  }
  CHECK(server.most_open() == 2);
  // The first two gave up; the third may have met the second still waiting
  // (both then 200) or not (503), as the two timed out close together or not.
  CHECK(refused >= 1);
}

TEST_CASE("CurlTransport::send_all gives each request its own failure", "[http]") {
  LoopbackServer server({ok("[1]")});
  CurlTransport transport(TlsOptions{}, milliseconds(5000));
  const std::string nowhere = "http://127.0.0.1:1/api/x";  // nothing listens on port 1
  auto outcomes = transport.send_all({make("GET", server.url("/api/a")), make("GET", nowhere)});
  REQUIRE(outcomes.size() == 2);
  REQUIRE(outcomes[0].response);
  CHECK(outcomes[0].response->body == "[1]");
  REQUIRE(outcomes[1].error);
  CHECK_FALSE(outcomes[1].response);
  CHECK(outcomes[1].error->retryable());
  CHECK_THAT(outcomes[1].error->what(), Catch::Contains("127.0.0.1"));
}

TEST_CASE("CurlTransport::start: requests in flight while the caller goes on, and beside a batch",
          "[http]") {
  // Four requests must be open at once: two started, two in a batch sent
  // while the started ones are still unanswered.
  BarrierServer server(4);
  CurlTransport transport(TlsOptions{}, milliseconds(10000));
  const auto first = transport.start(make("PATCH", server.url("/api/flow_runs/s0"), "{}"));
  const auto second = transport.start(make("PATCH", server.url("/api/flow_runs/s1"), "{}"));
  CHECK(first != second);
  CHECK(transport.poll(milliseconds(0)).empty());  // nobody answers before all four are open

  auto batch = transport.send_all({make("POST", server.url("/api/flow_runs/b0"), "{}"),
                                   make("POST", server.url("/api/flow_runs/b1"), "{}")});
  REQUIRE(batch.size() == 2);
  REQUIRE(batch[1].response);
  CHECK(batch[1].response->status == 200);  // 503: the started ones were not in flight

  std::map<HttpTransport::Ticket, std::string> bodies;
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (bodies.size() < 2 && std::chrono::steady_clock::now() < give_up) {
    for (auto& [ticket, outcome] : transport.poll(milliseconds(100))) {
      REQUIRE(outcome.response);
      CHECK(outcome.response->status == 200);
      bodies[ticket] = outcome.response->body;
    }
  }
  CHECK(bodies == std::map<HttpTransport::Ticket, std::string>{{first, "/api/flow_runs/s0"},
                                                               {second, "/api/flow_runs/s1"}});
  CHECK(transport.poll(milliseconds(0)).empty());
}

TEST_CASE("CurlTransport::start keeps its own copy of the request while it is in flight",
          "[http]") {
  LoopbackServer server({ok("{}")});
  CurlTransport transport(TlsOptions{}, milliseconds(5000));
  HttpTransport::Ticket ticket = 0;
  {
    // Gone (and overwritten) before the transfer sends a byte.
    std::string body = R"({"infrastructure_pid":"h:4242"})";
    ticket = transport.start(make("PATCH", server.url("/api/flow_runs/r1"), body));
    body.assign(body.size(), 'x');
  }
  std::vector<std::pair<HttpTransport::Ticket, TransportOutcome>> ended;
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (ended.empty() && std::chrono::steady_clock::now() < give_up) {
    ended = transport.poll(milliseconds(100));
  }
  REQUIRE(ended.size() == 1);
  CHECK(ended[0].first == ticket);
  REQUIRE(ended[0].second.response);
  CHECK(ended[0].second.response->status == 200);
  REQUIRE(server.requests().size() == 1);
  CHECK_THAT(server.requests()[0], Catch::EndsWith(R"({"infrastructure_pid":"h:4242"})"));
}
