#include "config/config.hpp"

#include <catch2/catch.hpp>
#include <sstream>

#include "cli/commands.hpp"
#include "common/error.hpp"
#include "config/settings.hpp"

using namespace pc;

namespace {

Environment base_env() {
  return {{"PREFECT_API_URL", "http://127.0.0.1:4200/api"}};
}

std::string usage_message(const Environment& env, const FlagValues& flags = {}) {
  try {
    load_config(env, flags);
  } catch (const Error& e) {
    CHECK(e.code() == ExitCode::kUsage);
    return e.message();  // the fix of each class: tests/unit/common/hint_test.cpp
  }
  FAIL("expected a usage error");
  return {};
}

Environment with(std::string key, std::string value) {
  auto env = base_env();
  env[std::move(key)] = std::move(value);
  return env;
}

}  // namespace

TEST_CASE("load_config defaults", "[config]") {
  auto loaded = load_config(base_env(), {}, Surroundings{});
  const Config& c = loaded.config;
  CHECK(c.api_url == "http://127.0.0.1:4200/api");
  CHECK(c.work_pool == "default-agent-pool");
  CHECK(c.work_queues.empty());
  CHECK(c.worker_name.rfind("prefect-cycle-", 0) == 0);
  CHECK(c.worker_type == "process");
  CHECK(c.prefetch == std::chrono::seconds(120));
  CHECK(c.flow_limit == 5);
  CHECK(c.heartbeat_interval == std::chrono::seconds(30));
  CHECK_FALSE(c.run_forever);
  CHECK(c.wait_for_completion);
  CHECK(c.wait_timeout == std::chrono::seconds(0));
  CHECK(c.wait_poll == std::chrono::seconds(10));
  CHECK(c.active_state_types ==
        std::vector<StateType>{StateType::kPending, StateType::kRunning, StateType::kCancelling});
  CHECK(c.auto_pause == AutoPause::kOn);
  CHECK(c.branch == "main");
  CHECK(c.verify_repository);
  CHECK(c.install_requirements);
  CHECK(c.requirements_file == "requirements.txt");
  CHECK_FALSE(c.install_editable);
  CHECK(c.python == "python3");
  CHECK(c.log_level == LogLevel::kInfo);
  CHECK(c.log_format == LogFormat::kText);
  CHECK(c.request_timeout == std::chrono::seconds(30));
  CHECK(c.client_max_retries == 5);
  CHECK(c.max_connections == 16);
  CHECK(c.warnings.empty());
  for (const auto& entry : loaded.entries) {
    if (entry.variable != "PREFECT_API_URL") {
      CHECK(entry.origin == Origin::kDefault);
    }
  }
}

TEST_CASE("load_config reads every variable", "[config]") {
  Environment env{
      {"PREFECT_API_URL", "https://api.prefect.cloud/api/accounts/a/workspaces/w/"},
      {"PREFECT_API_KEY", "pnu_key123"},
      {"PREFECT_API_AUTH_STRING", "admin:pass123"},
      {"PREFECT_API_SSL_CERT_FILE", "/etc/ca.pem"},
      {"PREFECT_API_TLS_INSECURE_SKIP_VERIFY", "yes"},
      {"PREFECT_API_REQUEST_TIMEOUT", "7"},
      {"PREFECT_CLIENT_MAX_RETRIES", "0"},
      {"PREFECT_CYCLE_MAX_CONNECTIONS", "32"},
      {"PREFECT_WORK_POOL", "etl"},
      {"PREFECT_WORK_QUEUES", " a, b ,,c "},
      {"PREFECT_WORKER_NAME", "w1"},
      {"PREFECT_WORKER_TYPE", "docker"},
      {"PREFECT_WORKER_PREFETCH_SECONDS", "0"},
      {"PREFECT_WORKER_FLOW_LIMIT", "3"},
      {"PREFECT_WORKER_HEARTBEAT_SECONDS", "15"},
      {"PREFECT_WORKER_RUN_FOREVER", "ON"},
      {"PREFECT_TRIGGER_DEPLOYMENTS", "hello world/my deployment, etl/nightly"},
      {"PREFECT_WAIT_TIMEOUT_SECONDS", "600"},
      {"PREFECT_WAIT_POLL_SECONDS", "2"},
      {"PREFECT_ACTIVE_STATE_TYPES", "running,pending"},
      {"PREFECT_WORKER_REPOSITORY", "https://github.com/o/r.git"},
      {"PREFECT_WORKER_BRANCH", "prod"},
      {"PREFECT_WORKER_VERIFY_REPOSITORY", "0"},
      {"GITHUB_ACCESS_TOKEN", "ghp_token"},
      {"TRUECIVIC_CODE_DIR", "/srv/code"},
      {"TRUECIVIC_INSTALL_REQUIREMENTS", "false"},
      {"TRUECIVIC_REQUIREMENTS_FILE", "req/prod.txt"},
      {"TRUECIVIC_INSTALL_EDITABLE", "true"},
      {"DATABASE_PUBLIC_URL", "postgresql://u:dbpass@db:5432/x"},
      {"PREFECT_WORKER_PYTHON", "/opt/venv/bin/python"},
      {"PREFECT_CYCLE_SUMMARY_FILE", "/tmp/s.json"},
      {"PREFECT_WORKER_CYCLE_LOG_LEVEL", "DEBUG"},
      {"PREFECT_WORKER_CYCLE_LOG_FORMAT", "json"},
  };
  auto loaded = load_config(env, {});
  const Config& c = loaded.config;
  CHECK(c.api_url == "https://api.prefect.cloud/api/accounts/a/workspaces/w");
  CHECK(c.api_key == "pnu_key123");
  CHECK(c.api_auth_string == "admin:pass123");
  CHECK(c.ssl_cert_file == "/etc/ca.pem");
  CHECK(c.tls_insecure_skip_verify);
  CHECK(c.request_timeout == std::chrono::seconds(7));
  CHECK(c.client_max_retries == 0);
  CHECK(c.max_connections == 32);
  CHECK(c.work_pool == "etl");
  CHECK(c.work_queues == std::vector<std::string>{"a", "b", "c"});
  CHECK(c.worker_name == "w1");
  CHECK(c.worker_type == "docker");
  CHECK(c.prefetch == std::chrono::seconds(0));
  CHECK(c.flow_limit == 3);
  CHECK(c.heartbeat_interval == std::chrono::seconds(15));
  CHECK(c.run_forever);
  // run-forever turns the wait and the auto-pause off unless set.
  CHECK_FALSE(c.wait_for_completion);
  CHECK(c.auto_pause == AutoPause::kOff);
  REQUIRE(c.trigger_deployments.size() == 2);
  CHECK(c.trigger_deployments[0] == DeploymentRef{"hello world", "my deployment"});
  CHECK(c.trigger_deployments[1] == DeploymentRef{"etl", "nightly"});
  CHECK(c.wait_timeout == std::chrono::seconds(600));
  CHECK(c.wait_poll == std::chrono::seconds(2));
  CHECK(c.active_state_types == std::vector<StateType>{StateType::kRunning, StateType::kPending});
  CHECK(c.repository == "https://github.com/o/r.git");
  CHECK(c.branch == "prod");
  CHECK_FALSE(c.verify_repository);
  CHECK(c.github_token == "ghp_token");
  CHECK(c.code_dir == "/srv/code");
  CHECK_FALSE(c.install_requirements);
  CHECK(c.requirements_file == "req/prod.txt");
  CHECK(c.install_editable);
  CHECK(c.database_url == "postgresql://u:dbpass@db:5432/x");
  CHECK(c.database_url_from_public);
  CHECK(c.python == "/opt/venv/bin/python");
  CHECK(c.summary_file == "/tmp/s.json");
  CHECK(c.log_level == LogLevel::kDebug);
  CHECK(c.log_format == LogFormat::kJson);
  // Cloud workspace path: no URL warning; insecure TLS and both auths warn.
  REQUIRE(c.warnings.size() == 2);
  CHECK(c.warnings[0].find("PREFECT_API_TLS_INSECURE_SKIP_VERIFY is on") == 0);
  CHECK(c.warnings[1].find("both PREFECT_API_AUTH_STRING and PREFECT_API_KEY") == 0);
}

TEST_CASE("load_config: a flag beats its variable", "[config]") {
  auto env = with("PREFECT_WORK_POOL", "from-env");
  auto loaded = load_config(env, {{"--pool", "from-flag"}, {"--limit", "9"}, {"--drain", "true"}});
  CHECK(loaded.config.work_pool == "from-flag");
  CHECK(loaded.config.flow_limit == 9);
  CHECK(loaded.config.drain);
  for (const auto& e : loaded.entries) {
    if (e.variable == "PREFECT_WORK_POOL") {
      CHECK(e.origin == Origin::kFlag);
      CHECK(e.source == "--pool");
      CHECK(e.value == "from-flag");
    }
  }
}

TEST_CASE("load_config: bad values name the variable, the value and what is allowed", "[config]") {
  SECTION("integer") {
    CHECK(usage_message(with("PREFECT_WORKER_FLOW_LIMIT", "abc")) ==
          "PREFECT_WORKER_FLOW_LIMIT: invalid integer \"abc\" (expected 1..1000)");
    CHECK(usage_message(with("PREFECT_WORKER_FLOW_LIMIT", "0")) ==
          "PREFECT_WORKER_FLOW_LIMIT: 0 is out of range (expected 1..1000)");
    CHECK(usage_message(with("PREFECT_WORKER_FLOW_LIMIT", "5x")) ==
          "PREFECT_WORKER_FLOW_LIMIT: invalid integer \"5x\" (expected 1..1000)");
    CHECK(usage_message(with("PREFECT_WAIT_TIMEOUT_SECONDS", "-1")) ==
          "PREFECT_WAIT_TIMEOUT_SECONDS: -1 is out of range (expected 0..604800)");
    CHECK(usage_message(with("PREFECT_WORKER_FLOW_LIMIT", "99999999999999999999")) ==
          "PREFECT_WORKER_FLOW_LIMIT: invalid integer \"99999999999999999999\" (expected "
          "1..1000)");
    CHECK(usage_message(with("PREFECT_CLIENT_MAX_RETRIES", "21")) ==
          "PREFECT_CLIENT_MAX_RETRIES: 21 is out of range (expected 0..20)");
    CHECK(usage_message(with("PREFECT_CYCLE_MAX_CONNECTIONS", "0")) ==
          "PREFECT_CYCLE_MAX_CONNECTIONS: 0 is out of range (expected 1..256)");
  }
  SECTION("flag names the flag") {
    CHECK(usage_message(base_env(), {{"--limit", "many"}}) ==
          "--limit: invalid integer \"many\" (expected 1..1000)");
  }
  SECTION("boolean") {
    CHECK(usage_message(with("PREFECT_WORKER_RUN_FOREVER", "maybe")) ==
          "PREFECT_WORKER_RUN_FOREVER: invalid boolean \"maybe\" (expected "
          "true/false/1/0/yes/no/on/off)");
    CHECK(usage_message(with("PREFECT_AUTO_PAUSE", "sometimes")) ==
          "PREFECT_AUTO_PAUSE: invalid value \"sometimes\" (expected "
          "true/false/1/0/yes/no/on/off or force)");
  }
  SECTION("state types with a suggestion") {
    CHECK(usage_message(with("PREFECT_ACTIVE_STATE_TYPES", "PENDING,RUNING")) ==
          "PREFECT_ACTIVE_STATE_TYPES: unknown state type \"RUNING\" (expected any of "
          "SCHEDULED, PENDING, RUNNING, COMPLETED, FAILED, CANCELLED, CRASHED, PAUSED, "
          "CANCELLING); did you mean \"RUNNING\"?");
    CHECK(usage_message(with("PREFECT_ACTIVE_STATE_TYPES", " , ")) ==
          "PREFECT_ACTIVE_STATE_TYPES: empty list \" , \" (expected a comma list of state "
          "types, e.g. PENDING,RUNNING)");
  }
  SECTION("deployments") {
    CHECK(usage_message(with("PREFECT_TRIGGER_DEPLOYMENTS", "etl")) ==
          "PREFECT_TRIGGER_DEPLOYMENTS: invalid deployment \"etl\" (expected "
          "flow-name/deployment-name)");
    CHECK(usage_message(with("PREFECT_TRIGGER_DEPLOYMENTS", "a/b/c")) ==
          "PREFECT_TRIGGER_DEPLOYMENTS: invalid deployment \"a/b/c\" (expected "
          "flow-name/deployment-name)");
  }
  SECTION("log settings") {
    CHECK(usage_message(with("PREFECT_WORKER_CYCLE_LOG_LEVEL", "loud")) ==
          "PREFECT_WORKER_CYCLE_LOG_LEVEL: invalid log level \"loud\" (expected trace, debug, "
          "info, warning, error or critical)");
    CHECK(usage_message(with("PREFECT_WORKER_CYCLE_LOG_FORMAT", "xml")) ==
          "PREFECT_WORKER_CYCLE_LOG_FORMAT: invalid log format \"xml\" (expected text or json)");
  }
  SECTION("worker name") {
    CHECK(usage_message(with("PREFECT_WORKER_NAME", "a/b")) ==
          "PREFECT_WORKER_NAME: invalid worker name \"a/b\" (Prefect forbids '/' and '%' in "
          "worker names)");
  }
}

TEST_CASE("load_config: PREFECT_API_URL", "[config]") {
  SECTION("missing") {
    CHECK(usage_message({}).rfind("PREFECT_API_URL: not set (expected the API base URL", 0) == 0);
  }
  SECTION("no scheme or host") {
    CHECK(usage_message({{"PREFECT_API_URL", "localhost:4200/api"}}) ==
          "PREFECT_API_URL: invalid URL \"localhost:4200/api\" (expected "
          "http(s)://host[:port]/api, e.g. http://127.0.0.1:4200/api)");
    CHECK(usage_message({{"PREFECT_API_URL", "http:///api"}}).find("invalid URL") !=
          std::string::npos);
  }
  SECTION("password in a bad URL is not echoed") {
    auto message = usage_message({{"PREFECT_API_URL", "ftp://u:hunter22@h/api"}});
    CHECK(message.find("hunter22") == std::string::npos);
  }
  SECTION("without /api: a warning saying what to change") {
    auto loaded = load_config({{"PREFECT_API_URL", "http://127.0.0.1:4200"}}, {});
    REQUIRE(loaded.config.warnings.size() == 1);
    CHECK(loaded.config.warnings[0] ==
          "PREFECT_API_URL \"http://127.0.0.1:4200\" does not end in /api: a self-hosted "
          "server's API is at http(s)://host:port/api, Prefect Cloud's at "
          "https://api.prefect.cloud/api/accounts/<account>/workspaces/<workspace>");
  }
  SECTION("trailing slash dropped") {
    CHECK(load_config({{"PREFECT_API_URL", "http://h:1/api/"}}, {}).config.api_url ==
          "http://h:1/api");
  }
}

TEST_CASE("load_config: empty variables count as unset", "[config]") {
  auto loaded = load_config(with("PREFECT_WORK_POOL", ""), {});
  CHECK(loaded.config.work_pool == "default-agent-pool");
  CHECK(usage_message(base_env(), {{"--pool", ""}}) ==
        "--pool: empty value (expected a pool name)");
}

TEST_CASE("load_config: DATABASE_URL wins over DATABASE_PUBLIC_URL", "[config]") {
  auto env = with("DATABASE_URL", "postgresql://a@x/db");
  env["DATABASE_PUBLIC_URL"] = "postgresql://b@y/db";
  auto loaded = load_config(env, {});
  CHECK(loaded.config.database_url == "postgresql://a@x/db");
  CHECK_FALSE(loaded.config.database_url_from_public);
}

TEST_CASE("print_config shows origins and hides secrets", "[config]") {
  auto env = with("PREFECT_API_KEY", "pnu_secretkey");
  env["PREFECT_API_AUTH_STRING"] = "admin:s3cretpass";
  env["GITHUB_ACCESS_TOKEN"] = "ghp_abcdef";
  env["PREFECT_WORKER_REPOSITORY"] = "https://bob:repopass@git.example/r.git";
  env["DATABASE_URL"] = "postgresql://u:dbpass99@db/x";
  env["TRUECIVIC_CODE_DIR"] = "/srv/code";
  auto loaded = load_config(env, {{"--pool", "p1"}});
  std::ostringstream out;
  print_config(loaded, out);
  const std::string text = out.str();
  for (const char* secret : {"pnu_secretkey", "s3cretpass", "ghp_abcdef", "repopass", "dbpass99"}) {
    INFO(secret);
    CHECK(text.find(secret) == std::string::npos);
  }
  CHECK(text.find("PREFECT_API_KEY                          ***  [env PREFECT_API_KEY]") !=
        std::string::npos);
  CHECK(text.find("PREFECT_WORK_POOL                        p1  [flag --pool]") !=
        std::string::npos);
  CHECK(text.find("PREFECT_WORKER_CODE_DIR                  /srv/code  [env TRUECIVIC_CODE_DIR]") !=
        std::string::npos);
  CHECK(text.find("PREFECT_WORKER_REPOSITORY                https://bob:***@git.example/r.git") !=
        std::string::npos);
  CHECK(text.find("PREFECT_WORKER_FLOW_LIMIT                5  [default]") != std::string::npos);
}

TEST_CASE("a Prefect Cloud API path names an account and a workspace") {
  CHECK(pc::is_cloud_workspace_path("/api/accounts/a1/workspaces/w1"));
  CHECK_FALSE(pc::is_cloud_workspace_path("/api/accounts/a1"));
  CHECK_FALSE(pc::is_cloud_workspace_path("/api/accounts/a1/workspaces/"));
  CHECK_FALSE(pc::is_cloud_workspace_path("/api/accounts/a1/workspaces/w1/extra"));
  CHECK_FALSE(pc::is_cloud_workspace_path("/api"));
}

TEST_CASE("default_log_format: JSON where a log viewer reads levels, text elsewhere", "[config]") {
  Surroundings terminal{true, false};
  Surroundings container{false, true};
  Surroundings container_tty{true, true};
  Surroundings pipe{false, false};
  CHECK(default_log_format({}, terminal).first == LogFormat::kText);
  CHECK(default_log_format({}, pipe).first == LogFormat::kText);
  CHECK(default_log_format({}, container_tty).first == LogFormat::kText);
  CHECK(default_log_format({}, container) ==
        std::pair<LogFormat, std::string>{LogFormat::kJson, "in a container without a terminal"});
  CHECK(default_log_format({{"RAILWAY_ENVIRONMENT_NAME", "production"}}, terminal) ==
        std::pair<LogFormat, std::string>{
            LogFormat::kJson, "RAILWAY_ENVIRONMENT_NAME is set: Railway reads JSON levels"});
  CHECK(default_log_format({{"KUBERNETES_SERVICE_HOST", "10.0.0.1"}}, pipe).first ==
        LogFormat::kJson);
  CHECK(default_log_format({{"RAILWAY_ENVIRONMENT_NAME", " "}}, pipe).first == LogFormat::kText);

  SECTION("the variable wins, and config shows where the default came from") {
    auto env = base_env();
    env["RAILWAY_SERVICE_ID"] = "svc";
    auto loaded = load_config(env, {}, pipe);
    CHECK(loaded.config.log_format == LogFormat::kJson);
    for (const auto& entry : loaded.entries) {
      if (entry.variable == "PREFECT_WORKER_CYCLE_LOG_FORMAT") {
        CHECK(entry.origin == Origin::kDefault);
        CHECK(entry.source == "RAILWAY_SERVICE_ID is set: Railway reads JSON levels");
      }
    }
    env["PREFECT_WORKER_CYCLE_LOG_FORMAT"] = "text";
    CHECK(load_config(env, {}, pipe).config.log_format == LogFormat::kText);
  }
}

TEST_CASE("load_config: DATABASE_PUBLIC_URL alone shows as its origin", "[config]") {
  auto env = base_env();
  env["DATABASE_PUBLIC_URL"] = "postgresql://u:pw@db:5432/app";
  auto loaded = load_config(env, {}, Surroundings{});
  CHECK(loaded.config.database_url_from_public);
  bool seen = false;
  for (const auto& entry : loaded.entries) {
    if (entry.variable == "DATABASE_URL") {
      seen = true;
      CHECK(entry.origin == Origin::kEnv);
      CHECK(entry.source == "DATABASE_PUBLIC_URL");
      CHECK(entry.value == "postgresql://u:***@db:5432/app");
    }
  }
  CHECK(seen);
}

TEST_CASE("load_config: the installer and the cache directory", "[config]") {
  CHECK(load_config(base_env(), {}).config.installer == InstallerChoice::kAuto);
  CHECK(load_config(with("PREFECT_CYCLE_INSTALLER", " UV "), {}).config.installer ==
        InstallerChoice::kUv);
  CHECK(load_config(with("PREFECT_CYCLE_INSTALLER", "pip"), {}).config.installer ==
        InstallerChoice::kPip);
  CHECK(usage_message(with("PREFECT_CYCLE_INSTALLER", "conda")) ==
        "PREFECT_CYCLE_INSTALLER: invalid installer \"conda\" (expected auto, uv or pip)");

  CHECK(load_config(base_env(), {}).config.cache_dir.empty());
  auto railway = with("RAILWAY_VOLUME_MOUNT_PATH", "/data");
  auto loaded = load_config(railway, {});
  CHECK(loaded.config.cache_dir == "/data/prefect-cycle-cache");
  railway["PREFECT_CYCLE_CACHE_DIR"] = "/cache";
  CHECK(load_config(railway, {}).config.cache_dir == "/cache");
}
