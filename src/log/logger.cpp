#include "log/logger.hpp"

#include <spdlog/logger.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <nlohmann/json.hpp>

namespace pc {
namespace {

spdlog::level::level_enum to_spdlog(LogLevel level) {
  switch (level) {
    case LogLevel::kTrace:
      return spdlog::level::trace;
    case LogLevel::kDebug:
      return spdlog::level::debug;
    case LogLevel::kInfo:
      return spdlog::level::info;
    case LogLevel::kWarn:
      return spdlog::level::warn;
    case LogLevel::kError:
      return spdlog::level::err;
    case LogLevel::kCritical:
      return spdlog::level::critical;
  }
  return spdlog::level::info;
}

// Railway's structured-log levels (debug, info, warn, error); most
// collectors read the same names.
const char* json_level(LogLevel level) {
  switch (level) {
    case LogLevel::kTrace:
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
    case LogLevel::kCritical:
      return "error";
  }
  return "info";
}

std::shared_ptr<spdlog::logger> make_sink_logger(spdlog::sink_ptr sink, LogFormat format) {
  auto logger = std::make_shared<spdlog::logger>("prefect-cycle", std::move(sink));
  // spdlog supplies the timestamp (UTC), and in text the level; the rest is ours.
  const char* pattern = format == LogFormat::kJson ? R"({"time":"%Y-%m-%dT%H:%M:%S.%eZ",%v})"
                                                   : "%Y-%m-%dT%H:%M:%S.%eZ %-7l %v";
  logger->set_formatter(
      std::make_unique<spdlog::pattern_formatter>(pattern, spdlog::pattern_time_type::utc, "\n"));
  logger->set_level(spdlog::level::trace);
  logger->flush_on(spdlog::level::trace);
  return logger;
}

std::string format_number(double v) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.3f", v);
  std::string s = buffer;
  while (s.size() > 1 && s.back() == '0') {
    s.pop_back();
  }
  if (s.back() == '.') {
    s.pop_back();
  }
  return s;
}

}  // namespace

Field::Field(std::string k, double v) : key(std::move(k)), value(format_number(v)), number(true) {}

Logger::Logger(LogLevel level, LogFormat format, std::shared_ptr<const Redactor> redactor,
               LogStreams streams)
    : Logger(make_sink_logger(std::make_shared<spdlog::sinks::stderr_sink_mt>(), format), nullptr,
             level, format, std::move(redactor), {}) {
  if (streams == LogStreams::kSplitByLevel) {
    sink_ = make_sink_logger(std::make_shared<spdlog::sinks::stdout_sink_mt>(), format);
  }
}

Logger::Logger(LogLevel level, LogFormat format, std::shared_ptr<const Redactor> redactor,
               std::ostringstream& out)
    : Logger(make_sink_logger(std::make_shared<spdlog::sinks::ostream_sink_mt>(out), format),
             nullptr, level, format, std::move(redactor), {}) {}

Logger::Logger(std::shared_ptr<spdlog::logger> sink, std::shared_ptr<spdlog::logger> problem_sink,
               LogLevel level, LogFormat format, std::shared_ptr<const Redactor> redactor,
               Fields fields)
    : sink_(sink),
      problem_sink_(problem_sink ? std::move(problem_sink) : std::move(sink)),
      level_(level),
      format_(format),
      redactor_(redactor ? std::move(redactor) : std::make_shared<const Redactor>()),
      fields_(std::move(fields)) {}

Logger Logger::with(Fields fields) const {
  Fields merged = fields_;
  for (auto& f : fields) {
    merged.push_back(std::move(f));
  }
  return Logger(sink_, problem_sink_, level_, format_, redactor_, std::move(merged));
}

void Logger::log(LogLevel level, std::string_view message, const Fields& fields) const {
  if (!enabled(level)) {
    return;
  }
  std::string line;
  if (format_ == LogFormat::kJson) {
    // Keys in insertion order: level and message first, as people read them.
    nlohmann::ordered_json obj = nlohmann::ordered_json::object();
    obj["level"] = json_level(level);
    obj["message"] = redactor_->redact(message);
    for (const auto* list : {&fields_, &fields}) {
      for (const auto& f : *list) {
        if (f.key == "level" || f.key == "message" || f.key == "time") {
          continue;  // never overwrite the line's own keys
        }
        if (f.number) {
          obj[f.key] = nlohmann::ordered_json::parse(f.value, nullptr, false);
        } else {
          obj[f.key] = redactor_->redact(f.value);
        }
      }
    }
    std::string dumped = obj.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
    // Strip the braces: the pattern supplies them around the time.
    line = dumped.substr(1, dumped.size() - 2);
  } else {
    if (!fields_.empty() || !fields.empty()) {
      line += '[';
      bool first = true;
      for (const auto* list : {&fields_, &fields}) {
        for (const auto& f : *list) {
          if (!first) {
            line += ' ';
          }
          first = false;
          line += f.key;
          line += '=';
          line += f.value;
        }
      }
      line += "] ";
    }
    line += message;
    line = redactor_->redact(line);
  }
  (level >= LogLevel::kWarn ? problem_sink_ : sink_)->log(to_spdlog(level), line);
}

Logger Logger::null() {
  return Logger(make_sink_logger(std::make_shared<spdlog::sinks::null_sink_mt>(), LogFormat::kText),
                nullptr, LogLevel::kCritical, LogFormat::kText, nullptr, {});
}

}  // namespace pc
