#include "common/url.hpp"

#include <catch2/catch.hpp>

using namespace pc;

TEST_CASE("parse_url", "[common]") {
  SECTION("every part, as written") {
    auto url = parse_url("https://user:p%40ss@example.com:8443/api/x?a=1#top");
    REQUIRE(url);
    CHECK(url->scheme == "https");
    CHECK(url->has_userinfo);
    CHECK(url->has_password);
    CHECK(url->user == "user");
    CHECK(url->password == "p%40ss");
    CHECK(url->host == "example.com");
    CHECK(url->port == "8443");
    CHECK(url->path == "/api/x");
    CHECK(url->query == "a=1");
    CHECK(url->fragment == "top");
  }
  SECTION("no user-info, no port, no path") {
    auto url = parse_url("http://127.0.0.1");
    REQUIRE(url);
    CHECK_FALSE(url->has_userinfo);
    CHECK(url->user.empty());
    CHECK(url->port.empty());
    CHECK(url->path == "/");
  }
  SECTION("a token without a password; an IPv6 host keeps its brackets") {
    auto url = parse_url("https://tok@[::1]:4200/api");
    REQUIRE(url);
    CHECK(url->user == "tok");
    CHECK_FALSE(url->has_password);
    CHECK(url->host == "[::1]");
    CHECK(url->port == "4200");
  }
  SECTION("schemes curl does not speak") {
    auto url = parse_url("postgresql://u:pw@db:5432/app");
    REQUIRE(url);
    CHECK(url->scheme == "postgresql");
    CHECK(url->password == "pw");
    CHECK(url->path == "/app");
  }
  SECTION("invalid input says why, without the URL") {
    std::string error;
    CHECK_FALSE(parse_url("http://host:99999/x", &error));
    CHECK(error == "Port number was not a decimal number between 0 and 65535");
    CHECK_FALSE(parse_url("not a url", &error));
    CHECK_FALSE(error.empty());
    CHECK_FALSE(parse_url(std::string_view("http://h\0st/", 12), &error));
    CHECK(error == "the URL contains a NUL byte");
    CHECK_FALSE(parse_url("https://u:p@ss@host/x"));
  }
}

TEST_CASE("redact_userinfo", "[common]") {
  CHECK(redact_userinfo("https://user:pw@host/x") == "https://user:***@host/x");
  CHECK(redact_userinfo("https://tok@github.com/o/r.git") == "https://***@github.com/o/r.git");
  CHECK(redact_userinfo("https://user:@host") == "https://user:***@host");
  CHECK(redact_userinfo("http://host:4200/api?next=a@b") == "http://host:4200/api?next=a@b");
  CHECK(redact_userinfo("HTTPS://User:Pw@Host/X") == "HTTPS://User:***@Host/X");
  SECTION("what curl refuses is redacted to the last '@' of the authority") {
    CHECK(redact_userinfo("https://u:p@ss@host/x") == "https://u:***@host/x");
    CHECK(redact_userinfo("https://u:pw@") == "https://u:***@");
  }
  CHECK(redact_userinfo("no url") == "no url");
}

TEST_CASE("strip_userinfo", "[common]") {
  CHECK(strip_userinfo("https://x-access-token:t@github.com/o/r.git") ==
        "https://github.com/o/r.git");
  CHECK(strip_userinfo("https://u:p@ss@host/x") == "https://host/x");
  CHECK(strip_userinfo("file:///srv/git/r.git") == "file:///srv/git/r.git");
  CHECK(strip_userinfo("git@github.com:o/r.git") == "git@github.com:o/r.git");
}

TEST_CASE("userinfo_of", "[common]") {
  auto both = userinfo_of("https://user:pw@host");
  REQUIRE(both);
  CHECK(both->user == "user");
  CHECK(both->password == std::optional<std::string>("pw"));
  auto token = userinfo_of("https://tok@host");
  REQUIRE(token);
  CHECK(token->user == "tok");
  CHECK_FALSE(token->password);
  auto raw_at = userinfo_of("postgresql://u:p@ss@db/app");
  REQUIRE(raw_at);
  CHECK(raw_at->password == std::optional<std::string>("p@ss"));
  CHECK_FALSE(userinfo_of("http://host/a@b"));
}

TEST_CASE("parse_http_url", "[common]") {
  CHECK(parse_http_url("http://127.0.0.1:4200/api"));
  CHECK(parse_http_url("HTTPS://h/x"));
  CHECK_FALSE(parse_http_url("ftp://h/api"));
  CHECK_FALSE(parse_http_url("http:///api"));
  CHECK_FALSE(parse_http_url("http:/h/api"));
  CHECK_FALSE(parse_http_url("localhost:4200/api"));
}

TEST_CASE("curl_reads_userinfo: the authority, whatever the scheme", "[common]") {
  CHECK(curl_reads_userinfo("://u:p'w@host"));
  CHECK(curl_reads_userinfo("://':pw@host"));
  CHECK_FALSE(curl_reads_userinfo("://host"));
  CHECK_FALSE(curl_reads_userinfo("://host\",\"mail\":\"a@b\"}"));  // curl refuses: no rule
}

TEST_CASE("password_of: a URL's user-info or libpq's key/value form", "[common]") {
  CHECK(password_of("postgresql://app:s3cret@db:5432/prod") ==
        std::optional<std::string>("s3cret"));
  CHECK(password_of("https://user@host/x") == std::nullopt);
  CHECK(password_of("https://user:@host/x") == std::nullopt);
  CHECK(password_of("host=db user=app password=s3cret dbname=prod") ==
        std::optional<std::string>("s3cret"));
  CHECK(password_of("host=db password = 'with space' user=app") ==
        std::optional<std::string>("with space"));
  CHECK(password_of(R"(password='it\'s')") == std::optional<std::string>(R"(it\'s)"));
  CHECK(password_of("host=db mypassword=x") == std::nullopt);
  CHECK(password_of("host=db password=") == std::nullopt);
  CHECK(password_of("") == std::nullopt);
}
