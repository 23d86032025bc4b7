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

// The flag of `flags` ("--limit") that a command-line argument naming no flag
// most likely meant: "--limt", "--limt=3", "-limit" and "--LIMIT" all give
// "--limit". Compares the names without their dashes and any "=value", with
// closest_match's limit; nullopt when none is that close.
std::optional<std::string> closest_flag(std::string_view arg,
                                        const std::vector<std::string>& flags);

}  // namespace pc
