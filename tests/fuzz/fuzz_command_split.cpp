// libFuzzer target: the deployment `command` split by shell-quoting rules.
// Any input either splits or throws pc::Error; nothing else is allowed.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/error.hpp"
#include "job_config/command_split.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view command(reinterpret_cast<const char*>(data), size);
  try {
    for (const auto& word : pc::split_command(command)) {
      if (word.size() > size) {
        __builtin_trap();  // a word longer than its input cannot come from splitting
      }
    }
  } catch (const pc::Error&) {
  }
  return 0;
}
