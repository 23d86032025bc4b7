#pragma once
// The process seam of the native worker: how it starts a flow run's process
// and supervises it. Production uses ProcessStarterImpl over
// ProcessSupervisor (process/process.hpp); unit tests a fake that records
// what it was asked to start and ends processes as scripted.

#include <sys/types.h>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "log/logger.hpp"
#include "process/process.hpp"
#include "worker/launch/zygote.hpp"

namespace pc {

class ProcessStarter {
 public:
  using Id = std::uint64_t;

  struct Started {
    Id id = 0;
    pid_t pid = -1;           // -1 when the command could not be started
    std::string spawn_error;  // why, then; the process still ends (127/126) via on_exit
    bool warm = false;        // forked by the warm launcher, not spawned
  };

  virtual ~ProcessStarter() = default;

  // Starts `options`. `on_line` gets its output; `on_exit` is called once, from
  // a later run_once(), after the last line. Both may be called until then, so
  // what they capture must live as long as the process is supervised.
  virtual Started start(const SpawnOptions& options, LineCallback on_line,
                        ExitCallback on_exit) = 0;
  // One round: waits at most `max_wait` for output, an exit or a kill
  // deadline, and delivers them. Returns at once when there are no processes.
  virtual void run_once(std::chrono::milliseconds max_wait) = 0;
  // SIGTERM to the process group now, SIGKILL once `grace` has passed. A
  // second call never extends the first deadline; unknown ids are ignored.
  virtual void terminate(Id id, std::chrono::milliseconds grace) = 0;
  // No process is supervised.
  virtual bool empty() const = 0;
};

// The command that runs a flow run through Prefect's engine when the job
// configuration names none: `<python> -m prefect.engine`. The one place it is
// built: the zygote forks exactly this command and nothing else.
std::vector<std::string> engine_command(const std::string& python);

// Real processes: Child::spawn and a ProcessSupervisor. Its destructor kills
// and reaps what is still running, without callbacks.
//
// With warm start (PREFECT_CYCLE_WARM_START), a process whose argv is exactly
// `<warm.python> -m prefect.engine` is forked by the zygote
// (zygote.hpp), started at the first such process; any other command,
// and every process once the zygote is not healthy, is spawned cold, each
// reason logged once at info. Either way the process is then a Child of the
// same supervisor.
class ProcessStarterImpl final : public ProcessStarter {
 public:
  ProcessStarterImpl() = default;
  // `log` must outlive this (the worker's, which it re-assigns per run).
  ProcessStarterImpl(ZygoteOptions warm, const Logger& log);

  Started start(const SpawnOptions& options, LineCallback on_line, ExitCallback on_exit) override;
  void run_once(std::chrono::milliseconds max_wait) override { supervisor_.run_once(max_wait); }
  void terminate(Id id, std::chrono::milliseconds grace) override {
    supervisor_.terminate(id, grace);
  }
  bool empty() const override { return supervisor_.empty(); }

 private:
  // The warm fork of `options`, or nullopt (then spawn cold).
  std::optional<Child> start_warm(const SpawnOptions& options);
  void note_once(const std::string& message);

  std::optional<ZygoteOptions> warm_options_;
  // From the first engine command on; declared before supervisor_ so that the
  // children are killed and reaped before the zygote is told to exit.
  std::unique_ptr<Zygote> warm_;
  ProcessSupervisor supervisor_;
  const Logger* log_ = nullptr;
  std::set<std::string> noted_;
};

}  // namespace pc
