#include "worker/job_config.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
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

// Python's int() of a key, as get_from_dict tries it on every key:
// optional whitespace and sign, digits (underscores between digits allowed).
std::optional<long long> python_int(const std::string& key) {
  std::size_t i = key.find_first_not_of(" \t\n\r\f\v");
  std::size_t end = key.find_last_not_of(" \t\n\r\f\v");
  if (i == std::string::npos) {
    return std::nullopt;
  }
  bool negative = false;
  if (key[i] == '+' || key[i] == '-') {
    negative = key[i] == '-';
    ++i;
  }
  if (i > end || !std::isdigit(static_cast<unsigned char>(key[i])) ||
      !std::isdigit(static_cast<unsigned char>(key[end]))) {
    return std::nullopt;
  }
  long long value = 0;
  for (; i <= end; ++i) {
    char c = key[i];
    if (c == '_' && std::isdigit(static_cast<unsigned char>(key[i + 1])) &&
        std::isdigit(static_cast<unsigned char>(key[i - 1]))) {
      continue;
    }
    if (!std::isdigit(static_cast<unsigned char>(c)) || value > (1LL << 53)) {
      return std::nullopt;
    }
    value = value * 10 + (c - '0');
  }
  return negative ? -value : value;
}

// Python's sequence[index], negative indexes counting from the end.
std::optional<std::size_t> python_index(long long index, std::size_t size) {
  if (index < 0) {
    index += static_cast<long long>(size);
  }
  if (index < 0 || static_cast<std::size_t>(index) >= size) {
    return std::nullopt;
  }
  return static_cast<std::size_t>(index);
}

// Prefect's get_from_dict: "a.b[0].c" ("[" -> ".", "]" dropped, split on
// "."). Every key that int() accepts is used as an integer, so it indexes
// lists and strings (negative from the end) and never matches an object key.
std::optional<json> get_path(const json& root, const std::string& path) {
  std::string normalized;
  for (char c : path) {
    if (c == '[') {
      normalized += '.';
    } else if (c != ']') {
      normalized += c;
    }
  }
  json value = root;
  std::size_t start = 0;
  while (true) {
    auto dot = normalized.find('.', start);
    std::string key =
        normalized.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    const auto index = python_int(key);
    if (index) {
      if (value.is_array()) {
        auto i = python_index(*index, value.size());
        if (!i) {
          return std::nullopt;
        }
        value = json(value[*i]);
      } else if (value.is_string()) {
        const std::string text = value.get<std::string>();
        auto i = python_index(*index, text.size());
        if (!i) {
          return std::nullopt;
        }
        value = std::string(1, text[*i]);
      } else {
        return std::nullopt;  // dict[int] is a KeyError for JSON objects
      }
    } else if (value.is_object()) {
      auto it = value.find(key);
      if (it == value.end()) {
        return std::nullopt;
      }
      value = json(*it);
    } else {
      return std::nullopt;
    }
    if (dot == std::string::npos) {
      return value;
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
        // Python's name.lstrip("$"): "{{ $ }}" names the empty variable
        // (found by fuzz_job_config: substr(npos) threw).
        const auto first = p.name.find_first_not_of('$');
        const std::string name = first == std::string::npos ? "" : p.name.substr(first);
        if (auto v = name.empty() ? std::nullopt : resolver.env(name)) {
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
  // Python's name.replace(prefix, "").split(".", 2).
  std::string rest = p.name;
  replace_all(rest, std::string(kBlockPrefix), "");
  auto first = rest.find('.');
  if (first == std::string::npos) {
    throw api_error("invalid block placeholder format: \"" + p.name +
                        "\" (expected prefect.blocks.<block-type-slug>.<block-document-name>)",
                    Hint::kJobTemplate);
  }
  std::string slug = rest.substr(0, first);
  std::string remainder = rest.substr(first + 1);
  auto second = remainder.find('.');
  std::string name = remainder.substr(0, second);
  std::string keypath = second == std::string::npos ? "" : remainder.substr(second + 1);
  auto data = resolver.block(slug, name);
  if (!data) {
    throw api_error("block not found: \"" + name + "\" of type \"" + slug + "\", referenced by " +
                        p.full_match +
                        " in the job configuration (deleted? check the deployment and the work "
                        "pool's base job template)",
                    Hint::kJobTemplate);
  }
  json value = *data;
  const bool points_into_value =
      keypath == "value" || keypath.rfind("value.", 0) == 0 || keypath.rfind("value[", 0) == 0;
  if (value.is_object() && value.size() == 1 && value.contains("value") && !points_into_value) {
    value = json(value["value"]);
  }
  if (!keypath.empty()) {
    auto found = get_path(value, keypath);
    if (!found) {
      throw api_error("invalid template \"" + text + "\": could not resolve the keypath \"" +
                          keypath + "\" in block \"" + slug + "/" + name + "\"",
                      Hint::kJobTemplate);
    }
    value = *found;
  }
  return value;
}

// resolve_block_document_references(): {"$ref": {"block_document_id": id}}
// objects and prefect.blocks placeholders. Other placeholders stay.
json resolve_blocks(const json& tmpl, TemplateResolver& resolver) {
  if (tmpl.is_object()) {
    if (auto ref = tmpl.find("$ref"); ref != tmpl.end() && ref->is_object()) {
      auto id = ref->find("block_document_id");
      if (id != ref->end() && !id->is_null() &&
          !(id->is_string() && id->get<std::string>().empty())) {
        const std::string block_id = id->is_string() ? id->get<std::string>() : id->dump();
        auto data = resolver.block_by_id(block_id);
        if (!data) {
          throw api_error("block not found: ID \"" + block_id +
                              "\", referenced in the job configuration (deleted? check the "
                              "deployment and the work pool's base job template)",
                          Hint::kJobTemplate);
        }
        return *data;
      }
    }
    json out = json::object();
    for (const auto& [key, value] : tmpl.items()) {
      out[key] = resolve_blocks(value, resolver);
    }
    return out;
  }
  if (tmpl.is_array()) {
    json out = json::array();
    for (const auto& value : tmpl) {
      out.push_back(resolve_blocks(value, resolver));
    }
    return out;
  }
  if (!tmpl.is_string()) {
    return tmpl;
  }
  const std::string text = tmpl.get<std::string>();
  auto placeholders = find_placeholders(text);
  if (std::none_of(placeholders.begin(), placeholders.end(),
                   [](const Placeholder& p) { return p.type == PlaceholderType::kBlock; })) {
    return tmpl;
  }
  if (placeholders.size() == 1 && placeholders.begin()->full_match == text) {
    return resolve_block(*placeholders.begin(), text, resolver);
  }
  std::string out = text;
  for (const auto& p : placeholders) {
    if (p.type != PlaceholderType::kBlock) {
      continue;
    }
    json value = resolve_block(p, text, resolver);
    if (value.is_object() || value.is_array()) {
      throw api_error("invalid template \"" + text + "\": block placeholder " + p.full_match +
                          " resolved to a " + (value.is_object() ? "dict" : "list") +
                          ", which cannot be used for inline string substitution (resolve a "
                          "scalar attribute instead, e.g. '.value' or '.url')",
                      Hint::kJobTemplate);
    }
    replace_all(out, p.full_match, python_str(value));
  }
  return json(out);
}

// resolve_variables(): prefect.variables placeholders; a missing variable
// is "".
class VariableCache {
 public:
  explicit VariableCache(TemplateResolver& resolver) : resolver_(resolver) {}
  std::optional<json> get(const std::string& placeholder_name) {
    std::string name = placeholder_name;
    replace_all(name, std::string(kVariablePrefix), "");
    auto it = cache_.find(name);
    if (it == cache_.end()) {
      it = cache_.emplace(name, resolver_.variable(name)).first;
    }
    return it->second;
  }

 private:
  TemplateResolver& resolver_;
  std::map<std::string, std::optional<json>> cache_;
};

json resolve_variables(const json& tmpl, VariableCache& variables) {
  if (tmpl.is_object()) {
    json out = json::object();
    for (const auto& [key, value] : tmpl.items()) {
      out[key] = resolve_variables(value, variables);
    }
    return out;
  }
  if (tmpl.is_array()) {
    json out = json::array();
    for (const auto& value : tmpl) {
      out.push_back(resolve_variables(value, variables));
    }
    return out;
  }
  if (!tmpl.is_string()) {
    return tmpl;
  }
  const std::string text = tmpl.get<std::string>();
  auto placeholders = find_placeholders(text);
  if (std::none_of(placeholders.begin(), placeholders.end(),
                   [](const Placeholder& p) { return p.type == PlaceholderType::kVariable; })) {
    return tmpl;
  }
  if (placeholders.size() == 1 && placeholders.begin()->full_match == text) {
    auto value = variables.get(placeholders.begin()->name);
    return value ? *value : json("");
  }
  std::string out = text;
  for (const auto& p : placeholders) {
    if (p.type == PlaceholderType::kVariable) {
      auto value = variables.get(p.name);
      replace_all(out, p.full_match, value ? python_str(*value) : "");
    }
  }
  return json(out);
}

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

namespace {

// Python's repr() of a str: single quotes unless the text has ' and no ".
std::string python_repr_str(const std::string& text) {
  const char quote =
      text.find('\'') != std::string::npos && text.find('"') == std::string::npos ? '"' : '\'';
  std::string out(1, quote);
  for (unsigned char c : text) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c == static_cast<unsigned char>(quote)) {
          out += '\\';
          out += static_cast<char>(c);
        } else if (c < 0x20 || c == 0x7f) {
          static const char* kHex = "0123456789abcdef";
          out += "\\x";
          out += kHex[c >> 4];
          out += kHex[c & 0xf];
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += quote;
  return out;
}

std::string python_repr(const json& value) {
  if (value.is_string()) {
    return python_repr_str(value.get<std::string>());
  }
  if (value.is_object()) {
    std::string out = "{";
    bool first = true;
    for (const auto& [key, item] : value.items()) {
      out += (first ? "" : ", ") + python_repr_str(key) + ": " + python_repr(item);
      first = false;
    }
    return out + "}";
  }
  if (value.is_array()) {
    std::string out = "[";
    bool first = true;
    for (const auto& item : value) {
      out += (first ? "" : ", ") + python_repr(item);
      first = false;
    }
    return out + "]";
  }
  return python_str(value);
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
  if (value.is_object() || value.is_array()) {
    return python_repr(value);
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
  VariableCache cache(resolver);
  return resolve_variables(populated, cache);
}

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
    std::string v = value.get<std::string>();
    std::transform(v.begin(), v.end(), v.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
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
