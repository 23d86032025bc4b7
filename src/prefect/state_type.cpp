#include "prefect/state_type.hpp"

#include <algorithm>
#include <cctype>

namespace pc {

const std::vector<StateType>& all_state_types() {
  static const std::vector<StateType> kAll{
      StateType::kScheduled, StateType::kPending, StateType::kRunning,
      StateType::kCompleted, StateType::kFailed,  StateType::kCancelled,
      StateType::kCrashed,   StateType::kPaused,  StateType::kCancelling,
  };
  return kAll;
}

std::string_view to_string(StateType type) {
  switch (type) {
    case StateType::kScheduled:
      return "SCHEDULED";
    case StateType::kPending:
      return "PENDING";
    case StateType::kRunning:
      return "RUNNING";
    case StateType::kCompleted:
      return "COMPLETED";
    case StateType::kFailed:
      return "FAILED";
    case StateType::kCancelled:
      return "CANCELLED";
    case StateType::kCrashed:
      return "CRASHED";
    case StateType::kPaused:
      return "PAUSED";
    case StateType::kCancelling:
      return "CANCELLING";
  }
  return "UNKNOWN";
}

std::optional<StateType> parse_state_type(std::string_view name) {
  std::string upper(name);
  std::transform(upper.begin(), upper.end(), upper.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  for (auto type : all_state_types()) {
    if (to_string(type) == upper) {
      return type;
    }
  }
  return std::nullopt;
}

bool is_terminal(StateType type) {
  return type == StateType::kCompleted || type == StateType::kFailed ||
         type == StateType::kCancelled || type == StateType::kCrashed;
}

}  // namespace pc
