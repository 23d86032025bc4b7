#include <string>

#include "common/error.hpp"
#include "common/text.hpp"
#include "job_config/job_config.hpp"

namespace pc {

using json = nlohmann::json;

namespace {

// Pydantic's lax bool: true/false, 0/1, and the usual words.
std::optional<bool> pydantic_bool(const json& value) {
  if (value.is_boolean()) {
    return value.get<bool>();
  }
  if (value.is_number_integer() || value.is_number_unsigned()) {
    auto n = value.get<long long>();
    if (n == 0 || n == 1) {
      return n == 1;
    }
    return std::nullopt;
  }
  if (value.is_number_float()) {
    double d = value.get<double>();
    if (d == 0.0 || d == 1.0) {
      return d == 1.0;
    }
    return std::nullopt;
  }
  if (value.is_string()) {
    const std::string v = ascii_lower(value.get<std::string>());
    for (const char* yes : {"1", "on", "t", "true", "y", "yes"}) {
      if (v == yes)
        return true;
    }
    for (const char* no : {"0", "off", "f", "false", "n", "no"}) {
      if (v == no)
        return false;
    }
  }
  return std::nullopt;
}

Error invalid_field(const std::string& field, const json& value, const std::string& expected) {
  return api_error("job configuration: " + field + " " + value.dump() + " is not " + expected +
                       " (check the deployment's job variables and the work pool's base job "
                       "template)",
                   Hint::kJobTemplate);
}

}  // namespace

ProcessJobConfig to_process_job_config(const json& populated) {
  ProcessJobConfig job;
  if (auto it = populated.find("command"); it != populated.end() && !it->is_null()) {
    if (!it->is_string()) {
      throw invalid_field("command", *it, "a string");
    }
    if (!it->get<std::string>().empty()) {
      job.command = it->get<std::string>();
    }
  }
  if (auto it = populated.find("env"); it != populated.end() && !it->is_null()) {
    if (!it->is_object()) {
      throw invalid_field("env", *it, "an object of strings");
    }
    for (const auto& [key, value] : it->items()) {
      if (!value.is_null()) {
        job.env[key] = python_str(value);
      }
    }
  }
  if (auto it = populated.find("working_dir"); it != populated.end() && !it->is_null()) {
    if (!it->is_string()) {
      throw invalid_field("working_dir", *it, "a path");
    }
    if (!it->get<std::string>().empty()) {
      job.working_dir = std::filesystem::path(it->get<std::string>());
    }
  }
  if (auto it = populated.find("stream_output"); it != populated.end()) {
    auto flag = pydantic_bool(*it);
    if (!flag) {
      throw invalid_field("stream_output", *it, "a boolean");
    }
    job.stream_output = *flag;
  }
  if (auto it = populated.find("labels"); it != populated.end() && it->is_object()) {
    for (const auto& [key, value] : it->items()) {
      job.labels[key] = python_str(value);
    }
  }
  if (auto it = populated.find("name"); it != populated.end() && it->is_string()) {
    job.name = it->get<std::string>();
  }
  return job;
}

}  // namespace pc
