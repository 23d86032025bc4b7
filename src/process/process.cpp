#include "process/process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

extern char** environ;

namespace pc {
namespace {

using Clock = std::chrono::steady_clock;

const char* signal_name(int sig) {
  switch (sig) {
    case SIGHUP:
      return "SIGHUP";
    case SIGINT:
      return "SIGINT";
    case SIGQUIT:
      return "SIGQUIT";
    case SIGILL:
      return "SIGILL";
    case SIGABRT:
      return "SIGABRT";
    case SIGBUS:
      return "SIGBUS";
    case SIGFPE:
      return "SIGFPE";
    case SIGKILL:
      return "SIGKILL";
    case SIGSEGV:
      return "SIGSEGV";
    case SIGPIPE:
      return "SIGPIPE";
    case SIGALRM:
      return "SIGALRM";
    case SIGTERM:
      return "SIGTERM";
    default:
      return "signal";
  }
}

ExitStatus from_wait_status(int status) {
  ExitStatus s;
  if (WIFEXITED(status)) {
    s.code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    s.signal = WTERMSIG(status);
  }
  return s;
}

// RAII for posix_spawn's C structures.
struct SpawnAttr {
  posix_spawnattr_t attr;
  SpawnAttr() { posix_spawnattr_init(&attr); }
  ~SpawnAttr() { posix_spawnattr_destroy(&attr); }
};
struct FileActions {
  posix_spawn_file_actions_t actions;
  FileActions() { posix_spawn_file_actions_init(&actions); }
  ~FileActions() { posix_spawn_file_actions_destroy(&actions); }
};

struct Pipe {
  int read = -1;
  int write = -1;
  bool open() {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
      return false;
    }
    read = fds[0];
    write = fds[1];
    return true;
  }
  void close_both() {
    if (read >= 0)
      close(read);
    if (write >= 0)
      close(write);
    read = write = -1;
  }
};

}  // namespace

std::string ExitStatus::describe() const {
  if (signal != 0) {
    return "killed by signal " + std::to_string(signal) + " (" + signal_name(signal) + ")";
  }
  return "exit code " + std::to_string(code);
}

std::string explain_exit(const ExitStatus& s) {
  int sig = s.signal;
  if (sig == 0 && s.code > 128 && s.code < 160) {
    sig = s.code - 128;  // a shell reporting a signal death
  }
  if (sig == SIGKILL)
    return "killed (SIGKILL; often the out-of-memory killer)";
  if (sig == SIGTERM)
    return "terminated (SIGTERM)";
  if (sig == SIGINT)
    return "interrupted (SIGINT)";
  if (sig == SIGSEGV)
    return "segmentation fault (SIGSEGV)";
  if (sig == SIGABRT)
    return "aborted (SIGABRT)";
  if (sig != 0)
    return std::string("killed by ") + signal_name(sig);
  switch (s.code) {
    case 0:
      return "success";
    case 1:
      return "general error";
    case 2:
      return "misuse of a command (bad arguments)";
    case 126:
      return "command found but not executable";
    case 127:
      return "command not found";
    default:
      return "unexpected exit code";
  }
}

Child Child::spawn(const SpawnOptions& options) {
  Child child;
  Pipe out, err;
  if (options.argv.empty()) {
    child.spawn_error_ = "empty command";
    child.status_ = ExitStatus{127, 0};
    return child;
  }
  if (!out.open() || !err.open()) {
    child.spawn_error_ = std::string("cannot create pipes: ") + std::strerror(errno);
    out.close_both();
    err.close_both();
    child.status_ = ExitStatus{127, 0};
    return child;
  }

  FileActions fa;
  posix_spawn_file_actions_addopen(&fa.actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa.actions, out.write, 1);
  posix_spawn_file_actions_adddup2(&fa.actions, err.write, 2);
  if (!options.cwd.empty()) {
    posix_spawn_file_actions_addchdir_np(&fa.actions, options.cwd.c_str());
  }

  SpawnAttr sa;
  sigset_t defaults;
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGINT);
  sigaddset(&defaults, SIGTERM);
  sigaddset(&defaults, SIGPIPE);
  sigaddset(&defaults, SIGCHLD);
  sigaddset(&defaults, SIGHUP);
  sigaddset(&defaults, SIGQUIT);
  sigset_t empty_mask;
  sigemptyset(&empty_mask);
  posix_spawnattr_setsigdefault(&sa.attr, &defaults);
  posix_spawnattr_setsigmask(&sa.attr, &empty_mask);
  posix_spawnattr_setpgroup(&sa.attr, 0);
  posix_spawnattr_setflags(&sa.attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF |
                                         POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_USEVFORK);

  std::vector<char*> argv;
  for (const auto& arg : options.argv) {
    argv.push_back(const_cast<char*>(arg.c_str()));
  }
  argv.push_back(nullptr);
  std::vector<std::string> env_strings;
  std::vector<char*> envp;
  char** env = environ;
  if (options.env) {
    for (const auto& [key, value] : *options.env) {
      env_strings.push_back(key + "=" + value);
    }
    for (auto& entry : env_strings) {
      envp.push_back(entry.data());
    }
    envp.push_back(nullptr);
    env = envp.data();
  }

  pid_t pid = -1;
  int rc = posix_spawnp(&pid, argv[0], &fa.actions, &sa.attr, argv.data(), env);
  close(out.write);
  close(err.write);
  if (rc != 0) {
    close(out.read);
    close(err.read);
    child.spawn_error_ = "cannot start \"" + options.argv[0] + "\": " + std::strerror(rc);
    child.status_ = ExitStatus{rc == ENOENT ? 127 : 126, 0};
    return child;
  }
  fcntl(out.read, F_SETFL, fcntl(out.read, F_GETFL) | O_NONBLOCK);
  fcntl(err.read, F_SETFL, fcntl(err.read, F_GETFL) | O_NONBLOCK);
  child.pid_ = pid;
  child.out_fd_ = out.read;
  child.err_fd_ = err.read;
  return child;
}

Child::Child(Child&& other) noexcept {
  *this = std::move(other);
}

Child& Child::operator=(Child&& other) noexcept {
  if (this != &other) {
    std::swap(pid_, other.pid_);
    std::swap(out_fd_, other.out_fd_);
    std::swap(err_fd_, other.err_fd_);
    std::swap(out_buffer_, other.out_buffer_);
    std::swap(err_buffer_, other.err_buffer_);
    std::swap(status_, other.status_);
    std::swap(spawn_error_, other.spawn_error_);
  }
  return *this;
}

Child::~Child() {
  if (pid_ > 0 && !status_) {
    kill(-pid_, SIGKILL);
    int status = 0;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }
  close_fds();
}

void Child::close_fds() {
  if (out_fd_ >= 0)
    close(out_fd_);
  if (err_fd_ >= 0)
    close(err_fd_);
  out_fd_ = err_fd_ = -1;
}

void Child::signal_group(int sig) const {
  if (pid_ > 0 && !status_) {
    kill(-pid_, sig);
  }
}

void Child::drain(int fd, std::string& buffer, bool is_stderr, const LineCallback& on_line) {
  char chunk[16384];
  while (true) {
    ssize_t n = read(fd, chunk, sizeof(chunk));
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      break;
    }
    buffer.append(chunk, static_cast<std::size_t>(n));
    std::size_t start = 0;
    while (true) {
      auto newline = buffer.find('\n', start);
      if (newline == std::string::npos) {
        break;
      }
      if (on_line)
        on_line(std::string_view(buffer).substr(start, newline - start), is_stderr);
      start = newline + 1;
    }
    buffer.erase(0, start);
    while (buffer.size() >= kMaxLine) {
      if (on_line)
        on_line(std::string_view(buffer).substr(0, kMaxLine), is_stderr);
      buffer.erase(0, kMaxLine);
    }
  }
}

std::optional<ExitStatus> Child::poll(std::chrono::milliseconds max_wait,
                                      const LineCallback& on_line) {
  if (status_ && out_fd_ < 0 && err_fd_ < 0) {
    return status_;
  }
  pollfd fds[2];
  nfds_t count = 0;
  for (int fd : {out_fd_, err_fd_}) {
    if (fd >= 0) {
      fds[count++] = pollfd{fd, POLLIN, 0};
    }
  }
  if (count > 0) {
    int rc = ::poll(fds, count, static_cast<int>(max_wait.count()));
    if (rc > 0) {
      for (nfds_t i = 0; i < count; ++i) {
        if (fds[i].revents == 0) {
          continue;
        }
        bool is_err = fds[i].fd == err_fd_;
        drain(fds[i].fd, is_err ? err_buffer_ : out_buffer_, is_err, on_line);
        if ((fds[i].revents & (POLLHUP | POLLERR)) != 0 && !(fds[i].revents & POLLIN)) {
          // Writer closed and nothing left: flush the partial line.
          std::string& buffer = is_err ? err_buffer_ : out_buffer_;
          if (!buffer.empty() && on_line)
            on_line(buffer, is_err);
          buffer.clear();
          close(fds[i].fd);
          (is_err ? err_fd_ : out_fd_) = -1;
        }
      }
    }
  } else if (!status_) {
    std::this_thread::sleep_for(std::min(max_wait, std::chrono::milliseconds(50)));
  }
  if (!status_ && pid_ > 0) {
    int status = 0;
    pid_t rc;
    do {
      rc = waitpid(pid_, &status, WNOHANG);
    } while (rc < 0 && errno == EINTR);
    if (rc == pid_) {
      status_ = from_wait_status(status);
      // Grandchildren may keep the pipes open; do not wait for them forever.
      kill(-pid_, SIGKILL);
    }
  }
  if (status_) {
    // Drain what the child wrote before exiting, then stop reading.
    for (int* fd : {&out_fd_, &err_fd_}) {
      if (*fd >= 0) {
        bool is_err = fd == &err_fd_;
        std::string& buffer = is_err ? err_buffer_ : out_buffer_;
        drain(*fd, buffer, is_err, on_line);
        if (!buffer.empty() && on_line)
          on_line(buffer, is_err);
        buffer.clear();
        close(*fd);
        *fd = -1;
      }
    }
    return status_;
  }
  return std::nullopt;
}

void wait_for_any(const std::vector<const Child*>& children, std::chrono::milliseconds max_wait) {
  std::vector<pollfd> fds;
  for (const Child* child : children) {
    for (int fd : {child->stdout_fd(), child->stderr_fd()}) {
      if (fd >= 0) {
        fds.push_back(pollfd{fd, POLLIN, 0});
      }
    }
  }
  if (fds.empty()) {
    std::this_thread::sleep_for(max_wait);
    return;
  }
  // Exits without output are seen at the next Child::poll; cap the wait so a
  // silent child's exit is noticed quickly.
  ::poll(fds.data(), fds.size(), static_cast<int>(max_wait.count()));
}

ExitStatus run_streaming(const SpawnOptions& options, const LineCallback& on_line,
                         const std::function<bool()>& should_stop,
                         std::chrono::milliseconds grace) {
  Child child = Child::spawn(options);
  if (!child.spawn_error().empty()) {
    if (on_line)
      on_line(child.spawn_error(), true);
  }
  std::optional<Clock::time_point> kill_at;
  while (true) {
    if (auto status = child.poll(std::chrono::milliseconds(100), on_line)) {
      return *status;
    }
    if (!kill_at && should_stop && should_stop()) {
      child.signal_group(SIGTERM);
      kill_at = Clock::now() + grace;
    }
    if (kill_at && Clock::now() >= *kill_at) {
      child.signal_group(SIGKILL);
      kill_at = Clock::time_point::max();
    }
  }
}

}  // namespace pc
