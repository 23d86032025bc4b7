#pragma once
// A one-thread HTTP/1.1 server on 127.0.0.1 for CurlTransport tests: it
// answers each request with the next scripted raw response and records the
// raw requests. A script entry of "" means: read the request, never answer.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace pc::testing {

class LoopbackServer {
 public:
  explicit LoopbackServer(std::vector<std::string> script) : script_(script.begin(), script.end()) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        ::listen(listen_fd_, 8) != 0) {
      std::abort();
    }
    socklen_t len = sizeof(addr);
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~LoopbackServer() {
    stop_ = true;
    thread_.join();
    ::close(listen_fd_);
  }
  LoopbackServer(const LoopbackServer&) = delete;
  LoopbackServer& operator=(const LoopbackServer&) = delete;

  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  std::vector<std::string> requests() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return requests_;
  }
  int connections() const { return connections_; }

 private:
  // Waits up to 50 ms for `fd` to become readable; false on timeout.
  bool readable(int fd) const {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, 50) > 0;
  }

  void serve() {
    while (!stop_) {
      if (!readable(listen_fd_)) {
        continue;
      }
      int fd = ::accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) {
        continue;
      }
      ++connections_;
      serve_connection(fd);
      ::close(fd);
    }
  }

  void serve_connection(int fd) {
    std::string buffer;
    while (!stop_) {
      auto end = buffer.find("\r\n\r\n");
      if (end == std::string::npos) {
        if (!readable(fd)) {
          continue;
        }
        char chunk[4096];
        ssize_t n = ::recv(fd, chunk, sizeof(chunk), 0);
        if (n <= 0) {
          return;
        }
        buffer.append(chunk, static_cast<std::size_t>(n));
        continue;
      }
      std::size_t length = 0;
      auto cl = buffer.find("Content-Length: ");
      if (cl != std::string::npos && cl < end) {
        length = std::stoul(buffer.substr(cl + 16));
      }
      if (buffer.size() < end + 4 + length) {
        if (!readable(fd)) {
          continue;
        }
        char chunk[4096];
        ssize_t n = ::recv(fd, chunk, sizeof(chunk), 0);
        if (n <= 0) {
          return;
        }
        buffer.append(chunk, static_cast<std::size_t>(n));
        continue;
      }
      std::string response;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        requests_.push_back(buffer.substr(0, end + 4 + length));
        if (!script_.empty()) {
          response = script_.front();
          script_.pop_front();
        }
      }
      buffer.erase(0, end + 4 + length);
      if (response.empty()) {  // never answer: hold the connection until the client leaves
        while (!stop_) {
          char byte;
          if (readable(fd) && ::recv(fd, &byte, 1, 0) <= 0) {
            return;
          }
        }
        return;
      }
      for (std::size_t sent = 0; sent < response.size();) {
        ssize_t n = ::send(fd, response.data() + sent, response.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) {
          return;
        }
        sent += static_cast<std::size_t>(n);
      }
    }
  }

  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  mutable std::mutex mutex_;
  std::deque<std::string> script_;
  std::vector<std::string> requests_;
  std::thread thread_;
};

}  // namespace pc::testing
