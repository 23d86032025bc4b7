// libFuzzer target: job variables merged into a base job template and
// templated as Prefect does, then read as a process job configuration. The
// input is a JSON object {"base_job_template": ..., "deployment": ...,
// "flow_run": ...} (the corpus is built from real pools and deployments). Each
// step either succeeds or throws pc::Error.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "common/error.hpp"
#include "job_config/job_config.hpp"

namespace {

using nlohmann::json;

// Answers every lookup from the input's "resolver" object, so the fuzzer
// controls environment variables, Prefect variables and block documents.
class InputResolver : public pc::TemplateResolver {
 public:
  explicit InputResolver(const json& data) : data_(data.is_object() ? data : json::object()) {}

  std::optional<std::string> env(const std::string& name) override {
    auto value = lookup("env", name);
    if (value && value->is_string()) {
      return value->get<std::string>();
    }
    return std::nullopt;
  }
  std::optional<json> variable(const std::string& name) override {
    return lookup("variables", name);
  }
  std::optional<json> block(const std::string& type_slug, const std::string& name) override {
    return lookup("blocks", type_slug + "/" + name);
  }
  std::optional<json> block_by_id(const std::string& id) override { return lookup("blocks", id); }

 private:
  std::optional<json> lookup(const char* section, const std::string& key) const {
    auto s = data_.find(section);
    if (s == data_.end() || !s->is_object()) {
      return std::nullopt;
    }
    auto v = s->find(key);
    if (v == s->end()) {
      return std::nullopt;
    }
    return *v;
  }
  json data_;
};

json member(const json& j, const char* key) {
  auto it = j.find(key);
  return it == j.end() ? json::object() : *it;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto input = json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (input.is_discarded() || !input.is_object()) {
    return 0;
  }
  InputResolver resolver(member(input, "resolver"));
  try {
    json variables =
        pc::merge_job_variables(member(input, "deployment"), member(input, "flow_run"));
    json populated =
        pc::apply_job_template(member(input, "base_job_template"), variables, resolver);
    pc::to_process_job_config(populated);
  } catch (const pc::Error&) {
  }
  return 0;
}
