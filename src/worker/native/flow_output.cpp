#include "worker/native/flow_output.hpp"

#include <cctype>

namespace pc {
namespace {

bool digits(std::string_view s, std::size_t from, std::size_t count) {
  if (s.size() < from + count) {
    return false;
  }
  for (std::size_t i = from; i < from + count; ++i) {
    if (std::isdigit(static_cast<unsigned char>(s[i])) == 0) {
      return false;
    }
  }
  return true;
}

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// The first line of a traceback, or of a chained one.
bool opens_traceback(std::string_view line) {
  return starts_with(line, "Traceback (most recent call last):") ||
         starts_with(line, "During handling of the above exception") ||
         starts_with(line, "The above exception was the direct cause") ||
         starts_with(line, "Exception Group Traceback");
}

bool indented(std::string_view line) {
  return !line.empty() && (line[0] == ' ' || line[0] == '\t');
}

}  // namespace

std::optional<LogLevel> prefect_line_level(std::string_view line) {
  // "HH:MM:SS.mmm | LEVEL    | ..."
  if (!(digits(line, 0, 2) && line[2] == ':' && digits(line, 3, 2) && line[5] == ':' &&
        digits(line, 6, 2) && line[8] == '.' && digits(line, 9, 3))) {
    return std::nullopt;
  }
  if (line.substr(12, 3) != " | ") {
    return std::nullopt;
  }
  std::string_view rest = line.substr(15);
  auto bar = rest.find(" | ");
  if (bar == std::string_view::npos) {
    return std::nullopt;
  }
  std::string_view level = rest.substr(0, bar);
  while (!level.empty() && level.back() == ' ') {
    level.remove_suffix(1);
  }
  if (level == "DEBUG") {
    return LogLevel::kDebug;
  }
  if (level == "INFO") {
    return LogLevel::kInfo;
  }
  if (level == "WARNING") {
    return LogLevel::kWarn;
  }
  if (level == "ERROR") {
    return LogLevel::kError;
  }
  if (level == "CRITICAL") {
    return LogLevel::kCritical;
  }
  return std::nullopt;
}

void FlowOutput::line(std::string_view text, Clock::time_point now) {
  if (auto level = prefect_line_level(text)) {
    start(*level, text, now);
    return;
  }
  if (opens_traceback(text)) {
    if (pending_ && (pending_->level >= LogLevel::kError || pending_->in_traceback)) {
      append(text, now);
    } else {
      start(LogLevel::kError, text, now);
    }
    pending_->in_traceback = true;
    pending_->traceback_done = false;
    return;
  }
  if (pending_ && (indented(text) || (pending_->in_traceback && !pending_->traceback_done))) {
    const bool exception_line = pending_->in_traceback && !indented(text);
    if (pending_->lines >= kMaxEventLines) {
      // A huge event is cut: the rest goes on as another at the same level.
      Event rest = *pending_;
      start(rest.level, text, now);
      pending_->in_traceback = rest.in_traceback;
    } else {
      append(text, now);
    }
    if (exception_line) {
      pending_->traceback_done = true;  // "ValueError: boom" ends the block
    }
    return;
  }
  start(LogLevel::kInfo, text, now);
}

void FlowOutput::tick(Clock::time_point now) {
  if (pending_ && now - pending_->last >= kQuietFlush) {
    flush();
  }
}

void FlowOutput::flush() {
  if (pending_) {
    log_.log(pending_->level, pending_->text);
    pending_.reset();
  }
}

void FlowOutput::start(LogLevel level, std::string_view text, Clock::time_point now) {
  flush();
  pending_ = Event{level, std::string(text), 1, false, false, now};
}

void FlowOutput::append(std::string_view text, Clock::time_point now) {
  pending_->text += '\n';
  pending_->text += text;
  ++pending_->lines;
  pending_->last = now;
}

}  // namespace pc
