#include "common/text.hpp"

#include <algorithm>
#include <cctype>

namespace pc {

std::string ascii_lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string trim(std::string_view s) {
  constexpr std::string_view kSpace = " \t\r\n";
  const auto begin = s.find_first_not_of(kSpace);
  if (begin == std::string_view::npos) {
    return {};
  }
  return std::string(s.substr(begin, s.find_last_not_of(kSpace) - begin + 1));
}

}  // namespace pc
