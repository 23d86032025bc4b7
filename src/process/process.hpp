#pragma once
// Child processes, as ninja's subprocess-posix.cc and ccache's execute.cpp
// start them, plus deadlines:
//
//   - posix_spawn from an argv vector (no shell); argv[0] without a '/' is
//     looked up in the PATH of the child's environment (as Python's subprocess
//     does), else in ours;
//   - its own process group (pgid = pid), so that a signal reaches everything
//     the command started;
//   - stdin from /dev/null, stdout and stderr to pipes (close-on-exec, read
//     non-blocking on our side, line by line);
//   - every signal at its default disposition and an empty signal mask;
//   - reaped with waitpid looped on EINTR; killed and reaped by destructors;
//   - stopping is SIGTERM to the group, a grace period, then SIGKILL.
//
// When a child exits, whatever it left running in its process group is
// killed: a flow run's leftovers must not outlive it (nor keep our pipes open).
//
// Spawn failures are never thrown. A command that cannot be started (not
// found, not executable, working directory missing, no pipes left) yields a
// Child that has already ended with exit code 127 (not found) or 126 (any
// other reason); spawn_error() explains, and the supervisor and
// run_streaming() deliver that explanation as one stderr line.
//
// Not thread-safe: one thread owns a Child or a ProcessSupervisor.

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pc {

struct ExitStatus {
  int code = -1;   // exit code when the process exited normally
  int signal = 0;  // terminating signal, else 0; exactly one is meaningful
  bool exited() const { return signal == 0 && code >= 0; }
  // "exit code 3", "killed by signal 9 (SIGKILL)"
  std::string describe() const;
  bool operator==(const ExitStatus&) const = default;
};

// What an exit status usually means, for messages: 1 "general error",
// 126 "command found but not executable", 127 "command not found",
// 137 or SIGKILL "killed (SIGKILL; often out of memory)", 143 or SIGTERM
// "terminated (SIGTERM)", 130 or SIGINT, 139 or SIGSEGV, 134 or SIGABRT, ...
// Codes 129..159 are read as a shell's report of a signal death.
std::string explain_exit(const ExitStatus& status);

// "SIGTERM", "SIGKILL", ... or "signal N".
std::string signal_name(int sig);

struct SpawnOptions {
  std::vector<std::string> argv;
  std::optional<std::map<std::string, std::string>> env;  // nullopt = inherit ours
  std::filesystem::path cwd;                              // empty = ours
};

// Called for each line of output, without its newline. Lines longer than
// kMaxLine arrive in kMaxLine pieces, so a child never grows our memory; a
// partial last line arrives when the pipe ends.
using LineCallback = std::function<void(std::string_view line, bool is_stderr)>;
using ExitCallback = std::function<void(const ExitStatus& status)>;
inline constexpr std::size_t kMaxLine = std::size_t{64} * 1024;

// A pipe (both ends close-on-exec) that closes what it still holds when it
// goes: a child's stdout or stderr, our end read, theirs written.
struct Pipe {
  int read = -1;
  int write = -1;
  Pipe() = default;
  Pipe(const Pipe&) = delete;
  Pipe& operator=(const Pipe&) = delete;
  ~Pipe();
  bool open();  // false with errno set
  int release_read() { return std::exchange(read, -1); }
  void close_write();
};

// One child process. Move-only RAII: the destructor of a child that has not
// been reaped SIGKILLs its process group and reaps it; it never throws.
class Child {
 public:
  static Child spawn(const SpawnOptions& options);
  // Takes over a process that is already our child without our having spawned
  // it (a warm-start flow process re-parented to us as its subreaper) and the
  // read ends of its output pipes; from here on it is like a spawned one.
  static Child adopt(pid_t pid, int stdout_fd, int stderr_fd);

  Child(Child&& other) noexcept;
  Child& operator=(Child&& other) noexcept;
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child();

  // -1 when the spawn failed.
  pid_t pid() const { return pid_; }
  // Non-empty when the command could not be started (the status is then 127
  // or 126 at once).
  const std::string& spawn_error() const { return spawn_error_; }

  // Never blocks. Once the child has exited: SIGKILL to what is left of its
  // process group, reap, and return the status (cached; later calls return it
  // again).
  std::optional<ExitStatus> poll_exit();
  // Sends `sig` to the child's process group; a no-op once it is reaped.
  void signal_group(int sig) const;

  // Never blocks. Reads what the pipes hold, at most about `budget` bytes,
  // and delivers complete lines. A pipe at its end is flushed and closed.
  // Returns true when the budget ran out (more may be waiting).
  bool read_output(const LineCallback& on_line, std::size_t budget = kDefaultReadBudget);
  // After exit: reads the pipes to their end, delivers the partial last
  // lines and closes them.
  void finish_output(const LineCallback& on_line);

  // The pipes still open (-1 once closed) and a descriptor that becomes
  // readable when the child exits (-1 where the kernel has no pidfd), for
  // poll().
  int stdout_fd() const { return out_.fd; }
  int stderr_fd() const { return err_.fd; }
  int exit_fd() const { return pid_fd_; }

  static constexpr std::size_t kDefaultReadBudget = std::size_t{1024} * 1024;

 private:
  Child() = default;
  // One output pipe and its unfinished line.
  struct Stream {
    int fd = -1;
    bool is_stderr = false;
    std::string buffer;  // always shorter than kMaxLine between reads
    bool cut = false;    // the current line was already delivered in part
  };
  static void close_fd(int& fd);
  // Returns true when `budget` ran out before the pipe was empty.
  static bool drain(Stream& stream, const LineCallback& on_line, std::size_t budget);
  static void flush(Stream& stream, const LineCallback& on_line);

  pid_t pid_ = -1;
  Stream out_{-1, false, {}, false};
  Stream err_{-1, true, {}, false};
  int pid_fd_ = -1;
  std::optional<ExitStatus> status_;
  std::string spawn_error_;
};

// Supervises many children with one poll() loop: output from all of them,
// exits, and SIGTERM -> grace -> SIGKILL deadlines. The controller calls
// run_once() from its main loop, between its own work (heartbeats, polling).
class ProcessSupervisor {
 public:
  using Id = std::uint64_t;

  ProcessSupervisor() = default;
  ProcessSupervisor(const ProcessSupervisor&) = delete;
  ProcessSupervisor& operator=(const ProcessSupervisor&) = delete;
  // Children still running are SIGKILLed and reaped; no callbacks are called.
  ~ProcessSupervisor() = default;

  // Takes over `child`. `on_line` gets its output (a failed spawn's
  // explanation as one stderr line); `on_exit` is called once, from a later
  // run_once(), after the last line.
  Id add(Child child, LineCallback on_line, ExitCallback on_exit);
  Id spawn(const SpawnOptions& options, LineCallback on_line, ExitCallback on_exit) {
    return add(Child::spawn(options), std::move(on_line), std::move(on_exit));
  }

  // One round: waits at most `max_wait` for output, an exit or a kill
  // deadline; reads output (bounded per child, so one child writing
  // megabytes cannot starve the others or us); SIGKILLs children whose grace
  // period is over; reaps the exited ones and calls their on_exit. Returns how
  // many children ended. Returns at once when there are no children.
  // Callbacks may call add() and terminate(); on_line must not throw, and an
  // exception from on_exit propagates after the child is removed.
  std::size_t run_once(std::chrono::milliseconds max_wait);

  // SIGTERM to the child's process group now, SIGKILL once `grace` has passed
  // (enforced by run_once). A second call never extends the first deadline.
  // Unknown or ended ids are ignored.
  void terminate(Id id, std::chrono::milliseconds grace);
  void terminate_all(std::chrono::milliseconds grace);
  // SIGKILL to the child's process group now.
  void kill(Id id);

  std::size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  bool contains(Id id) const { return entries_.count(id) != 0; }
  // The pid of a supervised child (-1 for a failed spawn), nullopt if unknown.
  std::optional<pid_t> pid(Id id) const;
  // Whether terminate() was called for this child.
  bool terminating(Id id) const;

 private:
  struct Entry {
    Child child;
    LineCallback on_line;
    ExitCallback on_exit;
    std::optional<std::chrono::steady_clock::time_point> kill_at;
    bool terminated = false;
  };

  std::map<Id, Entry> entries_;
  Id next_id_ = 1;
};

// Runs one child to completion, streaming its lines. When should_stop() turns
// true: SIGTERM to the group, `grace`, then SIGKILL. A command that cannot be
// started returns 127/126 with the reason delivered as a stderr line.
ExitStatus run_streaming(const SpawnOptions& options, const LineCallback& on_line,
                         const std::function<bool()>& should_stop, std::chrono::milliseconds grace);

}  // namespace pc
