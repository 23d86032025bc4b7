#pragma once
// Splits a command line the way POSIX shells (and Python's shlex.split, which
// Prefect's process worker uses) do: whitespace separates words; '...' keeps
// everything literally; "..." keeps everything but lets \ escape " \ $ `;
// outside quotes \ escapes the next character. No expansion of any kind.

#include <string>
#include <string_view>
#include <vector>

namespace pc {

// Throws pc::Error(kApi) naming the command for an unterminated quote or a
// trailing backslash (the command comes from the deployment, not our config).
std::vector<std::string> split_command(std::string_view command);

}  // namespace pc
