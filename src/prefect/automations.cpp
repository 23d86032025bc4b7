#include "prefect/automations.hpp"

#include "common/error.hpp"

namespace pc {
namespace {

std::string id_of(const ApiResponse& response, const std::string& what) {
  if (!response.body.is_object() || !response.body.contains("id") ||
      !response.body["id"].is_string()) {
    throw api_error("the server's answer to creating " + what + " has no id", Hint::kApiAnswer);
  }
  return response.body["id"].get<std::string>();
}

}  // namespace

std::optional<nlohmann::json> AutomationsClient::find_automation(const std::string& name) {
  nlohmann::json body = {{"automations", {{"name", {{"any_", {name}}}}}}, {"limit", 1}};
  ApiResponse response = api_.request("POST", "/automations/filter", body);
  if (response.status == 404) {
    throw api_error("the server at " + api_.base_url() +
                        " has no automations API (POST /automations/filter answered 404)",
                    Hint::kApiAnswer);
  }
  if (!response.body.is_array() || response.body.empty()) {
    return std::nullopt;
  }
  return response.body.front();
}

std::string AutomationsClient::create_automation(const nlohmann::json& body) {
  return id_of(api_.request("POST", "/automations/", body),
               "automation \"" + body.value("name", "") + "\"");
}

void AutomationsClient::replace_automation(const std::string& id, const nlohmann::json& body) {
  ApiResponse response = api_.request("PUT", "/automations/" + url_encode_segment(id), body);
  if (response.status == 404) {
    throw api_error("automation " + id + " disappeared while it was being updated", Hint::kApiGone);
  }
}

void AutomationsClient::delete_automation(const std::string& id) {
  api_.request("DELETE", "/automations/" + url_encode_segment(id));
}

std::optional<std::string> AutomationsClient::block_type_id(const std::string& slug) {
  ApiResponse response = api_.request("GET", "/block_types/slug/" + url_encode_segment(slug));
  if (response.status == 404) {
    return std::nullopt;
  }
  return id_of(response, "block type " + slug);
}

std::string AutomationsClient::block_schema_id(const std::string& block_type_id) {
  nlohmann::json body = {{"block_schemas", {{"block_type_id", {{"any_", {block_type_id}}}}}},
                         {"limit", 1}};
  ApiResponse response = api_.request("POST", "/block_schemas/filter", body);
  if (!response.body.is_array() || response.body.empty()) {
    throw api_error("block type " + block_type_id + " has no block schema on the server",
                    Hint::kApiAnswer);
  }
  return id_of(ApiResponse{response.status, response.body.front()}, "block schema");
}

std::optional<nlohmann::json> AutomationsClient::find_block(const std::string& slug,
                                                            const std::string& name) {
  ApiResponse response = api_.request(
      "GET", "/block_types/slug/" + url_encode_segment(slug) + "/block_documents/name/" +
                 url_encode_segment(name) + "?include_secrets=true");
  if (response.status == 404) {
    return std::nullopt;
  }
  return response.body;
}

std::string AutomationsClient::create_block(const std::string& name,
                                            const std::string& block_type_id,
                                            const std::string& block_schema_id,
                                            const nlohmann::json& data) {
  nlohmann::json body = {{"name", name},
                         {"block_type_id", block_type_id},
                         {"block_schema_id", block_schema_id},
                         {"data", data}};
  return id_of(api_.request("POST", "/block_documents/", body), "block \"" + name + "\"");
}

void AutomationsClient::replace_block_data(const std::string& id, const nlohmann::json& data) {
  nlohmann::json body = {{"data", data}, {"merge_existing_data", false}};
  ApiResponse response = api_.request("PATCH", "/block_documents/" + url_encode_segment(id), body);
  if (response.status == 404) {
    throw api_error("block document " + id + " disappeared while it was being updated",
                    Hint::kApiGone);
  }
}

void AutomationsClient::delete_block(const std::string& id) {
  api_.request("DELETE", "/block_documents/" + url_encode_segment(id));
}

}  // namespace pc
