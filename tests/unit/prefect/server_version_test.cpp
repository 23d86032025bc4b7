#include "prefect/server_version.hpp"

#include <catch2/catch.hpp>

using namespace pc;

TEST_CASE("ServerVersion::parse", "[prefect]") {
  auto v = ServerVersion::parse("3.8.8");
  REQUIRE(v);
  CHECK((v->major == 3 && v->minor == 8 && v->patch == 8));
  CHECK(ServerVersion::parse("2.20.27")->minor == 20);
  CHECK(ServerVersion::parse("\"3.1.6.dev3+g1234\"")->patch == 6);
  CHECK(ServerVersion::parse("3.0.0rc20")->patch == 0);
  CHECK(ServerVersion::parse("3.2")->minor == 2);
  CHECK_FALSE(ServerVersion::parse(""));
  CHECK_FALSE(ServerVersion::parse("unknown"));
  CHECK_FALSE(ServerVersion::parse("3"));
}

TEST_CASE("features_of: what each supported release can do", "[prefect]") {
  auto features = [](const char* v) { return features_of(ServerVersion::parse(v)); };
  CHECK(features("3.8.8").supported);
  CHECK(features("3.8.8").flow_run_labels);
  CHECK(features("3.8.8").missing().empty());
  CHECK(features("3.0.11").supported);
  CHECK_FALSE(features("3.0.11").flow_run_labels);
  CHECK(features("3.0.11").missing().find("no flow-run labels") == 0);
  CHECK(features("2.20.27").supported);
  CHECK_FALSE(features("2.20.27").flow_run_labels);
  // Events: from 3.0 (2.x kept them behind an experimental setting).
  CHECK(features("3.0.0").events);
  CHECK(features("3.8.8").events);
  CHECK_FALSE(features("2.20.27").events);
  CHECK(features("2.20.27").missing().find("; no events (before Prefect 3.0.0)") !=
        std::string::npos);
  CHECK(features_of(std::nullopt).events);
  CHECK_FALSE(features("2.19.9").supported);
  CHECK_FALSE(features("1.4.0").supported);
  // Prefect Cloud (no /admin/version) and garbage: the newest.
  CHECK(features_of(std::nullopt).flow_run_labels);
  CHECK(features_of(std::nullopt).supported);
  CHECK(features_of(std::nullopt).events);
}
