#pragma once
// A flow run whose process the worker started (or failed to start): what the
// loop supervises, and what Reports turns into a final state once it ended.

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <utility>

#include "log/logger.hpp"
#include "prefect/client.hpp"
#include "worker/launch/process_starter.hpp"
#include "worker/native/flow_output.hpp"

namespace pc {

struct Running {
  Running(FlowRun flow_run, const Logger& run_log)
      : run(std::move(flow_run)), log(run_log), out(run_log), err(run_log) {}

  FlowRun run;
  Logger log;
  FlowOutput out;  // the process's stdout, as log events
  FlowOutput err;  // its stderr
  ProcessStarter::Id process = 0;
  std::string spawn_error;  // the command could not be started
  std::optional<std::filesystem::path> temp_dir;
  bool stream_output = true;
  bool cancelling = false;  // the run was cancelled in Prefect
  std::string stop_reason;  // the cycle is stopping it
  std::chrono::steady_clock::time_point started;
};

// The runs being supervised, by flow run id. Map nodes do not move: the
// process's callbacks may point to an entry until it has ended.
using RunningMap = std::map<std::string, Running>;

}  // namespace pc
