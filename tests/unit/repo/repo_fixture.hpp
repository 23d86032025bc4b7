#pragma once
// Test helpers for the repository and database preflight: a temp dir, the
// `git` CLI to make real repositories, and TCP listeners that misbehave.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace pc::testing {

namespace fs = std::filesystem;

// A fresh directory, removed with everything in it at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "pc-repo-test-XXXXXX").string();
    REQUIRE(mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }
  fs::path operator/(const std::string& name) const { return path_ / name; }

 private:
  fs::path path_;
};

inline std::string quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  }
  return out + "'";
}

// Runs a shell command (test setup only); fails the test if it fails.
inline void sh(const std::string& command) {
  std::string full = "(" + command + ") >/dev/null 2>&1";
  INFO(command);
  REQUIRE(std::system(full.c_str()) == 0);
}

inline void write_file(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path) << text;
}

inline std::string read_file(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A bare repository at <dir>/remote.git with a work clone at <dir>/work to
// commit from, with `branches` (the first is the default branch).
class BareRepo {
 public:
  BareRepo(const fs::path& dir, const std::vector<std::string>& branches)
      : bare_(dir / "remote.git"), work_(dir / "work") {
    const std::string first = branches.at(0);
    sh("git init -q --bare -b " + first + " " + quote(bare_.string()));
    sh("git init -q -b " + first + " " + quote(work_.string()));
    commit("README.md", "hello\n", "first");
    sh(git() + " remote add origin " + quote(bare_.string()));
    sh(git() + " push -q origin " + first);
    for (std::size_t i = 1; i < branches.size(); ++i) {
      sh(git() + " push -q origin " + first + ":refs/heads/" + branches[i]);
    }
  }

  // Commits `file` with `text` on the checked-out branch of the work clone
  // and pushes it. Returns the new commit id.
  std::string commit_and_push(const std::string& file, const std::string& text,
                              const std::string& branch) {
    std::string id = commit(file, text, "change " + file);
    sh(git() + " push -q origin HEAD:refs/heads/" + branch);
    return id;
  }

  std::string file_url() const { return "file://" + bare_.string(); }
  const fs::path& path() const { return bare_; }

 private:
  std::string git() const {
    return "git -C " + quote(work_.string()) + " -c user.name=test -c user.email=test@example.com";
  }
  std::string commit(const std::string& file, const std::string& text, const std::string& msg) {
    write_file(work_ / file, text);
    sh(git() + " add -A && " + git() + " commit -q -m " + quote(msg));
    std::string head = (work_ / ".git" / "pc-head").string();
    sh(git() + " rev-parse HEAD > " + quote(head));
    std::string id = read_file(head);
    fs::remove(head);
    return id.substr(0, id.find('\n'));
  }

  fs::path bare_;
  fs::path work_;
};

inline int listen_loopback(int backlog, int& port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  REQUIRE(::listen(fd, backlog) == 0);
  socklen_t len = sizeof(addr);
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  port = ntohs(addr.sin_port);
  return fd;
}

// A TCP port that completes the handshake (the kernel accepts into the
// backlog) and never sends a byte.
class SilentListener {
 public:
  SilentListener() { fd_ = listen_loopback(64, port_); }
  SilentListener(const SilentListener&) = delete;
  SilentListener& operator=(const SilentListener&) = delete;
  ~SilentListener() { ::close(fd_); }
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

// A TCP port whose connects hang: its accept queue is full and never drained,
// so the kernel drops further SYNs, as a firewall that blackholes does.
class BlackholeListener {
 public:
  BlackholeListener() {
    fd_ = listen_loopback(0, port_);
    for (int i = 0; i < 4; ++i) {
      int c = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      addr.sin_port = htons(static_cast<uint16_t>(port_));
      ::connect(c, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
      fillers_.push_back(c);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  BlackholeListener(const BlackholeListener&) = delete;
  BlackholeListener& operator=(const BlackholeListener&) = delete;
  ~BlackholeListener() {
    for (int c : fillers_) {
      ::close(c);
    }
    ::close(fd_);
  }
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
  std::vector<int> fillers_;
};

// An HTTP server that answers every request with 401 and a Basic challenge,
// recording the requests it got. It is a forked process, not a thread: the
// git calls under test fork their own child (see src/repo/bounded.hpp), which
// is only safe while the process has one thread, as it has in production. A
// server thread holding an allocator lock at that fork left the git child
// deadlocked under ASan until its deadline.
class UnauthorizedServer {
 public:
  UnauthorizedServer() {
    fd_ = listen_loopback(16, port_);
    int pipe_fds[2];
    REQUIRE(::pipe2(pipe_fds, O_CLOEXEC) == 0);
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      ::close(pipe_fds[0]);
      serve(pipe_fds[1]);
      ::_exit(0);
    }
    ::close(pipe_fds[1]);
    ::close(fd_);
    log_ = pipe_fds[0];
    ::fcntl(log_, F_SETFL, O_NONBLOCK);
  }
  UnauthorizedServer(const UnauthorizedServer&) = delete;
  UnauthorizedServer& operator=(const UnauthorizedServer&) = delete;
  ~UnauthorizedServer() {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    ::close(log_);
  }
  int port() const { return port_; }
  // Every request received so far, in order.
  std::string requests() {
    char buf[4096];
    ssize_t n = 0;
    while ((n = ::read(log_, buf, sizeof(buf))) > 0) {
      requests_.append(buf, static_cast<std::size_t>(n));
    }
    return requests_;
  }

 private:
  // Child side: answers until killed. Each request is written to the pipe
  // before the answer goes out, so the parent sees it once its call returns.
  [[noreturn]] void serve(int log) {
    for (;;) {
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) {
        continue;
      }
      std::string request;
      char buf[4096];
      while (request.find("\r\n\r\n") == std::string::npos) {
        pollfd q{c, POLLIN, 0};
        if (::poll(&q, 1, 2000) <= 0) {
          break;
        }
        ssize_t n = ::read(c, buf, sizeof(buf));
        if (n <= 0) {
          break;
        }
        request.append(buf, static_cast<std::size_t>(n));
      }
      (void)!::write(log, request.data(), request.size());
      const std::string response =
          "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"git\"\r\n"
          "Content-Length: 0\r\nConnection: close\r\n\r\n";
      (void)!::write(c, response.data(), response.size());
      ::close(c);
    }
  }

  int fd_ = -1;
  int port_ = 0;
  pid_t pid_ = -1;
  int log_ = -1;
  std::string requests_;
};

}  // namespace pc::testing
