#pragma once
// Small text helpers shared by the config parsers, HTTP headers and messages.

#include <string>
#include <string_view>

namespace pc {

// `s` with ASCII letters in lower case (other bytes unchanged).
std::string ascii_lower(std::string_view s);

// `s` without leading and trailing spaces, tabs, CRs and LFs.
std::string trim(std::string_view s);

}  // namespace pc
