#pragma once
// The base job template a `process` work pool gets when the cycle creates the
// pool, and the worker's when a pool has none.

#include <nlohmann/json.hpp>

namespace pc {

// ProcessWorker.get_default_base_job_template() of Prefect 3.8.8.
const nlohmann::json& default_process_job_template();

}  // namespace pc
