#pragma once
// What `prefect-cycle on-demand` puts on the Prefect server, as pure
// functions of its options: the request that starts a cycle on the platform,
// the Webhook block that sends it (URL and headers stored as secrets) and the
// automation that calls the block when a run is scheduled in the pool.
// on_demand.cpp reads the server and applies the difference.

#include <chrono>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace pc {

enum class Platform { kRailway, kKubernetes };

// Railway's public GraphQL endpoint (railwayapp/cli, Configs::get_backboard).
inline constexpr std::string_view kRailwayApiUrl = "https://backboard.railway.com/graphql/v2";
// The variable that holds the platform's token (never a flag: a flag's value
// shows in `ps` and in shell history).
inline constexpr std::string_view kPlatformTokenVariable = "PREFECT_CYCLE_PLATFORM_TOKEN";
// The states whose events start a cycle: a run scheduled by hand or by an
// API call, and a run the server marks Late because nothing started it.
inline constexpr std::string_view kScheduledEvent = "prefect.flow-run.Scheduled";
inline constexpr std::string_view kLateEvent = "prefect.flow-run.Late";

struct OnDemandOptions {
  Platform platform = Platform::kRailway;
  std::string pool;     // the work pool's name
  std::string pool_id;  // its id (read from the server)
  std::string railway_service_instance_id;
  std::string railway_api_url = std::string(kRailwayApiUrl);
  std::string k8s_api_server;  // https://host:port, no trailing slash
  std::string k8s_namespace;   // empty: the CronJob's own, else "default"
  nlohmann::json k8s_cronjob;  // `kubectl get cronjob NAME -o json`
  bool k8s_skip_tls_verify = false;
  // Events within this time after a firing start no second cycle.
  std::chrono::seconds debounce{10};
  std::string token;  // PREFECT_CYCLE_PLATFORM_TOKEN; a secret
};

// The request the automation sends: POST `url` with `payload` (JSON text).
struct PlatformRequest {
  std::string url;
  std::string payload;
  bool verify_tls = true;
};

// Railway: deploymentInstanceExecutionCreate for the service instance.
// Kubernetes: a Job built from the CronJob, POSTed to the batch API.
// Throws pc::Error(kUsage) naming the flag of a missing or bad value.
PlatformRequest platform_request(const OnDemandOptions& options);

// The Job `kubectl create job --from=cronjob/NAME` makes from the CronJob's
// jobTemplate (metadata.generateName instead of a name: every request makes
// a new Job; the instantiate=manual annotation; the CronJob as controlling
// owner when the document has its uid). Throws pc::Error(kUsage) when the
// document is not a batch/v1 CronJob with a jobTemplate.
nlohmann::json job_from_cronjob(const nlohmann::json& cronjob);

// `text` as a Jinja template that renders to itself (Prefect renders a
// webhook's payload with Jinja): wrapped in {% raw %} when it holds a
// template delimiter.
std::string jinja_literal(const std::string& text);

// The Webhook block's data: method, URL, headers (Authorization: Bearer
// token, Content-Type), allow_private_urls, verify.
nlohmann::json webhook_block_data(const OnDemandOptions& options, const PlatformRequest& request);

// The block's and the automation's names for a pool ("etl" ->
// "prefect-cycle-on-demand-etl", "prefect-cycle on-demand: etl").
std::string on_demand_block_name(const std::string& pool);
std::string on_demand_automation_name(const std::string& pool);

// The AutomationCreate body: a reactive event trigger on the two events for
// runs related to the pool (by id), threshold 1 within `debounce`, and one
// call-webhook action with the request's payload. Its description ends in
// "[spec <hex>]", a fingerprint of everything else, by which a second run of
// the command sees that nothing changed.
nlohmann::json automation_body(const OnDemandOptions& options, const PlatformRequest& request,
                               const std::string& block_id);
// The fingerprint in an automation's description ("" when there is none).
std::string spec_of(const nlohmann::json& automation);

}  // namespace pc
