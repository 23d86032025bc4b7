#pragma once
// Warm start (PREFECT_CYCLE_WARM_START): flow runs forked from one Python that
// imported Prefect's engine, and PREFECT_CYCLE_PRELOAD_MODULES, once, instead
// of a fresh interpreter per run. The Python side and the messages are in
// zygote.py (shipped inside the binary); ARCHITECTURE.md "Warm start"
// explains the choices.
//
// We become a child subreaper (PR_SET_CHILD_SUBREAPER), so each flow process,
// forked through an intermediate that exits at once, is our child:
// Child::adopt() takes it over, and from there it is supervised, signalled and
// reaped exactly like a spawned one — also when the zygote dies later.
//
// A zygote that is not ready, dies, or does not answer in time is stopped
// for the rest of the cycle: fork_run() then returns nullopt with the reason,
// and the caller spawns the run cold. A run the zygote had already forked is
// never lost: before giving up we wait for the zygote's socket to end, and
// every flow process reports itself on it first thing.
//
// Not thread-safe; one fork_run() at a time.

#include <sys/types.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "process/process.hpp"

namespace pc {

struct ZygoteOptions {
  std::string python;                                     // PREFECT_WORKER_PYTHON
  std::vector<std::string> preload;                       // PREFECT_CYCLE_PRELOAD_MODULES
  std::optional<std::map<std::string, std::string>> env;  // the zygote's; nullopt = ours
  std::chrono::milliseconds ready_timeout{std::chrono::minutes(2)};  // imports can be slow
  std::chrono::milliseconds answer_timeout{std::chrono::seconds(10)};
  // Unit tests stand a small module in for Prefect's engine.
  std::string engine_modules;  // empty = Prefect's
  std::string run_module;      // empty = prefect.engine
  LineCallback on_output;      // the zygote's own output (not the runs')
};

class Zygote {
 public:
  explicit Zygote(ZygoteOptions options);
  Zygote(const Zygote&) = delete;
  Zygote& operator=(const Zygote&) = delete;
  // Closes the socket and SIGKILLs and reaps the zygote (not its forks).
  ~Zygote();

  // Starts the zygote and waits for its answer. Returns "" when it is
  // ready, else why not (e.g. "importing pandas started 4 thread(s) ...").
  std::string start();
  bool ready() const { return ready_; }
  // Preloads that failed to import (each a sentence), from a ready zygote.
  const std::vector<std::string>& warnings() const { return warnings_; }
  pid_t pid() const { return launcher_ ? launcher_->pid() : -1; }

  // Forks one flow process with `spawn`'s environment and working directory
  // (its argv is the engine's). nullopt, with `why_not` set, when the
  // zygote cannot: the caller spawns cold.
  std::optional<Child> fork_run(const SpawnOptions& spawn, const std::string& id,
                                std::string& why_not);

 private:
  // Stops the zygote, then reads its socket to the end: a run it forked
  // meanwhile is adopted if it is `id`'s; else `why_not` says why not.
  std::optional<Child> give_up(const std::string& reason, const std::string& id, Pipe& out,
                               Pipe& err, std::string& why_not);

  ZygoteOptions options_;
  std::optional<Child> launcher_;
  int socket_ = -1;
  bool ready_ = false;
  std::string broken_;  // why the launcher is not used any more
  std::vector<std::string> warnings_;
  std::vector<char> buffer_;  // one message from the launcher
};

}  // namespace pc
