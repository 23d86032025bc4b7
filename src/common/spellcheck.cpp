#include "common/spellcheck.hpp"

#include <algorithm>

#include "common/text.hpp"

namespace pc {

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) {
    row[j] = j;
  }
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t above = row[j];
      std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + cost});
      diagonal = above;
    }
  }
  return row[b.size()];
}

std::optional<std::string> closest_match(std::string_view word,
                                         const std::vector<std::string>& candidates) {
  const std::string needle = ascii_lower(word);
  const std::size_t limit = std::max<std::size_t>(2, needle.size() / 3);
  std::optional<std::string> best;
  std::size_t best_distance = limit + 1;
  for (const auto& candidate : candidates) {
    std::size_t d = edit_distance(needle, ascii_lower(candidate));
    if (d < best_distance) {
      best_distance = d;
      best = candidate;
    }
  }
  return best;
}

std::optional<std::string> closest_flag(std::string_view arg,
                                        const std::vector<std::string>& flags) {
  auto bare = [](std::string_view flag) {
    flag = flag.substr(0, flag.find('='));
    while (!flag.empty() && flag.front() == '-') {
      flag.remove_prefix(1);
    }
    return std::string(flag);
  };
  std::vector<std::string> names;
  names.reserve(flags.size());
  for (const auto& flag : flags) {
    names.push_back(bare(flag));
  }
  const std::string word = bare(arg);
  if (word.empty()) {
    return std::nullopt;
  }
  auto guess = closest_match(word, names);
  if (!guess) {
    return std::nullopt;
  }
  const auto at =
      static_cast<std::size_t>(std::find(names.begin(), names.end(), *guess) - names.begin());
  return flags[at];
}

}  // namespace pc
