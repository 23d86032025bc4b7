#pragma once
// Prefect's automations and block documents over the REST API (3.x), for
// `prefect-cycle on-demand`: each object is found by its name, created,
// replaced whole, or deleted. Every call throws pc::Error(kApi) on failures
// it does not name. Block data holds secrets: never log what these return.

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "http/api_client.hpp"

namespace pc {

class AutomationsClient {
 public:
  explicit AutomationsClient(ApiClient& api) : api_(api) {}

  // POST /automations/filter by exact name: the first match, or nullopt.
  std::optional<nlohmann::json> find_automation(const std::string& name);
  // POST /automations/ (an AutomationCreate body); the new automation's id.
  std::string create_automation(const nlohmann::json& body);
  // PUT /automations/{id} (an AutomationUpdate body: the whole automation).
  void replace_automation(const std::string& id, const nlohmann::json& body);
  // DELETE /automations/{id}; one already gone is fine.
  void delete_automation(const std::string& id);

  // GET /block_types/slug/{slug}: the type's id; nullopt when the server has
  // no such block type registered.
  std::optional<std::string> block_type_id(const std::string& slug);
  // POST /block_schemas/filter by block type: the id of the schema the
  // server lists first (its newest). Error when the type has none.
  std::string block_schema_id(const std::string& block_type_id);
  // GET /block_types/slug/{slug}/block_documents/name/{name}
  // ?include_secrets=true: the document, secrets in clear; nullopt on 404.
  std::optional<nlohmann::json> find_block(const std::string& slug, const std::string& name);
  // POST /block_documents/; the new document's id.
  std::string create_block(const std::string& name, const std::string& block_type_id,
                           const std::string& block_schema_id, const nlohmann::json& data);
  // PATCH /block_documents/{id}: `data` replaces the document's whole data.
  void replace_block_data(const std::string& id, const nlohmann::json& data);
  // DELETE /block_documents/{id}; one already gone is fine.
  void delete_block(const std::string& id);

 private:
  ApiClient& api_;
};

}  // namespace pc
