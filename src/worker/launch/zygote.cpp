#include "worker/launch/zygote.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <utility>

#include "config/config.hpp"
#include "config/settings.hpp"
#include "worker/launch/zygote_source.hpp"

namespace pc {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

constexpr std::size_t kMaxMessage = std::size_t{1} << 20;
// After stopping a zygote: how long its flow processes may take to report.
constexpr std::chrono::seconds kDrainAfterStop{5};

bool send_message(int fd, const json& message, const std::array<int, 2>* fds) {
  const std::string text = message.dump();
  iovec iov{const_cast<char*>(text.data()), text.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) std::array<char, CMSG_SPACE(sizeof(int) * 2)> control{};
  if (fds != nullptr) {
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int) * 2);
    std::memcpy(CMSG_DATA(cmsg), fds->data(), sizeof(int) * 2);
  }
  ssize_t n = -1;
  do {
    n = sendmsg(fd, &msg, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  return n == static_cast<ssize_t>(text.size());
}

enum class Received { kMessage, kEnd, kTimeout };

// One message from the zygote, reading its output meanwhile so that it
// never blocks on a full pipe.
Received receive(int fd, Child& launcher, const LineCallback& on_output, Clock::time_point deadline,
                 std::vector<char>& buffer, json& message) {
  while (true) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      return Received::kTimeout;
    }
    std::array<pollfd, 3> fds{pollfd{fd, POLLIN, 0}, pollfd{launcher.stdout_fd(), POLLIN, 0},
                              pollfd{launcher.stderr_fd(), POLLIN, 0}};
    const int ready = poll(fds.data(), fds.size(), static_cast<int>(left.count()));
    if (ready < 0 && errno != EINTR) {
      return Received::kEnd;
    }
    if (fds[1].revents != 0 || fds[2].revents != 0) {
      launcher.read_output(on_output);
    }
    if (fds[0].revents == 0) {
      continue;
    }
    const ssize_t n = recv(fd, buffer.data(), buffer.size(), 0);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
      continue;
    }
    if (n <= 0) {
      return Received::kEnd;
    }
    message = json::parse(buffer.begin(), buffer.begin() + n, nullptr, false);
    if (!message.is_discarded() && message.is_object()) {
      return Received::kMessage;
    }
  }
}

std::string text_of(const json& message, const char* key) {
  auto it = message.find(key);
  return it != message.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// The flow process's pid when `message` is its "started" report for `id`.
std::optional<pid_t> started_pid(const json& message, const std::string& id) {
  auto pid = message.find("pid");
  if (text_of(message, "type") != "started" || text_of(message, "id") != id ||
      pid == message.end() || !pid->is_number_integer()) {
    return std::nullopt;
  }
  return pid->get<pid_t>();
}

}  // namespace

Zygote::Zygote(ZygoteOptions options) : options_(std::move(options)), buffer_(kMaxMessage) {}

// The zygote holds nothing of value (its forks are ours, in sessions of
// their own): the Child's destructor SIGKILLs its group and reaps it, which
// saves the half second a Python with Prefect imported takes to exit.
Zygote::~Zygote() {
  if (socket_ >= 0) {
    close(socket_);
  }
}

std::string Zygote::start() {
  if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) {
    return broken_ = std::string("cannot become a child subreaper: ") + std::strerror(errno);
  }
  std::array<int, 2> pair{-1, -1};
  // The zygote's end is inheritable only until the spawn below (we are
  // single-threaded: no other child can be started in between).
  if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, pair.data()) != 0) {
    return broken_ = std::string("cannot create the launcher's socket: ") + std::strerror(errno);
  }
  socket_ = pair[0];
  fcntl(socket_, F_SETFD, FD_CLOEXEC);
  SpawnOptions spawn;
  spawn.argv = {options_.python,         "-c",        std::string(kZygoteSource), "--control-fd",
                std::to_string(pair[1]), "--preload", show_list(options_.preload)};
  if (!options_.engine_modules.empty()) {
    spawn.argv.insert(spawn.argv.end(), {"--engine-modules", options_.engine_modules});
  }
  spawn.env = options_.env;
  launcher_ = Child::spawn(spawn);
  close(pair[1]);
  if (!launcher_->spawn_error().empty()) {
    return broken_ = launcher_->spawn_error();
  }
  json hello;
  switch (receive(socket_, *launcher_, options_.on_output, Clock::now() + options_.ready_timeout,
                  buffer_, hello)) {
    case Received::kTimeout:
      return broken_ = "the launcher did not finish its imports within " +
                       std::to_string(options_.ready_timeout.count() / 1000) + " s";
    case Received::kEnd:
      return broken_ = "the launcher ended before it was ready (see its output above)";
    case Received::kMessage:
      break;
  }
  if (auto it = hello.find("warnings"); it != hello.end() && it->is_array()) {
    for (const auto& warning : *it) {
      if (warning.is_string()) {
        warnings_.push_back(warning.get<std::string>());
      }
    }
  }
  if (text_of(hello, "type") != "ready") {
    const std::string reason = text_of(hello, "reason");
    return broken_ = reason.empty() ? "the launcher did not say it was ready" : reason;
  }
  ready_ = true;
  return "";
}

std::optional<Child> Zygote::fork_run(const SpawnOptions& spawn, const std::string& id,
                                      std::string& why_not) {
  if (!ready_) {
    why_not = broken_.empty() ? "the launcher is not started" : broken_;
    return std::nullopt;
  }
  std::error_code ec;
  if (!spawn.cwd.empty() && !std::filesystem::is_directory(spawn.cwd, ec)) {
    why_not = "the working directory is missing";  // a cold spawn says it in full
    return std::nullopt;
  }
  Pipe out;
  Pipe err;
  if (!out.open() || !err.open()) {
    why_not = std::string("cannot create pipes: ") + std::strerror(errno);
    return std::nullopt;
  }
  const Environment env = spawn.env ? *spawn.env : process_environment();
  json message = {{"type", "launch"}, {"id", id}, {"env", json(env)}, {"cwd", spawn.cwd.string()}};
  if (!options_.run_module.empty()) {
    message["module"] = options_.run_module;
  }
  const std::array<int, 2> theirs{out.write, err.write};
  const bool sent = send_message(socket_, message, &theirs);
  out.close_write();  // only the launcher's copies (then the flow's) remain
  err.close_write();
  if (!sent) {
    return give_up(std::string("cannot reach the launcher: ") + std::strerror(errno), id, out, err,
                   why_not);
  }
  const auto deadline = Clock::now() + options_.answer_timeout;
  json answer;
  while (true) {
    switch (receive(socket_, *launcher_, options_.on_output, deadline, buffer_, answer)) {
      case Received::kTimeout:
        return give_up("the launcher did not answer within " +
                           std::to_string(options_.answer_timeout.count() / 1000) + " s",
                       id, out, err, why_not);
      case Received::kEnd:
        return give_up("the launcher ended", id, out, err, why_not);
      case Received::kMessage:
        break;
    }
    if (text_of(answer, "id") != id) {
      continue;  // cannot happen with one launch at a time; never adopt another's
    }
    if (auto pid = started_pid(answer, id)) {
      return Child::adopt(*pid, out.release_read(), err.release_read());
    }
    const std::string reason = text_of(answer, "reason");
    broken_ = "the launcher could not fork: " + (reason.empty() ? answer.dump() : reason);
    ready_ = false;
    why_not = broken_;
    return std::nullopt;
  }
}

std::optional<Child> Zygote::give_up(const std::string& reason, const std::string& id, Pipe& out,
                                     Pipe& err, std::string& why_not) {
  broken_ = reason;
  ready_ = false;
  launcher_->signal_group(SIGKILL);
  // Every process that still holds the socket is the zygote, an
  // intermediate or a flow process about to report itself: its end is the
  // proof that nothing else was forked.
  std::optional<Child> adopted;
  json message;
  const auto deadline = Clock::now() + kDrainAfterStop;
  while (receive(socket_, *launcher_, options_.on_output, deadline, buffer_, message) ==
         Received::kMessage) {
    if (auto pid = started_pid(message, id); pid && !adopted) {
      adopted = Child::adopt(*pid, out.release_read(), err.release_read());
    }
  }
  if (!adopted) {
    why_not = reason;
  }
  close(socket_);
  socket_ = -1;
  return adopted;
}

}  // namespace pc
