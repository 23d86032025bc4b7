#include "config/child_env.hpp"

#include <catch2/catch.hpp>

using namespace pc;

namespace {

Config api_config() {
  Config config;
  config.api_url = "http://127.0.0.1:4200/api";
  return config;
}

}  // namespace

TEST_CASE("child_environment: what a flow process inherits", "[config]") {
  SECTION("our environment, then the effective API settings, which win") {
    Config config = api_config();
    config.api_key = "pnu_flag_key";
    const Environment base{{"HOME", "/home/app"},
                           {"PREFECT_API_URL", "http://stale:4200/api"},
                           {"PREFECT_API_KEY", "pnu_env_key"}};
    const Environment env = child_environment(config, base, {});
    CHECK(env.at("HOME") == "/home/app");
    CHECK(env.at("PREFECT_API_URL") == "http://127.0.0.1:4200/api");
    CHECK(env.at("PREFECT_API_KEY") == "pnu_flag_key");
  }

  SECTION("secrets the configuration cleared are not inherited from our environment") {
    const Environment base{{"PREFECT_API_KEY", "pnu_env_key"},
                           {"PREFECT_API_AUTH_STRING", "user:pass"},
                           {"PREFECT_API_SSL_CERT_FILE", "/etc/ca.pem"}};
    const Environment env = child_environment(api_config(), base, {});
    CHECK(env.count("PREFECT_API_KEY") == 0);
    CHECK(env.count("PREFECT_API_AUTH_STRING") == 0);
    CHECK(env.count("PREFECT_API_SSL_CERT_FILE") == 0);
  }

  SECTION("the auth string, the CA file and skip-verify are passed on as configured") {
    Config config = api_config();
    config.api_auth_string = "admin:s3cret";
    config.ssl_cert_file = "/certs/ca.pem";
    config.tls_insecure_skip_verify = true;
    const Environment env = child_environment(config, {}, {});
    CHECK(env.at("PREFECT_API_AUTH_STRING") == "admin:s3cret");
    CHECK(env.at("PREFECT_API_SSL_CERT_FILE") == "/certs/ca.pem");
    CHECK(env.at("PREFECT_API_TLS_INSECURE_SKIP_VERIFY") == "true");
  }

  SECTION("DATABASE_URL is the effective one (e.g. from DATABASE_PUBLIC_URL)") {
    Config config = api_config();
    config.database_url = "postgresql://app:pw@db/prod";
    const Environment env = child_environment(config, {{"DATABASE_URL", ""}}, {});
    CHECK(env.at("DATABASE_URL") == "postgresql://app:pw@db/prod");
    CHECK(child_environment(api_config(), {}, {}).count("DATABASE_URL") == 0);
  }

  SECTION("extra entries win; the code directory goes first on an existing PYTHONPATH") {
    const Environment base{{"PYTHONPATH", "/opt/lib"}, {"LANG", "C"}};
    const Environment env =
        child_environment(api_config(), base, {{"PYTHONPATH", "/code"}, {"LANG", "C.UTF-8"}});
    CHECK(env.at("PYTHONPATH") == "/code:/opt/lib");
    CHECK(env.at("LANG") == "C.UTF-8");
    CHECK(child_environment(api_config(), {{"PYTHONPATH", ""}}, {{"PYTHONPATH", "/code"}})
              .at("PYTHONPATH") == "/code");
  }
}
