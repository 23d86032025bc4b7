#include "worker/job_config.hpp"

#include <cmath>
#include <regex>
#include <set>

#include "common/error.hpp"

namespace pc {
namespace {

using json = nlohmann::json;

constexpr std::string_view kBlockPrefix = "prefect.blocks.";
constexpr std::string_view kVariablePrefix = "prefect.variables.";

enum class PlaceholderType { kStandard, kBlock, kVariable, kEnv };

struct Placeholder {
  std::string full_match;
  std::string name;
  PlaceholderType type;
  bool operator<(const Placeholder& o) const { return full_match < o.full_match; }
};

PlaceholderType type_of(const std::string& name) {
  if (name.rfind(kBlockPrefix, 0) == 0)
    return PlaceholderType::kBlock;
  if (name.rfind(kVariablePrefix, 0) == 0)
    return PlaceholderType::kVariable;
  if (!name.empty() && name[0] == '$')
    return PlaceholderType::kEnv;
  return PlaceholderType::kStandard;
}

// Prefect's PLACEHOLDER_CAPTURE_REGEX: {{\s*([\w\.\-\[\]$]+)\s*}}
std::set<Placeholder> find_placeholders(const std::string& text) {
  static const std::regex kPlaceholder(R"(\{\{\s*([\w\.\-\[\]$]+)\s*\}\})");
  std::set<Placeholder> found;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), kPlaceholder);
       it != std::sregex_iterator(); ++it) {
    std::string name = (*it)[1].str();
    found.insert({(*it)[0].str(), name, type_of(name)});
  }
  return found;
}

// Prefect's get_from_dict: "a.b[0].c" through objects and arrays.
std::optional<json> get_path(const json& root, const std::string& path) {
  std::string keys = path;
  std::string normalized;
  for (char c : keys) {
    if (c == '[') {
      normalized += '.';
    } else if (c != ']') {
      normalized += c;
    }
  }
  const json* value = &root;
  std::size_t start = 0;
  while (true) {
    auto dot = normalized.find('.', start);
    std::string key =
        normalized.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (value->is_array()) {
      char* end = nullptr;
      long index = std::strtol(key.c_str(), &end, 10);
      if (key.empty() || *end != '\0' || index < 0 ||
          static_cast<std::size_t>(index) >= value->size()) {
        return std::nullopt;
      }
      value = &(*value)[static_cast<std::size_t>(index)];
    } else if (value->is_object()) {
      auto it = value->find(key);
      if (it == value->end()) {
        return std::nullopt;
      }
      value = &*it;
    } else {
      return std::nullopt;
    }
    if (dot == std::string::npos) {
      return *value;
    }
    start = dot + 1;
  }
}

void replace_all(std::string& text, const std::string& from, const std::string& to) {
  std::size_t pos = 0;
  while ((pos = text.find(from, pos)) != std::string::npos) {
    text.replace(pos, from.size(), to);
    pos += to.size();
  }
}

// apply_values(): nullopt is Prefect's NotSet (the key is dropped).
std::optional<json> apply_values(const json& tmpl, const json& values, TemplateResolver& resolver) {
  if (tmpl.is_string()) {
    const std::string text = tmpl.get<std::string>();
    auto placeholders = find_placeholders(text);
    if (placeholders.empty()) {
      return tmpl;
    }
    if (placeholders.size() == 1 && placeholders.begin()->full_match == text &&
        placeholders.begin()->type == PlaceholderType::kStandard) {
      return get_path(values, placeholders.begin()->name);
    }
    std::string out = text;
    for (const auto& p : placeholders) {
      std::optional<json> value;
      if (p.type == PlaceholderType::kStandard) {
        value = get_path(values, p.name);
      } else if (p.type == PlaceholderType::kEnv) {
        if (auto v = resolver.env(p.name.substr(p.name.find_first_not_of('$')))) {
          value = json(*v);
        }
      } else {
        continue;  // blocks and variables are resolved afterwards
      }
      replace_all(out, p.full_match, value ? python_str(*value) : "");
    }
    return json(out);
  }
  if (tmpl.is_object()) {
    json out = json::object();
    for (const auto& [key, value] : tmpl.items()) {
      if (auto applied = apply_values(value, values, resolver)) {
        out[key] = std::move(*applied);
      }
    }
    return out;
  }
  if (tmpl.is_array()) {
    json out = json::array();
    for (const auto& value : tmpl) {
      if (auto applied = apply_values(value, values, resolver)) {
        out.push_back(std::move(*applied));
      }
    }
    return out;
  }
  return tmpl;
}

json resolve_block(const Placeholder& p, const std::string& text, TemplateResolver& resolver) {
  std::string rest = p.name.substr(kBlockPrefix.size());
  auto first = rest.find('.');
  if (first == std::string::npos) {
    throw api_error("invalid block placeholder \"" + p.full_match +
                    "\" (expected prefect.blocks.<block-type-slug>.<block-document-name>)");
  }
  std::string slug = rest.substr(0, first);
  std::string remainder = rest.substr(first + 1);
  auto second = remainder.find('.');
  std::string name = remainder.substr(0, second);
  std::string keypath = second == std::string::npos ? "" : remainder.substr(second + 1);
  auto data = resolver.block(slug, name);
  if (!data) {
    throw api_error("block not found: \"" + name + "\" of type \"" + slug + "\", referenced by " +
                    p.full_match + " in the job configuration");
  }
  json value = *data;
  if (value.is_object() && value.size() == 1 && value.contains("value") &&
      !(keypath.rfind("value", 0) == 0 &&
        (keypath.size() == 5 || keypath[5] == '.' || keypath[5] == '['))) {
    value = json(value["value"]);
  }
  if (!keypath.empty()) {
    auto found = get_path(value, keypath);
    if (!found) {
      throw api_error("invalid template \"" + text + "\": could not resolve the keypath \"" +
                      keypath + "\" in block \"" + slug + "/" + name + "\"");
    }
    value = *found;
  }
  return value;
}

json resolve_references(const json& tmpl, TemplateResolver& resolver) {
  if (tmpl.is_object()) {
    json out = json::object();
    for (const auto& [key, value] : tmpl.items()) {
      out[key] = resolve_references(value, resolver);
    }
    return out;
  }
  if (tmpl.is_array()) {
    json out = json::array();
    for (const auto& value : tmpl) {
      out.push_back(resolve_references(value, resolver));
    }
    return out;
  }
  if (!tmpl.is_string()) {
    return tmpl;
  }
  const std::string text = tmpl.get<std::string>();
  auto placeholders = find_placeholders(text);
  // Blocks first, then variables, as Prefect does.
  for (auto pass : {PlaceholderType::kBlock, PlaceholderType::kVariable}) {
    for (const auto& p : placeholders) {
      if (p.type != pass) {
        continue;
      }
      std::optional<json> value;
      if (pass == PlaceholderType::kBlock) {
        value = resolve_block(p, text, resolver);
      } else {
        value = resolver.variable(p.name.substr(kVariablePrefix.size()));
      }
      if (p.full_match == text) {
        return value ? *value : json("");
      }
      if (value && (value->is_object() || value->is_array())) {
        throw api_error("invalid template \"" + text + "\": " + p.full_match +
                        " is an object or list and cannot be embedded in text");
      }
    }
  }
  std::string out = text;
  for (const auto& p : placeholders) {
    if (p.type == PlaceholderType::kBlock) {
      replace_all(out, p.full_match, python_str(resolve_block(p, text, resolver)));
    } else if (p.type == PlaceholderType::kVariable) {
      auto value = resolver.variable(p.name.substr(kVariablePrefix.size()));
      replace_all(out, p.full_match, value ? python_str(*value) : "");
    }
  }
  return json(out);
}

// Prefect's set_in_dict: "env.FOO" -> {"env": {"FOO": v}}.
void set_dotted(json& target, const std::string& dotted, const json& value) {
  json* node = &target;
  std::size_t start = 0;
  while (true) {
    auto dot = dotted.find('.', start);
    std::string key =
        dotted.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (dot == std::string::npos) {
      (*node)[key] = value;
      return;
    }
    if (!node->contains(key) || !(*node)[key].is_object()) {
      (*node)[key] = json::object();
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

std::string python_str(const json& value) {
  if (value.is_string())
    return value.get<std::string>();
  if (value.is_boolean())
    return value.get<bool>() ? "True" : "False";
  if (value.is_null())
    return "None";
  if (value.is_number_float()) {
    double d = value.get<double>();
    if (std::floor(d) == d && std::abs(d) < 1e16) {
      return std::to_string(static_cast<long long>(d)) + ".0";
    }
  }
  return value.dump();
}

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
  return resolve_references(populated, resolver);
}

ProcessJobConfig to_process_job_config(const json& populated) {
  ProcessJobConfig job;
  if (auto it = populated.find("command");
      it != populated.end() && it->is_string() && !it->get<std::string>().empty()) {
    job.command = it->get<std::string>();
  }
  if (auto it = populated.find("env"); it != populated.end() && it->is_object()) {
    for (const auto& [key, value] : it->items()) {
      if (!value.is_null()) {
        job.env[key] = python_str(value);
      }
    }
  }
  if (auto it = populated.find("working_dir");
      it != populated.end() && it->is_string() && !it->get<std::string>().empty()) {
    job.working_dir = std::filesystem::path(it->get<std::string>());
  }
  if (auto it = populated.find("stream_output"); it != populated.end()) {
    if (it->is_boolean()) {
      job.stream_output = it->get<bool>();
    } else if (it->is_string()) {
      std::string v = it->get<std::string>();
      job.stream_output = !(v == "False" || v == "false" || v == "0" || v.empty());
    }
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
