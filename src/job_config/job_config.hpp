#pragma once
// A flow run's job configuration, computed as Prefect 3.8's workers do
// (BaseJobConfiguration.from_template_and_values and
// prefect.utilities.templating):
//
//   1. job variables = deployment.job_variables, then flow_run.job_variables
//      key by key; `env` is merged key by key (flow-run values win);
//   2. variables = every non-null `default` of the pool's variables schema;
//      a default `env` is merged into (or replaces) job_configuration.env;
//   3. dot-delimited keys ("env.FOO") expand to nested objects, plain keys
//      win; variables.update(job variables); env merged again;
//   4. placeholders: "{{ name }}" alone keeps the value's JSON type (null
//      included), embedded ones become Python's str() of the value, a
//      missing one drops its key or list item (or becomes "" inside text);
//      "{{ $VAR }}" from the worker's environment (text only);
//   5. then, over the whole tree, {"$ref": {"block_document_id": ...}} and
//      "{{ prefect.blocks.TYPE.NAME[.path] }}" (a block whose data is just
//      {"value": v} resolves to v), and after that
//      "{{ prefect.variables.NAME }}" (a missing variable is "").
//
// Paths ("a.b[0]") follow Prefect's get_from_dict, quirks included: a key
// that Python's int() accepts indexes lists and strings (negative from the
// end) and never matches an object key. Known difference: objects are
// rendered into text in key order, not insertion order.

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace pc {

// Where placeholders get their values from: the worker's environment and the
// Prefect API (variables, block documents).
class TemplateResolver {
 public:
  virtual ~TemplateResolver() = default;
  virtual std::optional<std::string> env(const std::string& name) = 0;
  virtual std::optional<nlohmann::json> variable(const std::string& name) = 0;
  // The block document's `data`; nullopt when there is no such block.
  virtual std::optional<nlohmann::json> block(const std::string& type_slug,
                                              const std::string& name) = 0;
  // The `data` of the block document with this id, for a
  // {"$ref": {"block_document_id": id}} object in the configuration.
  virtual std::optional<nlohmann::json> block_by_id(const std::string& id) = 0;
};

// Step 1.
nlohmann::json merge_job_variables(const nlohmann::json& deployment_vars,
                                   const nlohmann::json& flow_run_vars);

// Steps 2-5: the populated job_configuration object; `base_job_template` is
// not modified. Throws pc::Error(kApi), as Prefect fails the run, for a block
// that does not exist, a block keypath that does not resolve, a block object
// or list embedded in text, and a dotted key that crosses a non-object.
nlohmann::json apply_job_template(const nlohmann::json& base_job_template,
                                  const nlohmann::json& job_variables, TemplateResolver& resolver);

// The process worker's view of a populated configuration.
struct ProcessJobConfig {
  std::optional<std::string> command;      // nullopt/empty = `<python> -m prefect.engine`
  std::map<std::string, std::string> env;  // null values dropped
  std::optional<std::filesystem::path> working_dir;
  bool stream_output = true;
  std::map<std::string, std::string> labels;
  std::string name;
};

// As pydantic validates ProcessJobConfiguration: "" command or working_dir =
// unset; env values become str() and nulls are dropped; stream_output takes
// pydantic's lax booleans ("yes", "0", ...). Throws pc::Error(kApi) for a
// command or working_dir that is not a string, an env that is not an object,
// or a stream_output that is not a boolean.
ProcessJobConfig to_process_job_config(const nlohmann::json& populated);

// Python's str() of a JSON value, as Prefect's templating inserts it into
// text: true -> "True", null -> "None", strings unquoted.
std::string python_str(const nlohmann::json& value);

}  // namespace pc
