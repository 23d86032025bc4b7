// libFuzzer target: every decoder of a Prefect API response. The input is one
// JSON document (the corpus holds real server responses); each decoder either
// returns a value or throws pc::Error ("unexpected Prefect API response").
#include <cstddef>
#include <cstdint>

#include <nlohmann/json.hpp>

#include "common/error.hpp"
#include "prefect/types.hpp"

namespace {

template <typename Decode>
void attempt(Decode decode, const nlohmann::json& j) {
  try {
    decode(j);
  } catch (const pc::Error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto j = nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return 0;
  }
  attempt(pc::decode_work_pool, j);
  attempt(pc::decode_deployment, j);
  attempt(pc::decode_state, j);
  attempt(pc::decode_flow_run, j);
  attempt(pc::decode_worker_flow_run, j);
  attempt(pc::decode_worker, j);
  attempt(pc::decode_set_state_result, j);
  return 0;
}
