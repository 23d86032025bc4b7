#pragma once
// A flow run's job configuration, computed as Prefect 3.8's workers do
// (BaseJobConfiguration.from_template_and_values and
// prefect.utilities.templating, see ../shared/docs/prefect-protocol.md §6):
//
//   1. job variables = deployment.job_variables, then flow_run.job_variables
//      key by key; `env` is merged key by key (flow-run values win);
//   2. variables = every non-null `default` of the pool's variables schema;
//      a default `env` is merged into (or replaces) job_configuration.env;
//   3. dot-delimited keys ("env.FOO") expand to nested objects, plain keys
//      win; variables.update(job variables); env merged again;
//   4. placeholders: "{{ name }}" alone keeps the value's JSON type, embedded
//      ones become text, a missing one drops its key (or becomes "" inside
//      text); "{{ $VAR }}" from the worker's environment; then
//      "{{ prefect.blocks.TYPE.NAME[.path] }}" and "{{ prefect.variables.NAME }}".

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
  // The block document's `data`.
  virtual std::optional<nlohmann::json> block(const std::string& type_slug,
                                              const std::string& name) = 0;
};

// Step 1.
nlohmann::json merge_job_variables(const nlohmann::json& deployment_vars,
                                   const nlohmann::json& flow_run_vars);

// Steps 2-4: the populated job_configuration object. Throws pc::Error(kApi)
// for a block placeholder that cannot be resolved (as Prefect fails the run).
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

ProcessJobConfig to_process_job_config(const nlohmann::json& populated);

// Python's str() of a JSON value, as Prefect's templating inserts it into
// text: true -> "True", null -> "None", strings unquoted.
std::string python_str(const nlohmann::json& value);

// The default base job template of a `process` work pool (Prefect 3.8.8).
const nlohmann::json& default_process_job_template();

}  // namespace pc
