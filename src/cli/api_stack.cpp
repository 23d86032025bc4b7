#include "cli/api_stack.hpp"

#include "cycle/signals.hpp"

namespace pc {
namespace {

TlsOptions tls_options(const Config& config) {
  TlsOptions tls;
  tls.ca_file = config.ssl_cert_file;
  tls.insecure_skip_verify = config.tls_insecure_skip_verify;
  return tls;
}

ApiOptions api_options(const Config& config) {
  ApiOptions options;
  options.base_url = config.api_url;
  options.api_key = config.api_key;
  options.auth_string = config.api_auth_string;
  options.request_timeout =
      std::chrono::duration_cast<std::chrono::milliseconds>(config.request_timeout);
  return options;
}

}  // namespace

RetryPolicy api_retry_policy(const Config& config) {
  RetryPolicy policy;
  policy.max_attempts = config.client_max_retries + 1;
  return policy;
}

ApiStack::ApiStack(const Config& config, const Logger& log, RetryPolicy policy)
    : transport_(tls_options(config),
                 std::chrono::duration_cast<std::chrono::milliseconds>(config.request_timeout),
                 config.max_connections),
      sleeper_(&StopSignal::flag(), &StopSignal::hurry_flag()),
      api_(transport_, api_options(config), log, policy, sleeper_, clock_),
      client_(api_) {}

}  // namespace pc
