#pragma once
// Runs a piece of work in a forked child process with a deadline.
//
// Why: libgit2 1.5 (Debian 12) has no server timeout option, and a remote that
// accepts the connection and never answers would block a git call forever. The
// work runs in a child that writes its result into a pipe; the parent waits on
// the pipe with the deadline and kills the child when it passes: a child
// blocked in connect() to a blackholed host, or in recv() from a server that
// accepted and never answers, cannot be interrupted any other way. Transport
// callbacks that abort after a deadline were the alternative, rejected because
// libgit2 calls none while it is blocked in those system calls.
//
// fork() copies only the calling thread. The preflight runs before the worker
// starts any thread, and the child touches nothing but libgit2, the heap and
// the pipe, then leaves with _exit() (no atexit handlers, no stdio flush). It
// dies with the parent (PR_SET_PDEATHSIG).

#include <chrono>
#include <functional>
#include <optional>
#include <string>

namespace pc {

struct BoundedResult {
  bool timed_out = false;
  bool crashed = false;  // the child died without a result
  std::string output;    // what the child's work returned
};

// Runs `work` in a child; its return value comes back as `output`. `work` must
// not throw (exceptions are caught in the child and reported as output
// "error\n<what>").
BoundedResult run_bounded(const std::function<std::string()>& work,
                          std::chrono::milliseconds timeout,
                          const std::function<bool()>& should_stop);

}  // namespace pc
