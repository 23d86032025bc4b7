#pragma once
// The full what() of a pc::Error: its message, then the hint of its class.

#include <string>

#include "common/hint.hpp"

namespace pc::testing {

inline std::string with_fix(const std::string& message, Hint hint) {
  return message + "; fix: " + std::string(hint_text(hint));
}

}  // namespace pc::testing
