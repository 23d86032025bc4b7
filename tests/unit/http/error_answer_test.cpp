#include "http/error_answer.hpp"

#include <catch2/catch.hpp>

using namespace pc;

TEST_CASE("reason_phrase", "[http]") {
  CHECK(reason_phrase(404) == "Not Found");
  CHECK(reason_phrase(503) == "Service Unavailable");
  CHECK(reason_phrase(599) == "HTTP 599");
}

TEST_CASE("server_detail: what the server said, on one bounded line", "[http]") {
  SECTION("FastAPI's detail as a string") {
    CHECK(server_detail(R"({"detail":"Work pool not found."})") == "Work pool not found.");
  }
  SECTION("a validation list: each location and message, never the echoed input") {
    const std::string body =
        R"({"detail":[{"loc":["body","flow_runs",0],"msg":"Input should be a valid UUID",)"
        R"("input":"SECRET-JOB-VARIABLE"}]})";
    const std::string detail = server_detail(body);
    CHECK(detail == "body.flow_runs.0: Input should be a valid UUID");
    CHECK(detail.find("SECRET") == std::string::npos);
  }
  SECTION("Prefect's exception_message with exception_detail, never request_body") {
    const std::string body =
        R"({"exception_message":"Invalid request received.","exception_detail":)"
        R"([{"loc":["body","name"],"msg":"Field required"}],"request_body":{"token":"t0k"}})";
    const std::string detail = server_detail(body);
    CHECK(detail == "Invalid request received.: body.name: Field required");
    CHECK(detail.find("t0k") == std::string::npos);
  }
  SECTION("a body that is not JSON: its start, newlines folded") {
    CHECK(server_detail("<html>\nBad gateway\r\n</html>") == "<html> Bad gateway  </html>");
  }
  SECTION("at most 500 characters") {
    const std::string detail = server_detail(R"({"detail":")" + std::string(800, 'x') + R"("})");
    CHECK(detail.size() == 503);
    CHECK(detail.find_first_not_of('x') == 500);
    CHECK(detail.substr(500) == "...");
  }
}

TEST_CASE("status_hint: what to change for an answer retrying cannot fix", "[http]") {
  CHECK(status_hint(401, "") == Hint::kApiAuth);
  CHECK(status_hint(403, "Not authenticated") == Hint::kApiAuth);
  CHECK(status_hint(403, "Work pool names starting with 'prefect' are reserved") ==
        Hint::kApiAnswer);
  CHECK(status_hint(403, "Invalid CSRF token") == Hint::kApiCsrf);
  CHECK(status_hint(500, "") == Hint::kApiServerError);
  CHECK(status_hint(502, "") == Hint::kApiServerError);
  CHECK(status_hint(422, "body.name: Field required") == Hint::kApiAnswer);
}
