#include "job_config/command_split.hpp"

#include "common/error.hpp"

namespace pc {

std::vector<std::string> split_command(std::string_view command) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;
  enum class Quote { kNone, kSingle, kDouble } quote = Quote::kNone;
  auto fail = [&](const std::string& why) {
    throw Error(ExitCode::kApi, "job variable command \"" + std::string(command) + "\": " + why,
                Hint::kJobTemplate);
  };
  for (std::size_t i = 0; i < command.size(); ++i) {
    char c = command[i];
    switch (quote) {
      case Quote::kSingle:
        if (c == '\'') {
          quote = Quote::kNone;
        } else {
          word += c;
        }
        break;
      case Quote::kDouble:
        if (c == '"') {
          quote = Quote::kNone;
        } else if (c == '\\' && i + 1 < command.size() &&
                   std::string_view("\"\\").find(command[i + 1]) != std::string_view::npos) {
          word += command[++i];
        } else {
          word += c;
        }
        break;
      case Quote::kNone:
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
          if (in_word) {
            words.push_back(std::move(word));
            word.clear();
            in_word = false;
          }
        } else if (c == '\'') {
          quote = Quote::kSingle;
          in_word = true;
        } else if (c == '"') {
          quote = Quote::kDouble;
          in_word = true;
        } else if (c == '\\') {
          if (i + 1 >= command.size()) {
            fail("ends with a backslash");
          }
          word += command[++i];
          in_word = true;
        } else {
          word += c;
          in_word = true;
        }
        break;
    }
  }
  if (quote != Quote::kNone) {
    fail(std::string("has an unterminated ") + (quote == Quote::kSingle ? "single" : "double") +
         " quote");
  }
  if (in_word) {
    words.push_back(std::move(word));
  }
  return words;
}

}  // namespace pc
