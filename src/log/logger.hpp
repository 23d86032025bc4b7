#pragma once
// Structured logging for prefect-cycle, on top of spdlog.
//
// A Logger is passed to every component that logs (no global logger). Each line
// has a level, a message and optional key/value fields. Text format:
//   2026-11-24T12:00:00.123Z INFO  [phase=resume] pool "etl" resumed
// JSON format (one object per line):
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

struct Field {
  std::string key;
  std::string value;
};
using Fields = std::vector<Field>;

class Logger {
 public:
  // Writes to stderr.
  Logger(LogLevel level, LogFormat format, std::shared_ptr<const Redactor> redactor);
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
  Logger(std::shared_ptr<spdlog::logger> sink, LogLevel level, LogFormat format,
         std::shared_ptr<const Redactor> redactor, Fields fields);

  std::shared_ptr<spdlog::logger> sink_;
  LogLevel level_;
  LogFormat format_;
  std::shared_ptr<const Redactor> redactor_;
  Fields fields_;
};

}  // namespace pc
