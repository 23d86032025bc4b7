#include "worker/launch/process_starter.hpp"

#include <utility>

namespace pc {

ProcessStarterImpl::ProcessStarterImpl(ZygoteOptions warm, const Logger& log)
    : warm_options_(std::move(warm)), log_(&log) {
  warm_options_->on_output = [this](std::string_view line, bool) {
    log_->debug("warm launcher: " + std::string(line));
  };
}

std::vector<std::string> engine_command(const std::string& python) {
  return {python, "-m", "prefect.engine"};
}

ProcessStarter::Started ProcessStarterImpl::start(const SpawnOptions& options, LineCallback on_line,
                                                  ExitCallback on_exit) {
  std::optional<Child> warm = warm_options_ ? start_warm(options) : std::nullopt;
  Child child = warm ? std::move(*warm) : Child::spawn(options);
  Started started{0, child.pid(), child.spawn_error(), warm.has_value()};
  started.id = supervisor_.add(std::move(child), std::move(on_line), std::move(on_exit));
  return started;
}

std::optional<Child> ProcessStarterImpl::start_warm(const SpawnOptions& options) {
  if (options.argv != engine_command(warm_options_->python)) {
    note_once("warm start: the job's command is not \"" + warm_options_->python +
              " -m prefect.engine\"; such runs start cold");
    return std::nullopt;
  }
  if (!warm_) {
    warm_ = std::make_unique<Zygote>(*warm_options_);
    const std::string why = warm_->start();
    for (const auto& warning : warm_->warnings()) {
      log_->warn("warm start: " + warning);
    }
    if (why.empty()) {
      log_->info("warm start: launcher ready (pid " + std::to_string(warm_->pid()) + ")");
    }
  }
  std::string id = "run";
  if (options.env) {
    if (auto it = options.env->find("PREFECT__FLOW_RUN_ID"); it != options.env->end()) {
      id = it->second;
    }
  }
  std::string why_not;
  std::optional<Child> child = warm_->fork_run(options, id, why_not);
  if (!child) {
    note_once("warm start off, flow runs start cold: " + why_not);
  }
  return child;
}

void ProcessStarterImpl::note_once(const std::string& message) {
  if (noted_.insert(message).second) {
    log_->info(message);
  }
}

}  // namespace pc
