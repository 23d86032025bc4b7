// The writes of logs and events (best effort: their callers never let a
// failure fail a run or a cycle) and the server's version as a Read.
#include <utility>

#include "prefect/client.hpp"

namespace pc {
namespace {

void check_written(const ApiClient::Call& call, const ApiResponse& response) {
  if (response.status < 200 || response.status >= 300) {
    throw HttpStatusError(
        call.method + " " + call.path + ": unexpected HTTP " + std::to_string(response.status),
        Hint::kApiAnswer, response.status, "");
  }
}

}  // namespace

ApiClient::Call PrefectClient::logs_call(nlohmann::json records) {
  return {"POST", "/logs/", std::move(records)};
}

ApiClient::Call PrefectClient::events_call(nlohmann::json events) {
  return {"POST", "/events", std::move(events)};
}

void PrefectClient::start_write(const ApiClient::Call& call, const RequestOptions& options,
                                std::function<void(std::exception_ptr)> done) {
  start_answered(call, options,
                 [call, done = std::move(done)](ApiClient::CallId, const ApiClient::Result& r) {
                   std::exception_ptr error;
                   try {
                     check_written(call, r.get());
                   } catch (...) {
                     error = std::current_exception();
                   }
                   done(error);
                 });
}

void PrefectClient::write(const ApiClient::Call& call, const RequestOptions& options) {
  check_written(call, api_.request(call.method, call.path, call.body, options));
}

}  // namespace pc
