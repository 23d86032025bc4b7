#include "common/spellcheck.hpp"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

using namespace pc;

TEST_CASE("closest_match: a likely typo, case aside; nothing when far", "[spellcheck]") {
  const std::vector<std::string> names{"COMPLETED", "FAILED", "CRASHED"};
  CHECK(closest_match("complted", names) == "COMPLETED");
  CHECK(closest_match("crashd", names) == "CRASHED");
  CHECK_FALSE(closest_match("PENDING", names));
  CHECK_FALSE(closest_match("x", {}));
}

TEST_CASE("closest_flag: the flag meant, without dashes or a value", "[spellcheck]") {
  const std::vector<std::string> flags{"--pool", "--limit", "--queues", "--worker-name",
                                       "--dry-run"};
  CHECK(closest_flag("--limt", flags) == "--limit");
  CHECK(closest_flag("--limt=3", flags) == "--limit");
  CHECK(closest_flag("--pol", flags) == "--pool");
  CHECK(closest_flag("-pool", flags) == "--pool");
  CHECK(closest_flag("--POOL", flags) == "--pool");
  CHECK(closest_flag("--queue", flags) == "--queues");
  CHECK(closest_flag("--worker_name", flags) == "--worker-name");
  CHECK(closest_flag("--dryrun", flags) == "--dry-run");
  CHECK_FALSE(closest_flag("--frobnicate", flags));
  CHECK_FALSE(closest_flag("--", flags));
  CHECK_FALSE(closest_flag("--=x", flags));
  CHECK_FALSE(closest_flag("--pol", {}));
}
