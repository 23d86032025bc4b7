#pragma once
// Structured logging for prefect-cycle, on top of spdlog.
//
// A Logger is passed to every component that logs (no global logger). Each line
// has a level, a message and optional key/value fields. Text format:
//   2026-11-24T12:00:00.123Z INFO  [phase=resume] pool "etl" resumed
// JSON format (one object per line), as Railway's log viewer and most log
// collectors read it: `level` is one of debug, info, warn, error (trace lines
// say debug, critical ones error); numeric fields are JSON numbers:
//   {"time":"2026-11-24T12:00:00.123Z","level":"info","message":"...","phase":"resume"}
// Every line passes through the Redactor before it is written. Thread-safe.

#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/redact.hpp"

namespace spdlog {
class logger;
}

namespace pc {

enum class LogLevel { kTrace, kDebug, kInfo, kWarn, kError, kCritical };
enum class LogFormat { kText, kJson };
// Where lines go: all to stderr (commands whose stdout is data: config,
// doctor --json), or split by level -- debug and info to stdout, warnings and
// errors to stderr -- so that platforms which colour stderr as errors (Railway,
// GKE, docker logs with a stream filter) show a healthy cycle as healthy.
enum class LogStreams { kStderr, kSplitByLevel };

// One key/value of a line. Numbers stay numbers in JSON.
struct Field {
  Field(std::string k, std::string v) : key(std::move(k)), value(std::move(v)) {}
  Field(std::string k, const char* v) : key(std::move(k)), value(v) {}
  Field(std::string k, long long v) : key(std::move(k)), value(std::to_string(v)), number(true) {}
  Field(std::string k, int v) : Field(std::move(k), static_cast<long long>(v)) {}
  Field(std::string k, double v);

  std::string key;
  std::string value;
  bool number = false;
};
using Fields = std::vector<Field>;

class Logger {
 public:
  // Writes to stderr, or to stdout and stderr by level.
  Logger(LogLevel level, LogFormat format, std::shared_ptr<const Redactor> redactor,
         LogStreams streams = LogStreams::kStderr);
  // Writes into `out` (tests). `out` must outlive the logger and its copies.
  Logger(LogLevel level, LogFormat format, std::shared_ptr<const Redactor> redactor,
         std::ostringstream& out);

  // A logger that adds `fields` to every line, e.g. {{"phase", "wait"}}.
  Logger with(Fields fields) const;

  bool enabled(LogLevel level) const { return level >= level_; }
  void log(LogLevel level, std::string_view message, const Fields& fields = {}) const;

  void trace(std::string_view m, const Fields& f = {}) const { log(LogLevel::kTrace, m, f); }
  void debug(std::string_view m, const Fields& f = {}) const { log(LogLevel::kDebug, m, f); }
  void info(std::string_view m, const Fields& f = {}) const { log(LogLevel::kInfo, m, f); }
  void warn(std::string_view m, const Fields& f = {}) const { log(LogLevel::kWarn, m, f); }
  void error(std::string_view m, const Fields& f = {}) const { log(LogLevel::kError, m, f); }
  void critical(std::string_view m, const Fields& f = {}) const { log(LogLevel::kCritical, m, f); }

  // A logger that discards everything (tests, tools).
  static Logger null();

  const Redactor& redactor() const { return *redactor_; }
  LogFormat format() const { return format_; }

 private:
  Logger(std::shared_ptr<spdlog::logger> sink, std::shared_ptr<spdlog::logger> problem_sink,
         LogLevel level, LogFormat format, std::shared_ptr<const Redactor> redactor, Fields fields);

  std::shared_ptr<spdlog::logger> sink_;          // debug and info
  std::shared_ptr<spdlog::logger> problem_sink_;  // warnings and errors
  LogLevel level_;
  LogFormat format_;
  std::shared_ptr<const Redactor> redactor_;
  Fields fields_;
};

}  // namespace pc
