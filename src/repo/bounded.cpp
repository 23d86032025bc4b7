#include "repo/bounded.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <exception>

namespace pc {
namespace {

void write_all(int fd, const std::string& data) {
  std::size_t done = 0;
  while (done < data.size()) {
    ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      return;
    }
    done += static_cast<std::size_t>(n);
  }
}

void reap(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
}

}  // namespace

BoundedResult run_bounded(const std::function<std::string()>& work,
                          std::chrono::milliseconds timeout,
                          const std::function<bool()>& should_stop) {
  BoundedResult result;
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    result.crashed = true;
    result.output = "error\ncannot create a pipe";
    return result;
  }
  const pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    result.crashed = true;
    result.output = "error\ncannot fork";
    return result;
  }
  if (pid == 0) {
    close(fds[0]);
    // The child must not outlive us: a killed cycle would otherwise leave a
    // helper hanging on a dead remote.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) {
      _exit(1);  // the parent died before prctl took effect
    }
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    std::string output;
    try {
      output = work();
    } catch (const std::exception& e) {
      output = std::string("error\n") + e.what();
    } catch (...) {
      output = "error\nunknown failure";
    }
    write_all(fds[1], output);
    _exit(0);
  }
  close(fds[1]);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  char buffer[4096];
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 || (should_stop && should_stop())) {
      kill(pid, SIGKILL);
      reap(pid);
      close(fds[0]);
      result.timed_out = true;
      return result;
    }
    pollfd p{fds[0], POLLIN, 0};
    int rc = poll(&p, 1, static_cast<int>(std::min<long long>(left.count(), 200)));
    if (rc < 0 && errno == EINTR) {
      continue;
    }
    if (rc > 0) {
      ssize_t n = read(fds[0], buffer, sizeof(buffer));
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n <= 0) {
        break;  // child closed the pipe: done
      }
      result.output.append(buffer, static_cast<std::size_t>(n));
    }
  }
  close(fds[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || result.output.empty()) {
    result.crashed = true;
  }
  return result;
}

}  // namespace pc
