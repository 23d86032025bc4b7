#pragma once
// Splits a command line exactly as Python's shlex.split(posix=True) does,
// which Prefect 3.8's process worker uses (command_from_string): whitespace
// separates words; '...' keeps everything literally; "..." keeps everything
// but lets \ escape only " and \ (unlike a shell, "\$" stays "\$"); outside
// quotes \ escapes the next character. No comments, no expansion.

#include <string>
#include <string_view>
#include <vector>

namespace pc {

// Throws pc::Error(kApi) naming the command for an unterminated quote or a
// trailing backslash (the command comes from the deployment, not our config).
std::vector<std::string> split_command(std::string_view command);

}  // namespace pc
