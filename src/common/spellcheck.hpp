#pragma once
// "Did you mean" suggestions for near-miss values (after ninja's SpellcheckString).

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pc {

// Levenshtein distance, case-sensitive.
std::size_t edit_distance(std::string_view a, std::string_view b);

// The candidate closest to `word` (case-insensitive), if it is close enough to
// be a likely typo: at most max(2, size/3) edits away.
std::optional<std::string> closest_match(std::string_view word,
                                         const std::vector<std::string>& candidates);

}  // namespace pc
