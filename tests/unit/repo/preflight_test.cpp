#include "repo/preflight.hpp"

#include <sys/stat.h>

#include <catch2/catch.hpp>

#include "common/error.hpp"
#include "repo/repo_fixture.hpp"

using namespace pc;
using namespace pc::testing;
using std::chrono::seconds;

namespace {

struct Captured {
  std::ostringstream out;
  Logger log{LogLevel::kDebug, LogFormat::kText, std::make_shared<Redactor>(), out};
};

// A stand-in for python: answers the Prefect probe (-c) with a version;
// otherwise records its arguments and working directory, prints a line on each
// stream, exits with `code`.
fs::path fake_python(const fs::path& dir, int code) {
  fs::path script = dir / "fake-python";
  write_file(script,
             "#!/bin/sh\nif [ \"$1\" = -c ]; then echo 3.8.8; exit 0; fi\necho \"$PWD $*\" >> " +
                 quote((dir / "calls.txt").string()) +
                 "\necho collecting pkg\necho 'ERROR: no such package' >&2\nexit " +
                 std::to_string(code) + "\n");
  fs::permissions(script, fs::perms::owner_all);
  return script;
}

// A stand-in for the flow interpreter's Prefect probe: prints `output`, exits
// with `code`.
fs::path probe_python(const fs::path& dir, const std::string& output, int code) {
  fs::path script = dir / "probe-python";
  write_file(script, "#!/bin/sh\necho " + quote(output) + "\nexit " + std::to_string(code) + "\n");
  fs::permissions(script, fs::perms::owner_all);
  return script;
}

std::string failure(const Config& config, const Logger& log) {
  try {
    run_preflight(config, log, [] { return false; });
  } catch (const Error& e) {
    CHECK(e.code() == ExitCode::kPreflight);
    return e.message();  // the fix of each class: tests/unit/common/hint_test.cpp
  }
  FAIL("expected pc::Error(kPreflight)");
  return "";
}

}  // namespace

TEST_CASE("run_preflight", "[repo]") {
  TempDir tmp;
  Captured captured;
  Config config;
  config.python = probe_python(tmp.path(), "3.8.8", 0).string();
  config.installer = InstallerChoice::kPip;  // whether uv is on PATH or not

  SECTION("nothing configured: did not run") {
    PreflightReport report = run_preflight(config, captured.log, nullptr);
    CHECK_FALSE(report.ran);
    CHECK(report.flow_env.empty());
    CHECK(report.working_dir.empty());
  }

  SECTION("DATABASE_PUBLIC_URL fills DATABASE_URL for the flows, logged without the value") {
    config.database_url = "postgresql://u:dbpw-secret@db.internal:5432/app";
    config.database_url_from_public = true;
    PreflightReport report = run_preflight(config, captured.log, nullptr);
    CHECK_FALSE(report.ran);
    CHECK(report.flow_env.at("DATABASE_URL") == config.database_url);
    CHECK_THAT(captured.out.str(), Catch::Contains("get it from DATABASE_PUBLIC_URL"));
    CHECK_THAT(captured.out.str(), !Catch::Contains("dbpw-secret"));
    CHECK_THAT(captured.out.str(), !Catch::Contains("db.internal"));
  }

  SECTION("a missing branch fails with exit 4") {
    BareRepo repo(tmp.path(), {"main"});
    config.repository = repo.file_url();
    config.branch = "mainn";
    CHECK_THAT(failure(config, captured.log), Catch::Contains("did you mean \"main\"?"));
  }

  SECTION("verification off: the remote is not contacted") {
    config.repository = (tmp / "missing.git").string();
    config.verify_repository = false;
    PreflightReport report = run_preflight(config, captured.log, nullptr);
    CHECK_FALSE(report.ran);
  }

  SECTION("check, sync and install") {
    BareRepo repo(tmp.path(), {"main"});
    repo.commit_and_push("requirements.txt", "./pkg\n", "main");
    config.repository = repo.file_url();
    config.code_dir = tmp / "code";
    config.python = fake_python(tmp.path(), 0).string();
    config.install_editable = true;

    PreflightReport report = run_preflight(config, captured.log, nullptr);
    CHECK(report.ran);
    CHECK(report.commit.size() == 40);
    CHECK(report.working_dir == tmp / "code");
    CHECK(report.flow_env.at("PYTHONPATH") == (tmp / "code").string());
    REQUIRE(report.steps.size() == 5);
    CHECK(report.steps[0] == "repository reachable, branch \"main\" present");
    CHECK(report.steps[1] == "cloned " + (tmp / "code").string() + " to main at " + report.commit);
    CHECK(report.steps[2] == "installed " + (tmp / "code" / "requirements.txt").string());
    CHECK(report.steps[3] == "installed " + (tmp / "code").string() + " (editable)");
    CHECK(report.steps[4] == "flow interpreter " + config.python + " has Prefect 3.8.8");

    const std::string code = (tmp / "code").string();
    CHECK(read_file(tmp / "calls.txt") ==
          code + " -m pip install --disable-pip-version-check -r " + code + "/requirements.txt\n" +
              code + " -m pip install --disable-pip-version-check -e " + code + "\n");
    // pip's output is streamed into the log.
    CHECK_THAT(captured.out.str(), Catch::Contains("collecting pkg"));
    CHECK_THAT(captured.out.str(), Catch::Contains("source=pip"));
  }

  SECTION("no requirements file: nothing installed") {
    BareRepo repo(tmp.path(), {"main"});
    config.repository = repo.file_url();
    config.code_dir = tmp / "code";
    config.python = fake_python(tmp.path(), 0).string();
    PreflightReport report = run_preflight(config, captured.log, nullptr);
    CHECK_FALSE(fs::exists(tmp / "calls.txt"));
    CHECK_THAT(captured.out.str(), Catch::Contains("no requirements.txt in the code directory"));
  }

  SECTION("a failing install is exit 4 with pip's last error") {
    BareRepo repo(tmp.path(), {"main"});
    repo.commit_and_push("requirements.txt", "nothing-such\n", "main");
    config.repository = repo.file_url();
    config.code_dir = tmp / "code";
    config.python = fake_python(tmp.path(), 1).string();
    std::string message = failure(config, captured.log);
    CHECK_THAT(message,
               Catch::StartsWith("installing requirements from " +
                                 (tmp / "code" / "requirements.txt").string() + " failed ("));
    CHECK_THAT(message, Catch::Contains("exit code 1"));
    CHECK_THAT(message, Catch::EndsWith(": ERROR: no such package"));
  }

  SECTION("a python that does not exist is exit 4") {
    BareRepo repo(tmp.path(), {"main"});
    repo.commit_and_push("requirements.txt", "x\n", "main");
    config.repository = repo.file_url();
    config.code_dir = tmp / "code";
    config.python = (tmp / "no-python").string();
    CHECK_THAT(failure(config, captured.log), Catch::Contains("exit code 127"));
  }

  SECTION("a code directory without a repository is a usage error") {
    config.code_dir = tmp / "code";
    try {
      run_preflight(config, captured.log, nullptr);
      FAIL("expected an error");
    } catch (const Error& e) {
      CHECK(e.code() == ExitCode::kUsage);
      CHECK_THAT(std::string(e.what()), Catch::StartsWith("PREFECT_WORKER_CODE_DIR is set (to "));
    }
  }

  SECTION("the database check without a URL") {
    config.check_database = true;
    CHECK_THAT(failure(config, captured.log),
               Catch::StartsWith("PREFECT_WORKER_CHECK_DATABASE is on but neither DATABASE_URL"));
  }
}

TEST_CASE("run_preflight checks the flow interpreter before anything else changes", "[repo]") {
  TempDir tmp;
  Captured captured;
  Config config;

  SECTION("Prefect found: its version is logged") {
    config.python = probe_python(tmp.path(), "3.8.8", 0).string();
    PreflightReport report = run_preflight(config, captured.log, nullptr);
    CHECK(captured.out.str().find("flow runs will use " + config.python + " (Prefect 3.8.8)") !=
          std::string::npos);
  }
  SECTION("no Prefect: exit 4 naming PREFECT_WORKER_PYTHON and the fix") {
    config.python = probe_python(tmp.path(), "No module named prefect", 3).string();
    std::string message = failure(config, captured.log);
    CHECK(message == "PREFECT_WORKER_PYTHON: \"" + config.python +
                         "\" cannot run flow runs (exit code 3: No module named prefect)");
  }
  SECTION("no such interpreter") {
    config.python = (tmp / "no-python-here").string();
    std::string message = failure(config, captured.log);
    CHECK(message.rfind("PREFECT_WORKER_PYTHON: \"" + config.python + "\" not found", 0) == 0);
  }
}
