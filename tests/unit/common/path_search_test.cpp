#include "common/path_search.hpp"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <filesystem>
#include <fstream>

using namespace pc;
namespace fs = std::filesystem;

namespace {

fs::path make_file(const fs::path& dir, const std::string& name, fs::perms perms) {
  fs::create_directories(dir);
  const fs::path file = dir / name;
  std::ofstream(file) << "#!/bin/sh\n";
  fs::permissions(file, perms);
  return file;
}

}  // namespace

TEST_CASE("search_path", "[common]") {
  const fs::path root = fs::temp_directory_path() / ("path_search_" + std::to_string(getpid()));
  fs::remove_all(root);
  const auto exec = fs::perms::owner_read | fs::perms::owner_exec;
  const auto plain = fs::perms::owner_read;

  SECTION("the first executable in PATH order") {
    make_file(root / "a", "tool", exec);
    make_file(root / "b", "tool", exec);
    auto found = search_path("tool", (root / "a").string() + ":" + (root / "b").string());
    CHECK(found.program == (root / "a" / "tool").string());
    CHECK(found.error == 0);
  }
  SECTION("a file that is not executable is skipped, and said so when nothing else is found") {
    make_file(root / "a", "tool", plain);
    auto found = search_path("tool", (root / "a").string());
    CHECK(found.program.empty());
    CHECK(found.error == EACCES);
    make_file(root / "b", "tool", exec);
    CHECK(search_path("tool", (root / "a").string() + ":" + (root / "b").string()).program ==
          (root / "b" / "tool").string());
  }
  SECTION("a directory of that name is no program") {
    fs::create_directories(root / "a" / "tool");
    CHECK(search_path("tool", (root / "a").string()).program.empty());
  }
  SECTION("nowhere") {
    auto found = search_path("no-such-tool-here", (root / "none").string() + "::");
    CHECK(found.program.empty());
    CHECK(found.error == ENOENT);
  }
  SECTION("an empty entry is the current directory") {
    make_file(root, "tool", exec);
    const auto cwd = fs::current_path();
    fs::current_path(root);
    auto found = search_path("tool", "/nonexistent:");
    fs::current_path(cwd);
    CHECK(found.program == "./tool");
  }
  fs::remove_all(root);
}
