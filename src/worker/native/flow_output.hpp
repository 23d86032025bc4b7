#pragma once
// A flow run's output as log events with their own level. Prefect's console
// lines look like
//   12:34:56.789 | ERROR   | Flow run 'brave-fox' - Finished in state Failed(...)
// and are followed, for errors, by an indented traceback. Each such line
// starts an event at its level (WARNING -> warn, ERROR/CRITICAL -> error);
// the traceback lines after it (indented, or a "Traceback ..." block up to
// its exception line) join that event, so that a log viewer shows one error
// with its traceback instead of thirty info lines. A traceback with no
// Prefect line before it (a crash at import) is an error event of its own;
// any other line (a print) is an info event.
//
// An event is written when the next one starts, when the stream has been
// quiet for kQuietFlush, or at flush() (the process exited). One parser per
// stream, so that a print on stdout never joins an error on stderr.

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "log/logger.hpp"

namespace pc {

class FlowOutput {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::milliseconds kQuietFlush{300};
  static constexpr std::size_t kMaxEventLines = 200;

  explicit FlowOutput(Logger log) : log_(std::move(log)) {}
  FlowOutput(const FlowOutput&) = delete;
  FlowOutput& operator=(const FlowOutput&) = delete;
  FlowOutput(FlowOutput&& other) noexcept
      : log_(std::move(other.log_)), pending_(std::move(other.pending_)) {
    other.pending_.reset();  // a moved-from optional stays engaged
  }
  FlowOutput& operator=(FlowOutput&&) = delete;
  ~FlowOutput() { flush(); }

  void line(std::string_view text, Clock::time_point now = Clock::now());
  // Writes a pending event that has been quiet for kQuietFlush.
  void tick(Clock::time_point now = Clock::now());
  void flush();

 private:
  struct Event {
    LogLevel level = LogLevel::kInfo;
    std::string text;
    std::size_t lines = 0;
    bool in_traceback = false;    // inside a "Traceback ..." block
    bool traceback_done = false;  // its exception line has been read
    Clock::time_point last{};
  };

  void start(LogLevel level, std::string_view text, Clock::time_point now);
  void append(std::string_view text, Clock::time_point now);

  Logger log_;
  std::optional<Event> pending_;
};

// The level of a Prefect console line ("HH:MM:SS.mmm | LEVEL | ..."), or
// nullopt when the line is not one.
std::optional<LogLevel> prefect_line_level(std::string_view line);

}  // namespace pc
