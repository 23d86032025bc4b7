#include <algorithm>
#include <map>

#include "common/error.hpp"
#include "worker/templating.hpp"

namespace pc::templating {
namespace {

using json = nlohmann::json;

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

}  // namespace

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

json resolve_variables(const json& tmpl, TemplateResolver& resolver) {
  VariableCache cache(resolver);
  return resolve_variables(tmpl, cache);
}

}  // namespace pc::templating
