#include "job_config/job_config.hpp"
#include "job_config/default_template.hpp"

#include <catch2/catch.hpp>

#include "common/error.hpp"
#include "common/with_fix.hpp"
#include "job_config/command_split.hpp"

using namespace pc;
using nlohmann::json;
using pc::testing::with_fix;

namespace {

class FakeResolver : public TemplateResolver {
 public:
  std::map<std::string, std::string> envs;
  std::map<std::string, json> variables;
  std::map<std::string, json> blocks;  // "slug/name" -> data
  std::optional<std::string> env(const std::string& name) override {
    auto it = envs.find(name);
    return it == envs.end() ? std::nullopt : std::optional<std::string>(it->second);
  }
  std::optional<json> variable(const std::string& name) override {
    ++variable_reads;
    auto it = variables.find(name);
    return it == variables.end() ? std::nullopt : std::optional<json>(it->second);
  }
  std::map<std::string, json> blocks_by_id;
  int variable_reads = 0;
  std::optional<json> block(const std::string& slug, const std::string& name) override {
    auto it = blocks.find(slug + "/" + name);
    return it == blocks.end() ? std::nullopt : std::optional<json>(it->second);
  }
  std::optional<json> block_by_id(const std::string& id) override {
    auto it = blocks_by_id.find(id);
    return it == blocks_by_id.end() ? std::nullopt : std::optional<json>(it->second);
  }
};

json template_of(const json& job_configuration, const json& properties) {
  return json{{"job_configuration", job_configuration},
              {"variables", {{"type", "object"}, {"properties", properties}}}};
}

}  // namespace

TEST_CASE("job config: default process template with no variables", "[worker]") {
  FakeResolver r;
  json populated = apply_job_template(default_process_job_template(), json::object(), r);
  // null defaults are dropped, so only stream_output (default true) remains.
  CHECK(populated == json{{"stream_output", true}});
  auto job = to_process_job_config(populated);
  CHECK_FALSE(job.command);
  CHECK(job.env.empty());
  CHECK_FALSE(job.working_dir);
  CHECK(job.stream_output);
}

TEST_CASE("job config: deployment and flow run variables, env merged key by key", "[worker]") {
  json deployment = {{"env", {{"A", "dep"}, {"B", "dep"}}}, {"command", "echo dep"}};
  json run = {{"env", {{"B", "run"}, {"C", "run"}}}, {"working_dir", "/tmp"}};
  json merged = merge_job_variables(deployment, run);
  CHECK(merged == json{{"env", {{"A", "dep"}, {"B", "run"}, {"C", "run"}}},
                       {"command", "echo dep"},
                       {"working_dir", "/tmp"}});
  FakeResolver r;
  auto job = to_process_job_config(apply_job_template(default_process_job_template(), merged, r));
  CHECK(job.command == std::optional<std::string>("echo dep"));
  CHECK(job.env == std::map<std::string, std::string>{{"A", "dep"}, {"B", "run"}, {"C", "run"}});
  CHECK(job.working_dir == std::filesystem::path("/tmp"));
}

TEST_CASE("job config: whole placeholders keep types, embedded become text", "[worker]") {
  FakeResolver r;
  json tmpl = template_of({{"count", "{{ n }}"},
                           {"flag", "{{ on }}"},
                           {"text", "n={{ n }} on={{ on }} none={{ missing }}"},
                           {"nested", {{"deep", "{{ obj.a.b }}"}, {"item", "{{ list[1] }}"}}},
                           {"gone", "{{ missing }}"},
                           {"list", json::array({"{{ n }}", "{{ missing }}", "x"})},
                           {"literal", 7}},
                          {{"n", {{"type", "integer"}, {"default", 3}}},
                           {"on", {{"type", "boolean"}, {"default", true}}},
                           {"obj", {{"default", {{"a", {{"b", "deep-value"}}}}}}},
                           {"list", {{"default", json::array({"zero", "one"})}}},
                           {"missing", {{"default", nullptr}}}});
  json out = apply_job_template(tmpl, json::object(), r);
  CHECK(out["count"] == 3);
  CHECK(out["flag"] == true);
  CHECK(out["text"] == "n=3 on=True none=");
  CHECK(out["nested"]["deep"] == "deep-value");
  CHECK(out["nested"]["item"] == "one");
  CHECK_FALSE(out.contains("gone"));
  CHECK(out["list"] == json::array({3, "x"}));
  CHECK(out["literal"] == 7);
  // The base template is not modified.
  CHECK(tmpl["job_configuration"]["gone"] == "{{ missing }}");
}

TEST_CASE("job config: hard-coded primitives and env defaults", "[worker]") {
  FakeResolver r;
  json tmpl = template_of({{"env", {{"FIXED", "1"}}}, {"stream_output", false}},
                          {{"env", {{"type", "object"}, {"default", {{"FROM_DEFAULT", "d"}}}}}});
  json out = apply_job_template(tmpl, json{{"env", {{"FROM_DEPLOYMENT", "x"}}}}, r);
  CHECK(out["env"] == json{{"FIXED", "1"}, {"FROM_DEFAULT", "d"}, {"FROM_DEPLOYMENT", "x"}});
  CHECK(out["stream_output"] == false);
}

TEST_CASE("job config: dot-delimited keys, nested format wins", "[worker]") {
  FakeResolver r;
  json vars = {{"env.FOO", "dotted"}, {"env.BAR", "dotted"}, {"env", {{"BAR", "nested"}}}};
  auto job = to_process_job_config(apply_job_template(default_process_job_template(), vars, r));
  CHECK(job.env == std::map<std::string, std::string>{{"BAR", "nested"}, {"FOO", "dotted"}});
}

TEST_CASE("job config: $ENV, prefect.variables and prefect.blocks", "[worker]") {
  FakeResolver r;
  r.envs["HOME"] = "/home/w";
  r.variables["region"] = "eu-west-1";
  r.variables["replicas"] = 4;
  r.blocks["secret/token"] = {{"value", "s3cret"}};
  r.blocks["json/cfg"] = {{"value", {{"url", "https://x"}, {"list", json::array({{{"k", "v"}}})}}}};
  json tmpl = template_of({{"home", "{{ $HOME }}/data"},
                           {"region", "{{ prefect.variables.region }}"},
                           {"replicas", "{{ prefect.variables.replicas }}"},
                           {"label", "r-{{ prefect.variables.region }}"},
                           {"unknown", "{{ prefect.variables.nope }}"},
                           {"token", "{{ prefect.blocks.secret.token }}"},
                           {"url", "{{ prefect.blocks.json.cfg.url }}"},
                           {"item", "{{ prefect.blocks.json.cfg.list[0].k }}"},
                           {"image", "{{ prefect.blocks.secret.token }}/img"}},
                          json::object());
  json out = apply_job_template(tmpl, json::object(), r);
  CHECK(out["home"] == "/home/w/data");
  CHECK(out["region"] == "eu-west-1");
  CHECK(out["replicas"] == 4);
  CHECK(out["label"] == "r-eu-west-1");
  CHECK(out["unknown"] == "");
  CHECK(out["token"] == "s3cret");
  CHECK(out["url"] == "https://x");
  CHECK(out["item"] == "v");
  CHECK(out["image"] == "s3cret/img");

  json missing = template_of({{"x", "{{ prefect.blocks.secret.gone }}"}}, json::object());
  CHECK_THROWS_WITH(apply_job_template(missing, json::object(), r),
                    Catch::Contains("block not found: \"gone\" of type \"secret\""));
  json embedded_object = template_of({{"x", "a {{ prefect.blocks.json.cfg }}"}}, json::object());
  CHECK_THROWS_WITH(apply_job_template(embedded_object, json::object(), r),
                    Catch::Contains("cannot be used for inline string substitution"));
}

TEST_CASE("python_str matches Python's str()", "[worker]") {
  CHECK(python_str(true) == "True");
  CHECK(python_str(false) == "False");
  CHECK(python_str(nullptr) == "None");
  CHECK(python_str(3) == "3");
  CHECK(python_str(2.0) == "2.0");
  CHECK(python_str("text") == "text");
}

TEST_CASE("split_command follows shell quoting", "[worker]") {
  using V = std::vector<std::string>;
  CHECK(split_command("python -m prefect.engine") == V{"python", "-m", "prefect.engine"});
  CHECK(split_command("  sh  -c 'echo a  b; exit 3'  ") == V{"sh", "-c", "echo a  b; exit 3"});
  CHECK(split_command(R"(echo "a \"q\" \$x \n" c\ d)") == V{"echo", R"(a "q" \$x \n)", "c d"});
  CHECK(split_command(R"(a''b "" c)") == V{"ab", "", "c"});
  CHECK(split_command("") == V{});
  CHECK_THROWS_WITH(
      split_command("echo 'open"),
      with_fix("job variable command \"echo 'open\": has an unterminated single quote",
               Hint::kJobTemplate));
  CHECK_THROWS_WITH(
      split_command("echo \\"),
      with_fix("job variable command \"echo \\\": ends with a backslash", Hint::kJobTemplate));
}

TEST_CASE("job config: a base job template that is not an object is an error", "[worker]") {
  // Found by fuzz_job_config: it used to throw nlohmann's type_error.
  FakeResolver r;
  CHECK_THROWS_WITH(apply_job_template(json(7777), json::object(), r),
                    with_fix("the work pool's base job template is not a JSON object but number",
                             Hint::kJobTemplate));
  CHECK_THROWS_AS(apply_job_template(json::array(), json::object(), r), pc::Error);
}

TEST_CASE("job config: an env placeholder without a name is empty", "[worker]") {
  // Found by fuzz_job_config: "{{ $ }}" made substr(npos) throw.
  FakeResolver r;
  r.envs["HOME"] = "/home/x";
  json out = apply_job_template(template_of({{"command", "a{{ $ }}b{{ $HOME }}"}}, json::object()),
                                json::object(), r);
  CHECK(out["command"] == "ab/home/x");
}
