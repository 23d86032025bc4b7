#include <algorithm>
#include <map>
#include <optional>

#include "common/error.hpp"
#include "job_config/templating.hpp"

namespace pc::templating {
namespace {

using json = nlohmann::json;

// `tmpl` with each string that holds a placeholder of `type` replaced:
// the value of a string that is one placeholder (`whole`), or the text with
// each such placeholder substituted (`inline_value`, a Python str()).
// `on_object` may replace an object before it is walked (a block $ref).
template <typename Whole, typename Inline, typename OnObject>
json substitute(const json& tmpl, PlaceholderType type, const Whole& whole,
                const Inline& inline_value, const OnObject& on_object) {
  if (tmpl.is_object()) {
    if (std::optional<json> replaced = on_object(tmpl)) {
      return *replaced;
    }
    json out = json::object();
    for (const auto& [key, value] : tmpl.items()) {
      out[key] = substitute(value, type, whole, inline_value, on_object);
    }
    return out;
  }
  if (tmpl.is_array()) {
    json out = json::array();
    for (const auto& value : tmpl) {
      out.push_back(substitute(value, type, whole, inline_value, on_object));
    }
    return out;
  }
  if (!tmpl.is_string()) {
    return tmpl;
  }
  const std::string text = tmpl.get<std::string>();
  auto placeholders = find_placeholders(text);
  if (std::none_of(placeholders.begin(), placeholders.end(),
                   [type](const Placeholder& p) { return p.type == type; })) {
    return tmpl;
  }
  if (placeholders.size() == 1 && placeholders.begin()->full_match == text) {
    return whole(*placeholders.begin(), text);
  }
  std::string out = text;
  for (const auto& p : placeholders) {
    if (p.type == type) {
      replace_all(out, p.full_match, inline_value(p, text));
    }
  }
  return json(out);
}

const auto kNoObjectRule = [](const json&) { return std::optional<json>(); };

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
  return substitute(
      tmpl, PlaceholderType::kVariable,
      [&variables](const Placeholder& p, const std::string&) {
        auto value = variables.get(p.name);
        return value ? *value : json("");
      },
      [&variables](const Placeholder& p, const std::string&) {
        auto value = variables.get(p.name);
        return value ? python_str(*value) : std::string();
      },
      kNoObjectRule);
}

}  // namespace

json resolve_blocks(const json& tmpl, TemplateResolver& resolver) {
  return substitute(
      tmpl, PlaceholderType::kBlock,
      [&resolver](const Placeholder& p, const std::string& text) {
        return resolve_block(p, text, resolver);
      },
      [&resolver](const Placeholder& p, const std::string& text) {
        json value = resolve_block(p, text, resolver);
        if (value.is_object() || value.is_array()) {
          throw api_error("invalid template \"" + text + "\": block placeholder " + p.full_match +
                              " resolved to a " + (value.is_object() ? "dict" : "list") +
                              ", which cannot be used for inline string substitution (resolve "
                              "a scalar attribute instead, e.g. '.value' or '.url')",
                          Hint::kJobTemplate);
        }
        return python_str(value);
      },
      // {"$ref": {"block_document_id": ...}} is the block document's data.
      [&resolver](const json& object) -> std::optional<json> {
        auto ref = object.find("$ref");
        if (ref == object.end() || !ref->is_object()) {
          return std::nullopt;
        }
        auto id = ref->find("block_document_id");
        if (id == ref->end() || id->is_null() ||
            (id->is_string() && id->get<std::string>().empty())) {
          return std::nullopt;
        }
        const std::string block_id = id->is_string() ? id->get<std::string>() : id->dump();
        auto data = resolver.block_by_id(block_id);
        if (!data) {
          throw api_error("block not found: ID \"" + block_id +
                              "\", referenced in the job configuration (deleted? check the "
                              "deployment and the work pool's base job template)",
                          Hint::kJobTemplate);
        }
        return *data;
      });
}

json resolve_variables(const json& tmpl, TemplateResolver& resolver) {
  VariableCache cache(resolver);
  return resolve_variables(tmpl, cache);
}

}  // namespace pc::templating
