#include "cli/on_demand_spec.hpp"

#include <cctype>
#include <cinttypes>
#include <cstdint>
#include <cstdio>

#include "common/error.hpp"

namespace pc {
namespace {

// Kubernetes appends 5 characters to generateName; a Job's name also becomes
// its pods' job-name label, at most 63 characters.
constexpr std::size_t kGenerateNamePrefixMax = 57;

Error bad_value(const std::string& flag, const std::string& problem) {
  return usage_error("on-demand " + flag + ": " + problem, Hint::kConfigValue);
}

std::string require(const std::string& flag, const std::string& value) {
  if (value.empty()) {
    throw bad_value(flag, "missing (required for this platform)");
  }
  return value;
}

// An http(s) URL without a trailing slash.
std::string http_url(const std::string& flag, const std::string& value) {
  require(flag, value);
  if (value.rfind("https://", 0) != 0 && value.rfind("http://", 0) != 0) {
    throw bad_value(flag, "\"" + value + "\" is not an http(s) URL (expected https://host[:port])");
  }
  std::string url = value;
  while (!url.empty() && url.back() == '/') {
    url.pop_back();
  }
  return url;
}

std::string fnv1a_hex(const std::string& text) {
  std::uint64_t hash = 1469598103934665603ULL;
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 1099511628211ULL;
  }
  char buffer[17];
  std::snprintf(buffer, sizeof(buffer), "%016" PRIx64, hash);
  return buffer;
}

std::string k8s_namespace(const OnDemandOptions& options) {
  if (!options.k8s_namespace.empty()) {
    return options.k8s_namespace;
  }
  const auto& meta = options.k8s_cronjob.value("metadata", nlohmann::json::object());
  std::string ns = meta.is_object() ? meta.value("namespace", "") : "";
  return ns.empty() ? "default" : ns;
}

}  // namespace

nlohmann::json job_from_cronjob(const nlohmann::json& cronjob) {
  const std::string flag = "--k8s-cronjob-file";
  if (!cronjob.is_object() || cronjob.value("apiVersion", "") != "batch/v1" ||
      cronjob.value("kind", "") != "CronJob") {
    throw bad_value(flag,
                    "the document is not a batch/v1 CronJob (write it with kubectl get cronjob "
                    "NAME -o json)");
  }
  const nlohmann::json meta = cronjob.value("metadata", nlohmann::json::object());
  const std::string name = meta.is_object() ? meta.value("name", "") : "";
  const auto spec = cronjob.value("spec", nlohmann::json::object());
  if (name.empty() || !spec.is_object() || !spec.contains("jobTemplate") ||
      !spec["jobTemplate"].is_object() || !spec["jobTemplate"].contains("spec")) {
    throw bad_value(flag, "the CronJob has no metadata.name or no spec.jobTemplate.spec");
  }
  const nlohmann::json& job_template = spec["jobTemplate"];
  const nlohmann::json template_meta = job_template.value("metadata", nlohmann::json::object());

  nlohmann::json annotations = {{"cronjob.kubernetes.io/instantiate", "manual"}};
  if (template_meta.contains("annotations") && template_meta["annotations"].is_object()) {
    annotations.update(template_meta["annotations"]);
  }
  nlohmann::json job_meta = {
      {"generateName", name.substr(0, kGenerateNamePrefixMax - 1) + "-"},
      {"annotations", annotations},
  };
  if (template_meta.contains("labels") && template_meta["labels"].is_object()) {
    job_meta["labels"] = template_meta["labels"];
  }
  if (meta.contains("uid") && meta["uid"].is_string()) {
    job_meta["ownerReferences"] = nlohmann::json::array({{{"apiVersion", "batch/v1"},
                                                          {"kind", "CronJob"},
                                                          {"name", name},
                                                          {"uid", meta["uid"]},
                                                          {"controller", true}}});
  }
  return {{"apiVersion", "batch/v1"},
          {"kind", "Job"},
          {"metadata", job_meta},
          {"spec", job_template["spec"]}};
}

PlatformRequest platform_request(const OnDemandOptions& options) {
  PlatformRequest request;
  if (options.platform == Platform::kRailway) {
    const std::string id =
        require("--railway-service-instance-id", options.railway_service_instance_id);
    request.url = http_url("--railway-api-url", options.railway_api_url);
    nlohmann::json body = {{"query",
                            "mutation($id: String!) { deploymentInstanceExecutionCreate(input: "
                            "{serviceInstanceId: $id}) }"},
                           {"variables", {{"id", id}}}};
    request.payload = body.dump();
    return request;
  }
  const std::string server = http_url("--k8s-api-server", options.k8s_api_server);
  if (options.k8s_cronjob.is_null()) {
    throw bad_value("--k8s-cronjob-file", "missing (required for this platform)");
  }
  nlohmann::json job = job_from_cronjob(options.k8s_cronjob);
  request.url = server + "/apis/batch/v1/namespaces/" + k8s_namespace(options) + "/jobs";
  request.payload = job.dump();
  request.verify_tls = !options.k8s_skip_tls_verify;
  return request;
}

std::string jinja_literal(const std::string& text) {
  bool has_delimiter = false;
  for (const char* delimiter : {"{{", "{%", "{#"}) {
    if (text.find(delimiter) != std::string::npos) {
      has_delimiter = true;
    }
  }
  if (!has_delimiter) {
    return text;
  }
  if (text.find("endraw") != std::string::npos) {
    throw usage_error(
        "on-demand: the request body holds both a Jinja delimiter and \"endraw\"; Prefect would "
        "not send it unchanged",
        Hint::kConfigValue);
  }
  return "{% raw %}" + text + "{% endraw %}";
}

nlohmann::json webhook_block_data(const OnDemandOptions& options, const PlatformRequest& request) {
  if (options.token.empty()) {
    throw usage_error(std::string(kPlatformTokenVariable) +
                          ": missing (the platform's API token: a Railway account or workspace "
                          "token, or a Kubernetes service-account token)",
                      Hint::kConfigValue);
  }
  return {{"method", "POST"},
          {"url", request.url},
          {"headers",
           {{"Authorization", "Bearer " + options.token}, {"Content-Type", "application/json"}}},
          {"allow_private_urls", true},
          {"verify", request.verify_tls}};
}

std::string on_demand_block_name(const std::string& pool) {
  // Block names are slugs: lower-case letters, digits and dashes.
  std::string name = "prefect-cycle-on-demand-";
  for (unsigned char c : pool) {
    name += std::isalnum(c) != 0 ? static_cast<char>(std::tolower(c)) : '-';
  }
  return name;
}

std::string on_demand_automation_name(const std::string& pool) {
  return "prefect-cycle on-demand: " + pool;
}

nlohmann::json automation_body(const OnDemandOptions& options, const PlatformRequest& request,
                               const std::string& block_id) {
  nlohmann::json trigger = {
      {"type", "event"},
      {"posture", "Reactive"},
      {"match", {{"prefect.resource.id", "prefect.flow-run.*"}}},
      {"match_related",
       {{"prefect.resource.role", "work-pool"},
        {"prefect.resource.id", "prefect.work-pool." + options.pool_id}}},
      {"expect", {kScheduledEvent, kLateEvent}},
      {"for_each", nlohmann::json::array()},
      {"threshold", 1},
      {"within", options.debounce.count()},
  };
  nlohmann::json action = {{"type", "call-webhook"},
                           {"block_document_id", block_id},
                           {"payload", jinja_literal(request.payload)}};
  nlohmann::json body = {{"name", on_demand_automation_name(options.pool)},
                         {"enabled", true},
                         {"trigger", trigger},
                         {"actions", nlohmann::json::array({action})}};
  const std::string platform =
      options.platform == Platform::kRailway ? "Railway service instance" : "Kubernetes CronJob";
  body["description"] = "Made by `prefect-cycle on-demand`: starts a cycle (" + platform +
                        ") when a run is scheduled or late in work pool \"" + options.pool +
                        "\". [spec " + fnv1a_hex(body.dump()) + "]";
  return body;
}

std::string spec_of(const nlohmann::json& automation) {
  const std::string description =
      automation.is_object() ? automation.value("description", "") : std::string();
  const std::string marker = "[spec ";
  auto at = description.rfind(marker);
  if (at == std::string::npos) {
    return "";
  }
  auto end = description.find(']', at);
  return end == std::string::npos
             ? ""
             : description.substr(at + marker.size(), end - at - marker.size());
}

}  // namespace pc
