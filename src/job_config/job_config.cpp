#include "job_config/job_config.hpp"

#include "common/error.hpp"
#include "job_config/templating.hpp"

namespace pc {
namespace {

using json = nlohmann::json;
using templating::apply_values;
using templating::resolve_blocks;
using templating::resolve_variables;

// Prefect's set_in_dict: "env.FOO" -> {"env": {"FOO": v}} ("[" -> ".",
// "]" dropped); a non-object on the way is an error, as in Prefect.
void set_dotted(json& target, const std::string& dotted, const json& value) {
  std::string keys;
  for (char c : dotted) {
    if (c == '[') {
      keys += '.';
    } else if (c != ']') {
      keys += c;
    }
  }
  json* node = &target;
  std::size_t start = 0;
  while (true) {
    auto dot = keys.find('.', start);
    std::string key =
        keys.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (dot == std::string::npos) {
      (*node)[key] = value;
      return;
    }
    if (!node->contains(key)) {
      (*node)[key] = json::object();
    } else if (!(*node)[key].is_object()) {
      throw api_error("job variable \"" + dotted + "\": \"" + key +
                          "\" is already set to a value that is not an object",
                      Hint::kJobTemplate);
    }
    node = &(*node)[key];
    start = dot + 1;
  }
}

json deep_merge(const json& base, const json& overlay) {
  json out = base;
  for (const auto& [key, value] : overlay.items()) {
    if (out.contains(key) && out[key].is_object() && value.is_object()) {
      out[key] = deep_merge(out[key], value);
    } else {
      out[key] = value;
    }
  }
  return out;
}

// Python's `a | b` for dicts.
json shallow_merge(const json& a, const json& b) {
  json out = a;
  for (const auto& [key, value] : b.items()) {
    out[key] = value;
  }
  return out;
}

}  // namespace

json merge_job_variables(const json& deployment_vars, const json& flow_run_vars) {
  json merged = deployment_vars.is_object() ? deployment_vars : json::object();
  if (!flow_run_vars.is_object()) {
    return merged;
  }
  json run = flow_run_vars;
  if (merged.contains("env") && merged["env"].is_object() && run.contains("env") &&
      run["env"].is_object()) {
    for (const auto& [key, value] : run["env"].items()) {
      merged["env"][key] = value;
    }
    run.erase("env");
  }
  for (const auto& [key, value] : run.items()) {
    merged[key] = value;
  }
  return merged;
}

json apply_job_template(const json& base_job_template, const json& job_variables,
                        TemplateResolver& resolver) {
  // Prefect validates it as a dict; a pool answer that is not one (a proxy,
  // a corrupted row) must fail this run, not abort the process (found by
  // fuzz_job_config).
  if (!base_job_template.is_object()) {
    throw api_error("the work pool's base job template is not a JSON object but " +
                        std::string(base_job_template.type_name()),
                    Hint::kJobTemplate);
  }
  json config = base_job_template.value("job_configuration", json::object());
  json variables = json::object();
  json properties = json::object();
  if (auto it = base_job_template.find("variables");
      it != base_job_template.end() && it->is_object()) {
    properties = it->value("properties", json::object());
  }
  for (const auto& [name, attrs] : properties.items()) {
    if (attrs.is_object() && attrs.contains("default") && !attrs["default"].is_null()) {
      variables[name] = attrs["default"];
    }
  }
  auto truthy = [](const json& j) {
    return !(j.is_null() || (j.is_object() && j.empty()) || (j.is_array() && j.empty()) ||
             (j.is_string() && j.get<std::string>().empty()) || (j.is_boolean() && !j.get<bool>()));
  };
  if (variables.contains("env") && truthy(variables["env"])) {
    if (config.contains("env") && config["env"].is_object()) {
      config["env"] = shallow_merge(config["env"], variables["env"]);
    } else {
      config["env"] = variables["env"];
    }
  }

  json transformed = json::object();
  if (job_variables.is_object()) {
    for (const auto& [key, value] : job_variables.items()) {
      if (key.find('.') != std::string::npos) {
        set_dotted(transformed, key, value);
      }
    }
    for (const auto& [key, value] : job_variables.items()) {
      if (key.find('.') == std::string::npos) {
        if (transformed.contains(key) && transformed[key].is_object() && value.is_object()) {
          transformed[key] = deep_merge(transformed[key], value);
        } else {
          transformed[key] = value;
        }
      }
    }
  }
  for (const auto& [key, value] : transformed.items()) {
    variables[key] = value;
  }
  if (config.contains("env") && config["env"].is_object() && variables.contains("env") &&
      truthy(variables["env"]) && variables["env"].is_object()) {
    config["env"] = shallow_merge(config["env"], variables["env"]);
  }

  json populated = apply_values(config, variables, resolver).value_or(json::object());
  populated = resolve_blocks(populated, resolver);
  return resolve_variables(populated, resolver);
}

}  // namespace pc
