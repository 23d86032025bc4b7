#include "common/redact.hpp"

#include <catch2/catch.hpp>

#include "common/spellcheck.hpp"

using namespace pc;

TEST_CASE("redact_url_userinfo", "[common]") {
  CHECK(redact_url_userinfo("https://user:pw@host/x") == "https://user:***@host/x");
  CHECK(redact_url_userinfo("clone https://tok@github.com/o/r.git now") ==
        "clone https://***@github.com/o/r.git now");
  CHECK(redact_url_userinfo("http://host:4200/api") == "http://host:4200/api");
  CHECK(redact_url_userinfo("a postgresql://u:p@db:5432/x?sslmode=require b") ==
        "a postgresql://u:***@db:5432/x?sslmode=require b");
  CHECK(redact_url_userinfo("two http://a:b@h1 and http://c:d@h2/") ==
        "two http://a:***@h1 and http://c:***@h2/");
  CHECK(redact_url_userinfo("no url here @ all") == "no url here @ all");
  CHECK(redact_url_userinfo("") == "");
}

TEST_CASE("Redactor replaces every registered secret", "[common]") {
  Redactor r;
  r.add_secret("abcdef");
  r.add_secret("abcdefgh");
  r.add_secret("x");  // too short to redact safely: ignored
  CHECK(r.redact("key=abcdefgh and abcdef, x") == "key=*** and ***, x");
  CHECK(r.redact("nothing") == "nothing");
}

TEST_CASE("closest_match suggests near misses only", "[common]") {
  std::vector<std::string> names{"main", "develop", "release-1.0"};
  CHECK(closest_match("mian", names) == std::optional<std::string>("main"));
  CHECK(closest_match("DEVELOP", names) == std::optional<std::string>("develop"));
  CHECK_FALSE(closest_match("feature-x", names).has_value());
  CHECK(edit_distance("kitten", "sitting") == 3);
}

TEST_CASE("redact_url_userinfo looks at every URL, also one right after another's authority",
          "[common]") {
  CHECK(redact_url_userinfo("x://https://u:pw@h/") == "x://https://u:***@h/");
  CHECK(redact_url_userinfo("'https://u:p@ss@host/x'") == "'https://u:***@host/x'");
}

TEST_CASE("redact_url_userinfo: a quote inside a user-info", "[common]") {
  CHECK(redact_url_userinfo("clone https://u:pa'ss@host/x") == "clone https://u:***@host/x");
  // A quoted URL followed by another field keeps its shape.
  CHECK(redact_url_userinfo(R"({"url":"https://host","mail":"a@b"})") ==
        R"({"url":"https://host","mail":"a@b"})");
  // A scheme curl refuses (over 40 characters, or a digit first) does not
  // hide the user-info from the quote rule (found by fuzz_redact_url).
  const std::string long_scheme(120, '6');
  CHECK(redact_url_userinfo(long_scheme + "ws://':s3cret@host//x") ==
        long_scheme + "ws://':***@host//x");
  CHECK(redact_url_userinfo("6ws://'u:s3cret@host/x") == "6ws://'u:***@host/x");
}
