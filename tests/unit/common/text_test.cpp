#include "common/text.hpp"

#include <catch2/catch.hpp>
#include <string>

using namespace pc;

TEST_CASE("ascii_lower: letters only, other bytes as they are", "[text]") {
  CHECK(ascii_lower("PREFECT_Work-Pool 42") == "prefect_work-pool 42");
  CHECK(ascii_lower("") == "");
  CHECK(ascii_lower("caf\xc3\x89") == "caf\xc3\x89");  // UTF-8 bytes unchanged
}

TEST_CASE("trim: spaces, tabs, CRs and LFs at both ends", "[text]") {
  CHECK(trim("  on\t") == "on");
  CHECK(trim("\r\n 120 \r\n") == "120");
  CHECK(trim("a b") == "a b");
  CHECK(trim(" \t\r\n") == "");
  CHECK(trim("") == "");
}
