#include "process/process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "common/path_search.hpp"

extern char** environ;

namespace pc {
namespace {

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
  SpawnAttr(const SpawnAttr&) = delete;
  SpawnAttr& operator=(const SpawnAttr&) = delete;
};
struct FileActions {
  posix_spawn_file_actions_t actions;
  FileActions() { posix_spawn_file_actions_init(&actions); }
  ~FileActions() { posix_spawn_file_actions_destroy(&actions); }
  FileActions(const FileActions&) = delete;
  FileActions& operator=(const FileActions&) = delete;
};

}  // namespace

Pipe::~Pipe() {
  close_write();
  if (read >= 0) {
    close(read);
  }
}

bool Pipe::open() {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    return false;
  }
  read = fds[0];
  write = fds[1];
  return true;
}

void Pipe::close_write() {
  if (write >= 0) {
    close(write);
    write = -1;
  }
}

namespace {

int open_pidfd(pid_t pid) {
#ifdef SYS_pidfd_open
  // Close-on-exec by definition. Fails on kernels before 5.3 or under
  // seccomp profiles that forbid it; we then poll with a short timeout.
  long fd = syscall(SYS_pidfd_open, pid, 0);
  return fd >= 0 ? static_cast<int>(fd) : -1;
#else
  (void)pid;
  return -1;
#endif
}

}  // namespace

// ---------------------------------------------------------------- Child

Child Child::spawn(const SpawnOptions& options) {
  Child child;
  auto fail = [&child](int code, std::string why) {
    child.spawn_error_ = std::move(why);
    child.status_ = ExitStatus{code, 0};
    return std::move(child);
  };
  if (options.argv.empty() || options.argv.front().empty()) {
    return fail(127, "cannot start an empty command");
  }
  const std::string& arg0 = options.argv.front();
  const std::string quoted = "\"" + arg0 + "\"";
  if (!options.cwd.empty()) {
    std::error_code ec;
    if (!std::filesystem::is_directory(options.cwd, ec)) {
      return fail(126, "cannot start " + quoted + ": working directory \"" + options.cwd.string() +
                           "\" does not exist or is not a directory");
    }
  }

  // With an environment of its own, the child's PATH decides (as Python's
  // subprocess does); posix_spawnp would search ours.
  std::string program;
  if (options.env && arg0.find('/') == std::string::npos) {
    auto it = options.env->find("PATH");
    const std::string path_list = it != options.env->end() ? it->second : kDefaultPath;
    auto found = search_path(arg0, path_list);
    program = found.program;
    if (program.empty()) {
      return fail(found.error == ENOENT ? 127 : 126,
                  "cannot start " + quoted + ": " +
                      (found.error == ENOENT ? "not found" : "found but not executable") +
                      " in PATH \"" + path_list + "\"");
    }
  }

  Pipe out, err;
  if (!out.open() || !err.open()) {
    return fail(126, "cannot start " + quoted + ": cannot create pipes: " + std::strerror(errno));
  }

  FileActions fa;
  posix_spawn_file_actions_addopen(&fa.actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa.actions, out.write, 1);
  posix_spawn_file_actions_adddup2(&fa.actions, err.write, 2);
  if (!options.cwd.empty()) {
    posix_spawn_file_actions_addchdir_np(&fa.actions, options.cwd.c_str());
  }

  // Every signal at its default: an ignored SIGINT/SIGPIPE/SIGTERM of ours
  // (nohup, a container init) would otherwise be inherited through exec.
  SpawnAttr sa;
  sigset_t all;
  sigfillset(&all);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigdefault(&sa.attr, &all);
  posix_spawnattr_setsigmask(&sa.attr, &none);
  posix_spawnattr_setpgroup(&sa.attr, 0);
  posix_spawnattr_setflags(&sa.attr,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);

  std::vector<char*> argv;
  argv.reserve(options.argv.size() + 1);
  for (const auto& arg : options.argv) {
    argv.push_back(const_cast<char*>(arg.c_str()));
  }
  argv.push_back(nullptr);
  std::vector<std::string> env_strings;
  std::vector<char*> envp;
  char** env = environ;
  if (options.env) {
    env_strings.reserve(options.env->size());
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
  const int rc = program.empty()
                     ? posix_spawnp(&pid, arg0.c_str(), &fa.actions, &sa.attr, argv.data(), env)
                     : posix_spawn(&pid, program.c_str(), &fa.actions, &sa.attr, argv.data(), env);
  if (rc != 0) {
    return fail(rc == ENOENT ? 127 : 126, "cannot start " + quoted + ": " + std::strerror(rc));
  }
  // The Pipes close their write ends: only the child holds them now.
  return adopt(pid, out.release_read(), err.release_read());
}

Child Child::adopt(pid_t pid, int stdout_fd, int stderr_fd) {
  Child child;
  child.pid_ = pid;
  child.out_.fd = stdout_fd;
  child.err_.fd = stderr_fd;
  for (int fd : {stdout_fd, stderr_fd}) {
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    fcntl(fd, F_SETFD, fcntl(fd, F_GETFD) | FD_CLOEXEC);
  }
  child.pid_fd_ = open_pidfd(pid);
  return child;
}

Child::Child(Child&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)),
      out_(std::exchange(other.out_, Stream{-1, false, {}, false})),
      err_(std::exchange(other.err_, Stream{-1, true, {}, false})),
      pid_fd_(std::exchange(other.pid_fd_, -1)),
      status_(std::exchange(other.status_, std::nullopt)),
      spawn_error_(std::move(other.spawn_error_)) {}

Child& Child::operator=(Child&& other) noexcept {
  if (this != &other) {
    Child old(std::move(*this));  // killed and reaped when it goes out of scope
    pid_ = std::exchange(other.pid_, -1);
    out_ = std::exchange(other.out_, Stream{-1, false, {}, false});
    err_ = std::exchange(other.err_, Stream{-1, true, {}, false});
    pid_fd_ = std::exchange(other.pid_fd_, -1);
    status_ = std::exchange(other.status_, std::nullopt);
    spawn_error_ = std::move(other.spawn_error_);
  }
  return *this;
}

Child::~Child() {
  if (pid_ > 0 && !status_) {
    ::kill(-pid_, SIGKILL);
    int status = 0;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }
  close_fd(out_.fd);
  close_fd(err_.fd);
  close_fd(pid_fd_);
}

void Child::close_fd(int& fd) {
  if (fd >= 0) {
    close(fd);
    fd = -1;
  }
}

void Child::signal_group(int sig) const {
  if (pid_ > 0 && !status_) {
    ::kill(-pid_, sig);
  }
}

std::optional<ExitStatus> Child::poll_exit() {
  if (status_ || pid_ <= 0) {
    return status_;
  }
  // Look without reaping first: while the leader is an unreaped zombie its
  // process-group id cannot be reused, so the SIGKILL below cannot hit a
  // stranger.
  siginfo_t info{};
  int rc;
  do {
    rc = waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT);
  } while (rc < 0 && errno == EINTR);
  if (rc < 0) {
    // ECHILD: reaped behind our back (SIGCHLD ignored process-wide).
    status_ = ExitStatus{};
    close_fd(pid_fd_);
    return status_;
  }
  if (info.si_pid == 0) {
    return std::nullopt;
  }
  ::kill(-pid_, SIGKILL);
  int status = 0;
  pid_t reaped;
  do {
    reaped = waitpid(pid_, &status, 0);
  } while (reaped < 0 && errno == EINTR);
  status_ = reaped == pid_ ? from_wait_status(status) : ExitStatus{};
  close_fd(pid_fd_);
  return status_;
}

bool Child::drain(Stream& stream, const LineCallback& on_line, std::size_t budget) {
  char chunk[65536];
  std::size_t taken = 0;
  while (stream.fd >= 0) {
    if (taken >= budget) {
      return true;
    }
    ssize_t n = read(stream.fd, chunk, sizeof(chunk));
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return false;
    }
    if (n <= 0) {
      // End of the pipe (or an error we cannot do better with).
      flush(stream, on_line);
      close_fd(stream.fd);
      return false;
    }
    taken += static_cast<std::size_t>(n);
    stream.buffer.append(chunk, static_cast<std::size_t>(n));
    const std::string_view text(stream.buffer);
    std::size_t start = 0;
    for (auto newline = text.find('\n'); newline != std::string_view::npos;
         newline = text.find('\n', start)) {
      // The empty rest of a line already delivered in kMaxLine pieces is not
      // a line of its own.
      if (on_line && !(stream.cut && newline == start)) {
        on_line(text.substr(start, newline - start), stream.is_stderr);
      }
      stream.cut = false;
      start = newline + 1;
    }
    // A line longer than kMaxLine leaves in pieces: the buffer stays small.
    while (text.size() - start >= kMaxLine) {
      if (on_line) {
        on_line(text.substr(start, kMaxLine), stream.is_stderr);
      }
      stream.cut = true;
      start += kMaxLine;
    }
    stream.buffer.erase(0, start);
  }
  return false;
}

void Child::flush(Stream& stream, const LineCallback& on_line) {
  if (!stream.buffer.empty() && on_line) {
    on_line(stream.buffer, stream.is_stderr);
  }
  stream.buffer.clear();
  stream.cut = false;
}

bool Child::read_output(const LineCallback& on_line, std::size_t budget) {
  const bool more_out = drain(out_, on_line, budget);
  const bool more_err = drain(err_, on_line, budget);
  return more_out || more_err;
}

void Child::finish_output(const LineCallback& on_line) {
  // The group is dead, so the pipes end after what they hold (at most a pipe
  // buffer each), unless something left the group; do not wait for that.
  for (Stream* stream : {&out_, &err_}) {
    drain(*stream, on_line, static_cast<std::size_t>(-1));
    flush(*stream, on_line);
    close_fd(stream->fd);
  }
}

}  // namespace pc
