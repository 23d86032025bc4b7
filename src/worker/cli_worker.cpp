#include "worker/cli_worker.hpp"

#include "process/process.hpp"

namespace pc {

CliWorker::CliWorker(const Config& config, Environment env,
                     std::function<std::string()> stop_reason)
    : config_(config), env_(std::move(env)), stop_reason_(std::move(stop_reason)) {}

std::vector<std::string> CliWorker::argv() const {
  std::vector<std::string> argv{config_.python,
                                "-m",
                                "prefect",
                                "worker",
                                "start",
                                "--pool",
                                config_.work_pool,
                                "--type",
                                config_.worker_type,
                                "--name",
                                config_.worker_name,
                                "--prefetch-seconds",
                                std::to_string(config_.prefetch.count()),
                                "--limit",
                                std::to_string(config_.flow_limit)};
  for (const auto& queue : config_.work_queues) {
    argv.emplace_back("--work-queue");
    argv.push_back(queue);
  }
  // The cycle checked (or created) the pool; a typo must not create another.
  argv.emplace_back("--no-create-pool-if-not-found");
  if (!config_.run_forever) {
    argv.emplace_back("--run-once");
  }
  return argv;
}

WorkerPhaseResult CliWorker::run(const Logger& log) {
  SpawnOptions options;
  options.argv = argv();
  options.env = env_;
  Logger child_log = log.with({{"source", "prefect-worker"}});
  std::string command;
  for (const auto& arg : options.argv) {
    command += (command.empty() ? "" : " ") + arg;
  }
  log.info("starting Prefect's worker: " + command);

  auto should_stop = [this] { return !stop_reason_().empty(); };
  ExitStatus status = run_streaming(
      options,
      // Prefect logs INFO to stderr; its own level is part of each line.
      [&child_log](std::string_view line, bool) { child_log.info(line); }, should_stop,
      std::chrono::duration_cast<std::chrono::milliseconds>(config_.grace));

  WorkerPhaseResult result;
  if (status.exited() && status.code == 0) {
    log.info("Prefect's worker exited with exit code 0");
    return result;
  }
  if (should_stop()) {
    log.info("Prefect's worker stopped (" + stop_reason_() + "): " + status.describe());
    return result;
  }
  result.failure = ExitCode::kApi;
  result.failure_message = "Prefect's worker (" + config_.python + " -m prefect worker start) " +
                           status.describe() + ": " + explain_exit(status);
  result.failure_hint = Hint::kWorkerCli;

  return result;
}

}  // namespace pc
