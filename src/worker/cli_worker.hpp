#pragma once
// The worker phase for pools whose type has no native worker here: runs
// Prefect's own worker CLI (`python -m prefect worker start ... --run-once`)
// as a child, streams its output into our log, and stops it on a signal
// (SIGTERM to its process group, the grace period, then SIGKILL).

#include <functional>
#include <map>
#include <string>

#include "config/config.hpp"
#include "worker/phase.hpp"

namespace pc {

class CliWorker final : public WorkerPhase {
 public:
  CliWorker(const Config& config, Environment env, std::function<std::string()> stop_reason);
  WorkerPhaseResult run(const Logger& log) override;

  // The argv it runs, for tests and --dry-run.
  std::vector<std::string> argv() const;

 private:
  const Config& config_;
  Environment env_;
  std::function<std::string()> stop_reason_;
};

}  // namespace pc
