// ProcessSupervisor: many children in one poll() loop (output lines, exits,
// grace deadlines), and run_streaming(), one child through it.
#include <poll.h>
#include <signal.h>

#include <algorithm>
#include <exception>
#include <thread>
#include <utility>

#include "common/clock.hpp"
#include "process/process.hpp"

namespace pc {

using std::chrono::milliseconds;

namespace {

// Without a pidfd an exit that does not close the pipes (a grandchild holds
// them) is only seen when poll() times out; keep that latency small.
constexpr milliseconds kExitPollWithoutPidfd{50};

}  // namespace

// ---------------------------------------------------- ProcessSupervisor

ProcessSupervisor::Id ProcessSupervisor::add(Child child, LineCallback on_line,
                                             ExitCallback on_exit) {
  const Id id = next_id_++;
  entries_.emplace(
      id, Entry{std::move(child), std::move(on_line), std::move(on_exit), std::nullopt, false});
  return id;
}

std::optional<pid_t> ProcessSupervisor::pid(Id id) const {
  auto it = entries_.find(id);
  return it == entries_.end() ? std::nullopt : std::optional<pid_t>(it->second.child.pid());
}

bool ProcessSupervisor::terminating(Id id) const {
  auto it = entries_.find(id);
  return it != entries_.end() && it->second.terminated;
}

void ProcessSupervisor::terminate(Id id, milliseconds grace) {
  auto it = entries_.find(id);
  if (it == entries_.end() || it->second.terminated) {
    return;
  }
  it->second.terminated = true;
  it->second.child.signal_group(SIGTERM);
  it->second.kill_at = real_clock().now() + grace;
}

void ProcessSupervisor::terminate_all(milliseconds grace) {
  for (auto& [id, entry] : entries_) {
    terminate(id, grace);
  }
}

void ProcessSupervisor::kill(Id id) {
  auto it = entries_.find(id);
  if (it != entries_.end()) {
    it->second.terminated = true;
    it->second.child.signal_group(SIGKILL);
    it->second.kill_at.reset();
  }
}

std::size_t ProcessSupervisor::run_once(milliseconds max_wait) {
  if (entries_.empty()) {
    return 0;
  }
  auto now = real_clock().now();
  milliseconds timeout = std::max(max_wait, milliseconds(0));
  std::vector<pollfd> fds;
  fds.reserve(entries_.size() * 3);
  for (auto& [id, entry] : entries_) {
    Child& child = entry.child;
    if (!child.spawn_error().empty()) {
      timeout = milliseconds(0);  // already ended
    }
    for (int fd : {child.stdout_fd(), child.stderr_fd(), child.exit_fd()}) {
      if (fd >= 0) {
        fds.push_back(pollfd{fd, POLLIN, 0});
      }
    }
    if (child.exit_fd() < 0 && child.pid() > 0) {
      timeout = std::min(timeout, kExitPollWithoutPidfd);
    }
    if (entry.kill_at) {
      auto left = std::chrono::ceil<milliseconds>(*entry.kill_at - now);
      timeout = std::min(timeout, std::max(left, milliseconds(0)));
    }
  }
  if (fds.empty()) {
    std::this_thread::sleep_for(timeout);
  } else if (::poll(fds.data(), fds.size(), static_cast<int>(timeout.count())) < 0 &&
             errno != EINTR) {
    std::this_thread::sleep_for(std::min(timeout, kExitPollWithoutPidfd));
  }

  now = real_clock().now();
  std::vector<Id> ended;
  for (auto& [id, entry] : entries_) {
    entry.child.read_output(entry.on_line);
    if (entry.kill_at && now >= *entry.kill_at) {
      entry.child.signal_group(SIGKILL);
      entry.kill_at.reset();
    }
    if (entry.child.poll_exit()) {
      ended.push_back(id);
    }
  }

  // Remove first, then call back: callbacks may add() and terminate().
  std::exception_ptr first_error;
  for (Id id : ended) {
    auto node = entries_.extract(id);
    Entry& entry = node.mapped();
    if (!entry.child.spawn_error().empty() && entry.on_line) {
      entry.on_line(entry.child.spawn_error(), true);
    }
    entry.child.finish_output(entry.on_line);
    if (entry.on_exit) {
      try {
        entry.on_exit(*entry.child.poll_exit());
      } catch (...) {
        if (!first_error) {
          first_error = std::current_exception();
        }
      }
    }
  }
  if (first_error) {
    std::rethrow_exception(first_error);
  }
  return ended.size();
}

// -------------------------------------------------------- run_streaming

ExitStatus run_streaming(const SpawnOptions& options, const LineCallback& on_line,
                         const std::function<bool()>& should_stop, milliseconds grace) {
  ProcessSupervisor supervisor;
  ExitStatus result;
  const auto id =
      supervisor.spawn(options, on_line, [&result](const ExitStatus& s) { result = s; });
  while (!supervisor.empty()) {
    supervisor.run_once(milliseconds(100));
    if (!supervisor.empty() && !supervisor.terminating(id) && should_stop && should_stop()) {
      supervisor.terminate(id, grace);
    }
  }
  return result;
}

}  // namespace pc
