#pragma once
// Internal to the job configuration (job_config.hpp): Prefect's templating
// (prefect.utilities.templating) as the steps of apply_job_template use it.
//
//   template_values.cpp  placeholders, paths (get_from_dict), apply_values
//   template_refs.cpp    block documents and variables
//   python_str.cpp       Python's str()/repr() of JSON values

#include <optional>
#include <set>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "job_config/job_config.hpp"

namespace pc::templating {

constexpr std::string_view kBlockPrefix = "prefect.blocks.";
constexpr std::string_view kVariablePrefix = "prefect.variables.";

enum class PlaceholderType { kStandard, kBlock, kVariable, kEnv };

struct Placeholder {
  std::string full_match;
  std::string name;
  PlaceholderType type;
  bool operator<(const Placeholder& o) const { return full_match < o.full_match; }
};

// Prefect's PLACEHOLDER_CAPTURE_REGEX: {{\s*([\w\.\-\[\]$]+)\s*}}
std::set<Placeholder> find_placeholders(const std::string& text);

// Prefect's get_from_dict: "a.b[0].c" ("[" -> ".", "]" dropped, split on
// "."). Every key that int() accepts is used as an integer, so it indexes
// lists and strings (negative from the end) and never matches an object key.
std::optional<nlohmann::json> get_path(const nlohmann::json& root, const std::string& path);

// Every occurrence of `from` in `text` replaced by `to`.
void replace_all(std::string& text, const std::string& from, const std::string& to);

// apply_values(): placeholders of the job variables and "{{ $VAR }}" of the
// environment; nullopt is Prefect's NotSet (the key is dropped).
std::optional<nlohmann::json> apply_values(const nlohmann::json& tmpl, const nlohmann::json& values,
                                           TemplateResolver& resolver);

// resolve_block_document_references(): {"$ref": {"block_document_id": id}}
// objects and prefect.blocks placeholders. Other placeholders stay. Throws
// pc::Error(kApi) as apply_job_template says.
nlohmann::json resolve_blocks(const nlohmann::json& tmpl, TemplateResolver& resolver);

// resolve_variables(): prefect.variables placeholders, each variable read
// once per call; a missing variable is "".
nlohmann::json resolve_variables(const nlohmann::json& tmpl, TemplateResolver& resolver);

}  // namespace pc::templating
