#include "cli/app.hpp"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "common/hint.hpp"

using namespace pc;

namespace {

const std::vector<std::string> kKnown{"--pool", "-p",           "--work-pool", "--limit",
                                      "-l",     "--queues",     "--dry-run",   "--help",
                                      "-h",     "--worker-name"};

std::string message_of(const std::vector<std::string>& args) {
  auto e = unknown_flag_error(args, kKnown);
  REQUIRE(e);
  CHECK(e->code() == ExitCode::kUsage);
  CHECK(e->hint() == Hint::kUsageFlag);
  return e->message();
}

}  // namespace

TEST_CASE("unknown_flag_error names the flag and the one meant", "[cli]") {
  CHECK(message_of({"run", "--limt", "3"}) == "unknown flag --limt: did you mean --limit?");
  CHECK(message_of({"--pol", "x", "run"}) == "unknown flag --pol: did you mean --pool?");
  CHECK(message_of({"run", "--limt=3"}) == "unknown flag --limt: did you mean --limit?");
  CHECK(message_of({"run", "--dryrun"}) == "unknown flag --dryrun: did you mean --dry-run?");
  // Short flags are no candidates: any one-letter typo would be "close" to one.
  CHECK(message_of({"--x", "3"}) == "unknown flag --x");
  CHECK(message_of({"run", "--frobnicate"}) == "unknown flag --frobnicate");
  // Prefect's names for ours.
  CHECK(message_of({"--work-queue", "a"}) == "unknown flag --work-queue: did you mean --queues?");
  CHECK(message_of({"--name", "w"}) == "unknown flag --name: did you mean --worker-name?");
  // The first unknown one, after known ones and their values.
  CHECK(message_of({"--pool", "x", "--limit=2", "--queus", "a", "--wat"}) ==
        "unknown flag --queus: did you mean --queues?");
}

TEST_CASE("unknown_flag_error: nothing when every long flag is known", "[cli]") {
  CHECK_FALSE(unknown_flag_error({"run", "--pool", "x", "--limit=3", "-p", "y"}, kKnown));
  CHECK_FALSE(unknown_flag_error({"--work-pool", "x", "run", "--dry-run"}, kKnown));
  CHECK_FALSE(unknown_flag_error({}, kKnown));
  // Not flags: values, short flags (CLI11 reads "-pol" as -p "ol"), a lone
  // "--" and everything after it.
  CHECK_FALSE(unknown_flag_error({"-pol", "-1", "run"}, kKnown));
  CHECK_FALSE(unknown_flag_error({"run", "--", "--limt"}, kKnown));
}
