#include "repo/install_stamp.hpp"

#include <catch2/catch.hpp>

#include "repo/repo_fixture.hpp"

using namespace pc;
using namespace pc::testing;

namespace {

// The real interpreter computes the digest.
std::string digest(const fs::path& root, StampKind kind = StampKind::kRequirements,
                   const std::vector<std::string>& args = {"-r", "x"}) {
  std::string why;
  auto probe = probe_stamp("python3", kind, root, args, why);
  INFO(why);
  REQUIRE(probe);
  CHECK(probe->stamp.filename().string().rfind(".prefect-cycle-", 0) == 0);
  return probe->digest;
}

}  // namespace

TEST_CASE("probe_stamp: the digest follows the requirements and what they include", "[repo]") {
  TempDir tmp;
  const fs::path req = tmp.path() / "requirements.txt";
  write_file(req, "requests\n-r more/base.txt\n--constraint=c.txt\n");
  write_file(tmp.path() / "more" / "base.txt", "pandas\n-r ../requirements.txt\n");  // a loop
  write_file(tmp.path() / "c.txt", "pandas<3\n");

  const std::string first = digest(req);
  CHECK(first.size() == 64);
  CHECK(digest(req) == first);  // the same bytes, the same digest

  SECTION("an included file changes") {
    write_file(tmp.path() / "more" / "base.txt", "pandas==2.2\n-r ../requirements.txt\n");
    CHECK(digest(req) != first);
  }
  SECTION("a constraints file changes") {
    write_file(tmp.path() / "c.txt", "pandas<2\n");
    CHECK(digest(req) != first);
  }
  SECTION("the installer's arguments change") {
    CHECK(digest(req, StampKind::kRequirements, {"-r", "y"}) != first);
  }
  SECTION("an editable project: its metadata counts") {
    const std::string project = digest(tmp.path(), StampKind::kEditable);
    write_file(tmp.path() / "pyproject.toml", "[project]\nname = \"x\"\n");
    CHECK(digest(tmp.path(), StampKind::kEditable) != project);
  }
  SECTION("an unreadable include: no probe, so a real install") {
    write_file(req, "-r missing.txt\n");
    std::string why;
    CHECK_FALSE(probe_stamp("python3", StampKind::kRequirements, req, {}, why));
    CHECK_THAT(why, Catch::Contains("missing.txt"));
  }
}

TEST_CASE("install stamps: written after success, matched, removed", "[repo]") {
  TempDir tmp;
  StampProbe probe{tmp.path() / ".prefect-cycle-requirements.stamp", std::string(64, 'a'),
                   "3.11.2"};
  CHECK_FALSE(stamp_matches(probe));  // none yet
  CHECK(write_stamp(probe, "requirements from r.txt with uv").empty());
  CHECK(stamp_matches(probe));
  CHECK_THAT(read_file(probe.stamp), Catch::StartsWith(probe.digest + "\n# written by"));

  StampProbe other = probe;
  other.digest = std::string(64, 'b');  // another interpreter or a changed file
  CHECK_FALSE(stamp_matches(other));

  write_file(probe.stamp, "garbage");
  CHECK_FALSE(stamp_matches(probe));

  CHECK(remove_stamp(probe).empty());
  CHECK_FALSE(fs::exists(probe.stamp));
  CHECK(remove_stamp(probe).empty());  // nothing to remove is fine

  StampProbe read_only{tmp.path() / "no-such-dir" / "s.stamp", probe.digest, "3.11.2"};
  CHECK_THAT(write_stamp(read_only, "x"), Catch::StartsWith("cannot write "));
}
