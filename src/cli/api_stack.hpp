#pragma once
// The production HTTP stack built from a Config: libcurl transport, an
// interruptible sleeper watching the stop signal, the retrying ApiClient and
// the typed PrefectClient on top. One per command.

#include "config/config.hpp"
#include "http/api_client.hpp"
#include "http/curl_transport.hpp"
#include "http/retry.hpp"
#include "log/logger.hpp"
#include "prefect/client.hpp"

namespace pc {

// The retry policy of a command's API calls: RetryPolicy's back-off with
// PREFECT_CLIENT_MAX_RETRIES retries after the first try.
RetryPolicy api_retry_policy(const Config& config);

class ApiStack {
 public:
  ApiStack(const Config& config, const Logger& log)
      : ApiStack(config, log, api_retry_policy(config)) {}
  ApiStack(const Config& config, const Logger& log, RetryPolicy policy);

  PrefectClient& client() { return client_; }
  ApiClient& api() { return api_; }
  Sleeper& sleeper() { return sleeper_; }

 private:
  CurlTransport transport_;
  InterruptibleSleeper sleeper_;
  ApiClient api_;
  PrefectClient client_;
};

}  // namespace pc
