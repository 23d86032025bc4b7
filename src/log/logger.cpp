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

std::shared_ptr<spdlog::logger> make_sink_logger(spdlog::sink_ptr sink, LogFormat format) {
  auto logger = std::make_shared<spdlog::logger>("prefect-cycle", std::move(sink));
  // spdlog supplies the timestamp (UTC) and the level; the rest is ours.
  const char* pattern = format == LogFormat::kJson
                            ? R"({"time":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%l",%v})"
                            : "%Y-%m-%dT%H:%M:%S.%eZ %-7l %v";
  logger->set_formatter(
      std::make_unique<spdlog::pattern_formatter>(pattern, spdlog::pattern_time_type::utc, "\n"));
  logger->set_level(spdlog::level::trace);
  logger->flush_on(spdlog::level::trace);
  return logger;
}

}  // namespace

Logger::Logger(LogLevel level, LogFormat format, std::shared_ptr<const Redactor> redactor)
    : Logger(make_sink_logger(std::make_shared<spdlog::sinks::stderr_sink_mt>(), format), level,
             format, std::move(redactor), {}) {}

Logger::Logger(LogLevel level, LogFormat format, std::shared_ptr<const Redactor> redactor,
               std::ostringstream& out)
    : Logger(make_sink_logger(std::make_shared<spdlog::sinks::ostream_sink_mt>(out), format), level,
             format, std::move(redactor), {}) {}

Logger::Logger(std::shared_ptr<spdlog::logger> sink, LogLevel level, LogFormat format,
               std::shared_ptr<const Redactor> redactor, Fields fields)
    : sink_(std::move(sink)),
      level_(level),
      format_(format),
      redactor_(redactor ? std::move(redactor) : std::make_shared<const Redactor>()),
      fields_(std::move(fields)) {}

Logger Logger::with(Fields fields) const {
  Fields merged = fields_;
  for (auto& f : fields) {
    merged.push_back(std::move(f));
  }
  return Logger(sink_, level_, format_, redactor_, std::move(merged));
}

void Logger::log(LogLevel level, std::string_view message, const Fields& fields) const {
  if (!enabled(level)) {
    return;
  }
  std::string line;
  if (format_ == LogFormat::kJson) {
    nlohmann::json obj = nlohmann::json::object();
    obj["message"] = redactor_->redact(message);
    for (const auto* list : {&fields_, &fields}) {
      for (const auto& f : *list) {
        obj[f.key] = redactor_->redact(f.value);
      }
    }
    std::string dumped = obj.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    // Strip the braces: the pattern supplies them around time and level.
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
  sink_->log(to_spdlog(level), line);
}

Logger Logger::null() {
  return Logger(make_sink_logger(std::make_shared<spdlog::sinks::null_sink_mt>(), LogFormat::kText),
                LogLevel::kCritical, LogFormat::kText, nullptr, {});
}

}  // namespace pc
