#include <cctype>
#include <regex>

#include "common/error.hpp"
#include "job_config/templating.hpp"

namespace pc::templating {
namespace {

using json = nlohmann::json;

PlaceholderType type_of(const std::string& name) {
  if (name.rfind(kBlockPrefix, 0) == 0)
    return PlaceholderType::kBlock;
  if (name.rfind(kVariablePrefix, 0) == 0)
    return PlaceholderType::kVariable;
  if (!name.empty() && name[0] == '$')
    return PlaceholderType::kEnv;
  return PlaceholderType::kStandard;
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

}  // namespace

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

}  // namespace pc::templating
