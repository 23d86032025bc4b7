#pragma once
// Runs a piece of work in a forked child process with a deadline.
//
// Why: libgit2 1.5 (Debian 12) has no server timeout option, and a remote that
// accepts the connection and never answers would block a git call forever. The
// work runs in a child that writes its result into a pipe; the parent waits on
// the pipe with the deadline and kills the child when it passes. The child
// starts from a fork of a single-threaded moment of the cycle (the preflight
// runs before any worker thread exists) and leaves with _exit().

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
