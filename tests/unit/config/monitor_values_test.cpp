#include "config/monitor_values.hpp"

#include <catch2/catch.hpp>
#include <sstream>

#include "cli/commands.hpp"
#include "common/error.hpp"

using namespace pc;

namespace {

const std::string kToken = "0e2a3c3b-6d4e-4f5a-9b8c-7d6e5f4a3b2c";

std::string usage_message(const Environment& env) {
  try {
    load_config(env, {});
  } catch (const Error& e) {
    CHECK(e.code() == ExitCode::kUsage);
    CHECK(e.hint() == Hint::kConfigValue);
    return e.message();
  }
  FAIL("expected a usage error");
  return {};
}

Environment env_with(std::string key, std::string value) {
  Environment env{{"PREFECT_API_URL", "http://127.0.0.1:4200/api"}, {"PREFECT_WORK_POOL", "etl"}};
  env[std::move(key)] = std::move(value);
  return env;
}

}  // namespace

TEST_CASE("monitoring settings: parse, defaults, errors", "[config]") {
  SECTION("defaults: no monitoring, job prefect_cycle, grouping pool=<pool>") {
    auto loaded = load_config(env_with("X", "y"), {});
    CHECK(loaded.config.ping_url.empty());
    CHECK(loaded.config.pushgateway_url.empty());
    CHECK(loaded.config.pushgateway_job == "prefect_cycle");
    CHECK(loaded.config.pushgateway_grouping ==
          std::vector<std::pair<std::string, std::string>>{{"pool", "etl"}});
  }

  SECTION("values are read and normalised") {
    auto env = env_with("PREFECT_CYCLE_PING_URL", "https://hc-ping.com/" + kToken + "/");
    env["PREFECT_CYCLE_PUSHGATEWAY_URL"] = "http://pg:9091/";
    env["PREFECT_CYCLE_PUSHGATEWAY_JOB"] = "nightly";
    env["PREFECT_CYCLE_PUSHGATEWAY_GROUPING"] = "env=prod, team = data";
    auto c = load_config(env, {}).config;
    CHECK(c.ping_url == "https://hc-ping.com/" + kToken);
    CHECK(c.pushgateway_url == "http://pg:9091");
    CHECK(c.pushgateway_job == "nightly");
    CHECK(c.pushgateway_grouping ==
          std::vector<std::pair<std::string, std::string>>{{"env", "prod"}, {"team", "data"}});
  }

  SECTION("a query stays; only the path loses its trailing slash") {
    CHECK(parse_ping_url("X", "https://h/ping/key/slug/?create=1") ==
          "https://h/ping/key/slug?create=1");
  }

  SECTION("a bad ping URL is reported without the token") {
    auto message = usage_message(env_with("PREFECT_CYCLE_PING_URL", "ftp://hc-ping.com/" + kToken));
    CHECK(message ==
          "PREFECT_CYCLE_PING_URL: invalid URL (not shown: it is a secret) (expected "
          "http(s)://host/<check>, e.g. https://hc-ping.com/<uuid> or "
          "https://hc-ping.com/<ping-key>/<slug>)");
    CHECK(usage_message(env_with("PREFECT_CYCLE_PING_URL", "https://hc-ping.com/")) ==
          "PREFECT_CYCLE_PING_URL: URL \"https://hc-ping.com/***\" has no path, so no check "
          "token (expected http(s)://host/<check>, e.g. https://hc-ping.com/<uuid> or "
          "https://hc-ping.com/<ping-key>/<slug>)");
  }

  SECTION("bad Pushgateway values name the variable, the value and what is allowed") {
    CHECK(usage_message(
              env_with("PREFECT_CYCLE_PUSHGATEWAY_URL", "http://u:pw99@pg:9091/metrics/job/x")) ==
          "PREFECT_CYCLE_PUSHGATEWAY_URL: URL \"http://u:***@pg:9091/metrics/job/x\" already "
          "contains /metrics (expected the Pushgateway's base URL http(s)://host:port, e.g. "
          "http://pushgateway:9091; prefect-cycle adds /metrics/job/...)");
    CHECK(usage_message(env_with("PREFECT_CYCLE_PUSHGATEWAY_GROUPING", "job=x")) ==
          "PREFECT_CYCLE_PUSHGATEWAY_GROUPING: invalid label name \"job\" (expected a comma list "
          "of label=value, e.g. pool=etl,env=prod; label names match [a-zA-Z_][a-zA-Z0-9_]*, not "
          "job, not __*)");
    CHECK(usage_message(env_with("PREFECT_CYCLE_PUSHGATEWAY_GROUPING", "env"))
              .find("invalid label \"env\"") != std::string::npos);
    CHECK(usage_message(env_with("PREFECT_CYCLE_PUSHGATEWAY_GROUPING", "a=1,a=2"))
              .find("label \"a\" given twice") != std::string::npos);
    CHECK(usage_message(env_with("PREFECT_CYCLE_PUSHGATEWAY_GROUPING", "1x=2"))
              .find("invalid label name \"1x\"") != std::string::npos);
  }
}

TEST_CASE("monitoring secrets: redacted everywhere, *** in config", "[config]") {
  auto env = env_with("PREFECT_CYCLE_PING_URL", "https://hc-ping.com/" + kToken);
  env["PREFECT_CYCLE_PUSHGATEWAY_URL"] = "https://prom:pgpass99@pg.example:9091";
  auto loaded = load_config(env, {});
  const auto& redactor = *loaded.config.redactor;

  CHECK(redactor.redact("GET https://hc-ping.com/" + kToken + "/start") == "GET ***/start");
  CHECK(redactor.redact("token " + kToken + " alone") == "token *** alone");
  CHECK(redactor.redact("pgpass99") == "***");

  std::ostringstream out;
  print_config(loaded, out);
  CHECK(out.str().find(kToken) == std::string::npos);
  CHECK(out.str().find("pgpass99") == std::string::npos);
  CHECK(out.str().find("PREFECT_CYCLE_PING_URL") != std::string::npos);
  CHECK(out.str().find("https://prom:***@pg.example:9091") != std::string::npos);

  SECTION("short path segments are not secrets of their own") {
    auto secrets = ping_url_secrets("https://h/ping/" + kToken);
    CHECK(std::find(secrets.begin(), secrets.end(), "ping") == secrets.end());
    CHECK(std::find(secrets.begin(), secrets.end(), kToken) != secrets.end());
    CHECK(std::find(secrets.begin(), secrets.end(), "/ping/" + kToken) != secrets.end());
  }
}
