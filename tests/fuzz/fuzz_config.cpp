// libFuzzer target: the configuration table. The input is lines of
// `NAME=value` (environment variables) and `--flag=value` (command-line
// flags); load_config either returns a configuration or throws pc::Error
// naming the variable or flag.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/error.hpp"
#include "config/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  pc::Environment env;
  pc::FlagValues flags;
  while (!text.empty()) {
    auto end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    auto eq = line.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      continue;
    }
    std::string key(line.substr(0, eq));
    std::string value(line.substr(eq + 1));
    (key.rfind("--", 0) == 0 ? flags : env)[key] = value;
  }
  try {
    pc::load_config(env, flags);
  } catch (const pc::Error&) {
  }
  return 0;
}
