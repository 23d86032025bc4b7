#pragma once
// Prefect's flow-run state types, as they appear on the wire ("PENDING", ...).

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pc {

enum class StateType {
  kScheduled,
  kPending,
  kRunning,
  kCompleted,
  kFailed,
  kCancelled,
  kCrashed,
  kPaused,
  kCancelling,
};

// "PENDING" etc.
std::string_view to_string(StateType type);
// Case-insensitive parse of a wire name; nullopt when unknown.
std::optional<StateType> parse_state_type(std::string_view name);
// COMPLETED, FAILED, CANCELLED, CRASHED.
bool is_terminal(StateType type);
// Every state type, in Prefect's order.
const std::vector<StateType>& all_state_types();

}  // namespace pc
