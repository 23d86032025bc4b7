#pragma once
// Child processes: spawned with posix_spawn from an argv vector (no shell), in
// their own process group, stdin from /dev/null, default signal dispositions,
// stdout and stderr read through pipes line by line. Every wait has a
// deadline; stopping is SIGTERM to the group, a grace period, then SIGKILL.

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pc {

struct ExitStatus {
  int code = -1;   // exit code when exited normally
  int signal = 0;  // terminating signal, else 0
  bool exited() const { return signal == 0 && code >= 0; }
  // "exit code 3", "killed by signal 9 (SIGKILL)"
  std::string describe() const;
};

// What an exit status usually means: 127 "command not found", 137 "killed
// (SIGKILL; often out of memory)", ...
std::string explain_exit(const ExitStatus& status);

struct SpawnOptions {
  std::vector<std::string> argv;
  std::optional<std::map<std::string, std::string>> env;  // nullopt = inherit ours
  std::filesystem::path cwd;                              // empty = ours
};

// Called for each line of output (without the newline). Lines longer than
// kMaxLine are delivered in pieces, so a child never grows our memory.
using LineCallback = std::function<void(std::string_view line, bool is_stderr)>;
inline constexpr std::size_t kMaxLine = 64 * 1024;

// A running child. Move-only; the destructor kills the process group with
// SIGKILL and reaps the child if it is still running.
class Child {
 public:
  // Never throws for a command that cannot be started: the Child then has
  // exited with 127 and spawn_error() says why (ENOENT, EACCES, bad cwd).
  static Child spawn(const SpawnOptions& options);

  Child(Child&& other) noexcept;
  Child& operator=(Child&& other) noexcept;
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child();

  pid_t pid() const { return pid_; }
  // Reads what is available (waiting at most `max_wait`) and delivers lines.
  // Returns the exit status once the child has exited and its pipes are drained.
  std::optional<ExitStatus> poll(std::chrono::milliseconds max_wait, const LineCallback& on_line);
  // Sends `sig` to the child's process group.
  void signal_group(int sig) const;
  bool running() const { return pid_ > 0 && !status_; }
  // Set when posix_spawn itself failed (e.g. ENOENT); the status is then 127.
  const std::string& spawn_error() const { return spawn_error_; }
  // The output pipes still open (-1 once closed), for wait_for_any().
  int stdout_fd() const { return out_fd_; }
  int stderr_fd() const { return err_fd_; }

 private:
  Child() = default;
  void close_fds();
  void drain(int fd, std::string& buffer, bool is_stderr, const LineCallback& on_line);

  pid_t pid_ = -1;
  int out_fd_ = -1;
  int err_fd_ = -1;
  std::string out_buffer_;
  std::string err_buffer_;
  std::optional<ExitStatus> status_;
  std::string spawn_error_;
};

// Blocks until one of the children has output (or a closed pipe) or
// `max_wait` passes. Exits are noticed by Child::poll afterwards.
void wait_for_any(const std::vector<const Child*>& children, std::chrono::milliseconds max_wait);

// Runs a child to completion, streaming its lines. When should_stop() turns
// true: SIGTERM to the group, `grace`, then SIGKILL. A command that cannot be
// started returns exit 127 with the reason delivered as a stderr line.
ExitStatus run_streaming(const SpawnOptions& options, const LineCallback& on_line,
                         const std::function<bool()>& should_stop, std::chrono::milliseconds grace);

}  // namespace pc
