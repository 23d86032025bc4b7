#pragma once
// The production HTTP stack built from a Config: libcurl transport, an
// interruptible sleeper watching the stop signal, the retrying ApiClient and
// the typed PrefectClient on top. One per command.

#include "config/config.hpp"
#include "http/api_client.hpp"
#include "http/http_client.hpp"
#include "http/retry.hpp"
#include "log/logger.hpp"
#include "prefect/client.hpp"

namespace pc {

class ApiStack {
 public:
  ApiStack(const Config& config, const Logger& log, RetryPolicy policy = RetryPolicy{});

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
