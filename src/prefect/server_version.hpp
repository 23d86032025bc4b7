#pragma once
// The Prefect server's release and what it can do. Read once from
// GET /admin/version ("3.8.8", "2.20.27"); every difference between the
// supported releases that changes a request the program sends is a field of
// ServerFeatures, so that no request the server cannot answer is sent.
// Supported: Prefect 2.20 to 3.9 (README, "Prefect servers").

#include <optional>
#include <string>
#include <string_view>

namespace pc {

struct ServerVersion {
  int major = 0;
  int minor = 0;
  int patch = 0;
  // "3.8.8", "2.20.27", "3.1.6.dev3+g1234", "3.0.0rc20": the leading numbers.
  static std::optional<ServerVersion> parse(std::string_view text);
  bool at_least(int ma, int mi, int pa = 0) const;
};

// The oldest release prefect-cycle is tested against.
inline constexpr ServerVersion kOldestSupported{2, 20, 0};
// The first release with PATCH /flow_runs/{id}/labels (PrefectHQ/prefect#16122).
inline constexpr ServerVersion kFirstWithFlowRunLabels{3, 1, 6};
// The first release whose open-source server takes POST /events and runs
// automations on them (event triggers, call-webhook actions; 2.x had them
// behind PREFECT_EXPERIMENTAL_EVENTS, off by default): the worker and cycle
// events and `prefect-cycle on-demand` need it. POST /logs/ exists in every
// supported release.
inline constexpr ServerVersion kFirstWithEvents{3, 0, 0};

struct ServerFeatures {
  bool supported = true;        // at least kOldestSupported
  bool flow_run_labels = true;  // PATCH /flow_runs/{id}/labels exists
  bool events = true;           // POST /events and /automations/ (kFirstWithEvents)
  // What is missing on this server, for doctor and the log ("" = nothing).
  std::string missing() const;
};

// Features of a release; an unknown or unparsable version (Prefect Cloud has
// no /admin/version) is treated as the newest.
ServerFeatures features_of(const std::optional<ServerVersion>& version);

}  // namespace pc
