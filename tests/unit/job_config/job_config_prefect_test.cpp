// Mirrors Prefect 3.8's tests of BaseJobConfiguration.from_template_and_values
// and prefect.utilities.templating (tests/workers/test_base_worker.py,
// tests/utilities/test_templating.py), as listed in the protocol doc §12.

#include <catch2/catch.hpp>

#include "common/error.hpp"
#include "common/with_fix.hpp"
#include "job_config/command_split.hpp"
#include "job_config/default_template.hpp"
#include "job_config/job_config.hpp"

using namespace pc;
using nlohmann::json;
using pc::testing::with_fix;

namespace {

class Resolver : public TemplateResolver {
 public:
  std::map<std::string, std::string> envs;
  std::map<std::string, json> variables;
  std::map<std::string, json> blocks;  // "slug/name" -> data
  std::map<std::string, json> blocks_by_id;
  int variable_reads = 0;
  std::optional<std::string> env(const std::string& name) override {
    auto it = envs.find(name);
    return it == envs.end() ? std::nullopt : std::optional<std::string>(it->second);
  }
  std::optional<json> variable(const std::string& name) override {
    ++variable_reads;
    auto it = variables.find(name);
    return it == variables.end() ? std::nullopt : std::optional<json>(it->second);
  }
  std::optional<json> block(const std::string& slug, const std::string& name) override {
    auto it = blocks.find(slug + "/" + name);
    return it == blocks.end() ? std::nullopt : std::optional<json>(it->second);
  }
  std::optional<json> block_by_id(const std::string& id) override {
    auto it = blocks_by_id.find(id);
    return it == blocks_by_id.end() ? std::nullopt : std::optional<json>(it->second);
  }
};

json tmpl(const json& job_configuration, const json& properties) {
  return json{{"job_configuration", job_configuration},
              {"variables", {{"type", "object"}, {"properties", properties}}}};
}

}  // namespace

TEST_CASE("job config: from template and overrides", "[worker]") {
  Resolver r;
  json base = tmpl({{"command", "{{ command }}"}, {"env", "{{ env }}"}, {"name", "{{ name }}"}},
                   {{"command", {{"type", "string"}, {"default", "python my_flow.py"}}},
                    {"env", {{"type", "object"}}},
                    {"name", {{"type", "string"}}}});
  SECTION("defaults only") {
    CHECK(apply_job_template(base, json::object(), r) == json{{"command", "python my_flow.py"}});
  }
  SECTION("overrides") {
    json out = apply_job_template(
        base, json{{"command", "echo hi"}, {"env", {{"A", "1"}}}, {"name", "n"}}, r);
    CHECK(out == json{{"command", "echo hi"}, {"env", {{"A", "1"}}}, {"name", "n"}});
  }
}

TEST_CASE("job config: nested variables", "[worker]") {
  Resolver r;
  json base = tmpl({{"config", {{"var1", "{{ var1 }}"}, {"var2", "{{ var2 }}"}}}},
                   {{"var1", {{"type", "string"}, {"default", "default1"}}},
                    {"var2", {{"type", "integer"}, {"default", 2}}}});
  CHECK(apply_job_template(base, json{{"var1", "override"}}, r) ==
        json{{"config", {{"var1", "override"}, {"var2", 2}}}});
}

TEST_CASE("job config: hard-coded primitives are kept", "[worker]") {
  Resolver r;
  json base = tmpl({{"config", {{"var1", 1}, {"var2", 1.1}, {"var3", true}, {"var4", nullptr}}}},
                   json::object());
  CHECK(apply_job_template(base, json::object(), r) ==
        json{{"config", {{"var1", 1}, {"var2", 1.1}, {"var3", true}, {"var4", nullptr}}}});
}

TEST_CASE("job config: falsey values become unset", "[worker]") {
  Resolver r;
  json base = tmpl(
      {{"command", "{{ command }}"}, {"working_dir", "{{ working_dir }}"}, {"env", "{{ env }}"}},
      {{"command", {{"type", "string"}, {"default", ""}}},
       {"working_dir", {{"type", "string"}, {"default", ""}}},
       {"env", {{"type", "object"}, {"default", json::object()}}}});
  json out = apply_job_template(base, json::object(), r);
  auto job = to_process_job_config(out);
  CHECK_FALSE(job.command);
  CHECK_FALSE(job.working_dir);
  CHECK(job.env.empty());
  // An explicit null keeps its key (the model default applies).
  out = apply_job_template(base, json{{"command", nullptr}}, r);
  CHECK(out["command"].is_null());
  CHECK_FALSE(to_process_job_config(out).command);
}

TEST_CASE("job config: env merge is deep", "[worker]") {
  Resolver r;
  json base =
      tmpl({{"env", {{"POOL", "pool"}, {"SHARED", "pool"}}}},
           {{"env", {{"type", "object"}, {"default", {{"DEFAULT", "d"}, {"SHARED", "d"}}}}}});
  json vars = merge_job_variables(json{{"env", {{"DEPLOYMENT", "dep"}, {"RUN", "dep"}}}},
                                  json{{"env", {{"RUN", "run"}}}});
  CHECK(apply_job_template(base, vars, r)["env"] == json{{"POOL", "pool"},
                                                         {"SHARED", "d"},
                                                         {"DEFAULT", "d"},
                                                         {"DEPLOYMENT", "dep"},
                                                         {"RUN", "run"}});
  SECTION("a flow run env replaces a deployment's non-object env") {
    CHECK(merge_job_variables(json{{"env", "x"}}, json{{"env", {{"A", "1"}}}}) ==
          json{{"env", {{"A", "1"}}}});
  }
  SECTION("null job variables are empty") {
    CHECK(merge_job_variables(nullptr, nullptr) == json::object());
  }
}

TEST_CASE("job config: pool env with variable defaults", "[worker]") {
  Resolver r;
  SECTION("a templated env is replaced by the default, then merged with overrides") {
    json base = tmpl({{"env", "{{ env }}"}},
                     {{"env", {{"type", "object"}, {"default", {{"DEFAULT", "d"}}}}}});
    CHECK(apply_job_template(base, json{{"env", {{"X", "x"}}}}, r)["env"] ==
          json{{"DEFAULT", "d"}, {"X", "x"}});
  }
}

TEST_CASE("job config: dot-delimited keys", "[worker]") {
  Resolver r;
  json base = tmpl({{"env", "{{ env }}"}, {"config", "{{ config }}"}}, json::object());
  SECTION("expanded to nested objects") {
    json out = apply_job_template(
        base, json{{"env.FOO", "foo"}, {"env.BAR", "bar"}, {"config.a[b]", 1}}, r);
    CHECK(out == json{{"env", {{"FOO", "foo"}, {"BAR", "bar"}}}, {"config", {{"a", {{"b", 1}}}}}});
  }
  SECTION("the nested format takes precedence") {
    json out =
        apply_job_template(base, json{{"env.FOO", "dotted"}, {"env", {{"FOO", "nested"}}}}, r);
    CHECK(out["env"] == json{{"FOO", "nested"}});
  }
  SECTION("a plain non-object value replaces dotted ones") {
    CHECK(apply_job_template(base, json{{"env.FOO", "x"}, {"env", "plain"}}, r)["env"] == "plain");
  }
  SECTION("a dotted key through a non-object is an error") {
    CHECK_THROWS_WITH(apply_job_template(base, json{{"a", 1}, {"a.b.c", 2}, {"a.b", 3}}, r),
                      Catch::Contains("is already set to a value that is not an object"));
  }
}

TEST_CASE("job config: missing placeholders", "[worker]") {
  Resolver r;
  json base = tmpl({{"gone", "{{ nope }}"},
                    {"text", "a-{{ nope }}-b"},
                    {"list", json::array({"{{ nope }}", "keep"})},
                    {"nested", {{"gone", "{{ nope.deeper }}"}}}},
                   json::object());
  CHECK(apply_job_template(base, json::object(), r) ==
        json{{"text", "a--b"}, {"list", json::array({"keep"})}, {"nested", json::object()}});
}

TEST_CASE("job config: paths follow get_from_dict", "[worker]") {
  Resolver r;
  json base =
      tmpl({{"last", "{{ items[-1] }}"},
            {"char", "{{ word.0 }}"},
            {"digit_key", "{{ obj.0 }}"},
            {"nested", "{{ obj.list[1].k }}"},
            {"text", "{{ obj }} {{ items }} {{ flag }} {{ none }} {{ ratio }}"}},
           {{"items", {{"default", json::array({1, 2, 3})}}},
            {"word", {{"default", "abc"}}},
            {"obj", {{"default", {{"0", "zero"}, {"list", json::array({0, {{"k", "v"}}})}}}}},
            {"flag", {{"default", false}}},
            {"ratio", {{"default", 2.0}}}});
  json out = apply_job_template(base, json{{"none", nullptr}}, r);
  CHECK(out["last"] == 3);
  CHECK(out["char"] == "a");
  CHECK_FALSE(out.contains("digit_key"));  // dict[0] is a KeyError in Python
  CHECK(out["nested"] == "v");
  CHECK(out["text"] == "{'0': 'zero', 'list': [0, {'k': 'v'}]} [1, 2, 3] False None 2.0");
}

TEST_CASE("job config: environment placeholders", "[worker]") {
  Resolver r;
  r.envs["HOME"] = "/home/w";
  json base =
      tmpl({{"whole", "{{ $HOME }}"}, {"text", "{{ $HOME }}/x {{ $UNSET }}."}}, json::object());
  CHECK(apply_job_template(base, json::object(), r) ==
        json{{"whole", "/home/w"}, {"text", "/home/w/x ."}});
}

TEST_CASE("job config: blocks", "[worker]") {
  Resolver r;
  r.blocks["secret/token"] = {{"value", "s3cret"}};
  r.blocks["json/cfg"] = {{"value",
                           {{"key", {{"nested-key", "nested-value"}}},
                            {"list", json::array({{{"list-key", "list-value"}}, 1, 2})}}}};
  r.blocks["aws-credentials/creds"] = {{"aws_access_key_id", "AKIA"}, {"region_name", "eu"}};
  r.blocks["json/values"] = {{"value", {{"values", json::array({7})}}}};
  r.blocks_by_id["11111111-2222"] = {{"aws_access_key_id", "by-id"}};
  json base = tmpl({{"token", "{{ prefect.blocks.secret.token }}"},
                    {"whole_doc", "{{ prefect.blocks.aws-credentials.creds }}"},
                    {"key", "{{ prefect.blocks.json.cfg.value.key }}"},
                    {"nested", "{{ prefect.blocks.json.cfg.value.key.nested-key }}"},
                    {"listed", "{{ prefect.blocks.json.cfg.value.list[0].list-key }}"},
                    {"unwrapped", "{{ prefect.blocks.json.cfg.key.nested-key }}"},
                    {"values_key", "{{ prefect.blocks.json.values.values[0] }}"},
                    {"inline", "{{ prefect.blocks.secret.token }}/img:{{ tag }}"},
                    {"ref", {{"$ref", {{"block_document_id", "11111111-2222"}}}}}},
                   {{"tag", {{"default", "v1"}}}});
  json out = apply_job_template(base, json::object(), r);
  CHECK(out["token"] == "s3cret");
  CHECK(out["whole_doc"] == json{{"aws_access_key_id", "AKIA"}, {"region_name", "eu"}});
  CHECK(out["key"] == json{{"nested-key", "nested-value"}});
  CHECK(out["nested"] == "nested-value");
  CHECK(out["listed"] == "list-value");
  CHECK(out["unwrapped"] == "nested-value");
  CHECK(out["values_key"] == 7);
  CHECK(out["inline"] == "s3cret/img:v1");
  CHECK(out["ref"] == json{{"aws_access_key_id", "by-id"}});

  SECTION("errors name the block") {
    auto fails = [&r](const std::string& text) {
      return apply_job_template(tmpl({{"x", text}}, json::object()), json::object(), r);
    };
    CHECK_THROWS_WITH(fails("{{ prefect.blocks.secret.gone }}"),
                      Catch::StartsWith("block not found: \"gone\" of type \"secret\""));
    CHECK_THROWS_WITH(fails("{{ prefect.blocks.secret }}"),
                      Catch::StartsWith("invalid block placeholder format"));
    CHECK_THROWS_WITH(fails("{{ prefect.blocks.json.cfg.value.nope }}"),
                      Catch::Contains("could not resolve the keypath \"value.nope\""));
    CHECK_THROWS_WITH(fails("x {{ prefect.blocks.json.cfg.value.key }}"),
                      Catch::Contains("resolved to a dict"));
    CHECK_THROWS_WITH(apply_job_template(tmpl({{"x", {{"$ref", {{"block_document_id", "nope"}}}}}},
                                              json::object()),
                                         json::object(), r),
                      Catch::StartsWith("block not found: ID \"nope\""));
  }
}

TEST_CASE("job config: variables", "[worker]") {
  Resolver r;
  r.variables["region"] = "eu-west-1";
  r.variables["replicas"] = 4;
  r.variables["settings"] = {{"a", 1}};
  r.variables["list"] = json::array({"x", "y"});
  json base = tmpl({{"region", "{{ prefect.variables.region }}"},
                    {"replicas", "{{ prefect.variables.replicas }}"},
                    {"settings", "{{ prefect.variables.settings }}"},
                    {"text", "{{ prefect.variables.region }}/{{ prefect.variables.replicas }}"},
                    {"embedded_object", "s={{ prefect.variables.settings }}"},
                    {"missing", "{{ prefect.variables.nope }}"},
                    {"missing_text", "a{{ prefect.variables.nope }}b"},
                    {"in_list", json::array({"{{ prefect.variables.region }}",
                                             "{{ prefect.variables.list }}", "plain"})}},
                   json::object());
  json out = apply_job_template(base, json::object(), r);
  CHECK(out["region"] == "eu-west-1");
  CHECK(out["replicas"] == 4);
  CHECK(out["settings"] == json{{"a", 1}});
  CHECK(out["text"] == "eu-west-1/4");
  CHECK(out["embedded_object"] == "s={'a': 1}");
  CHECK(out["missing"] == "");
  CHECK(out["missing_text"] == "ab");
  CHECK(out["in_list"] == json::array({"eu-west-1", json::array({"x", "y"}), "plain"}));
  CHECK(r.variable_reads == 5);  // each name read once

  SECTION("hard-coded in the pool template, resolved after blocks") {
    Resolver r2;
    r2.variables["image"] = "img:1";
    r2.blocks["string/indirect"] = {{"value", "{{ prefect.variables.image }}"}};
    json b = tmpl({{"image", "{{ prefect.blocks.string.indirect }}"}}, json::object());
    CHECK(apply_job_template(b, json::object(), r2)["image"] == "img:1");
  }
}

TEST_CASE("job config: does not mutate the base job template", "[worker]") {
  Resolver r;
  json base = default_process_job_template();
  const json copy = base;
  apply_job_template(base, json{{"env.A", "1"}, {"command", "x"}}, r);
  CHECK(base == copy);
}

TEST_CASE("to_process_job_config validates like pydantic", "[worker]") {
  CHECK(to_process_job_config(json{{"stream_output", "no"}}).stream_output == false);
  CHECK(to_process_job_config(json{{"stream_output", "True"}}).stream_output == true);
  CHECK(to_process_job_config(json{{"stream_output", 0}}).stream_output == false);
  CHECK_THROWS_WITH(
      to_process_job_config(json{{"stream_output", "maybe"}}),
      Catch::StartsWith("job configuration: stream_output \"maybe\" is not a boolean"));
  CHECK_THROWS_WITH(to_process_job_config(json{{"command", json::array({"a"})}}),
                    Catch::StartsWith("job configuration: command [\"a\"] is not a string"));
  CHECK_THROWS_WITH(to_process_job_config(json{{"env", "A=1"}}),
                    Catch::StartsWith("job configuration: env \"A=1\" is not an object"));
  auto job = to_process_job_config(json{{"env", {{"N", 1}, {"B", true}, {"DROP", nullptr}}},
                                        {"labels", {{"l", "v"}}},
                                        {"name", "n"}});
  CHECK(job.env == std::map<std::string, std::string>{{"B", "True"}, {"N", "1"}});
  CHECK(job.labels == std::map<std::string, std::string>{{"l", "v"}});
  CHECK(job.name == "n");
}

TEST_CASE("split_command: more shell quoting", "[worker]") {
  using V = std::vector<std::string>;
  CHECK(split_command("a\tb\nc") == V{"a", "b", "c"});
  CHECK(split_command(R"('it'\''s')") == V{"it's"});
  CHECK(split_command(R"("a'b" 'a"b')") == V{"a'b", "a\"b"});
  CHECK(split_command(R"(a\\b "c\\d" 'e\\f')") == V{"a\\b", "c\\d", "e\\\\f"});
  CHECK(split_command(R"(x"y z"w)") == V{"xy zw"});
  CHECK(split_command("python -m prefect.engine # not a comment") ==
        V{"python", "-m", "prefect.engine", "#", "not", "a", "comment"});
  CHECK_THROWS_WITH(
      split_command("sh -c \"oops"),
      with_fix("job variable command \"sh -c \"oops\": has an unterminated double quote",
               Hint::kJobTemplate));
}
