#pragma once
// The one PATH search: where execvp would find a program.

#include <string>

namespace pc {

// PATH's value when the environment has none, as execvp assumes.
inline constexpr const char* kDefaultPath = "/bin:/usr/bin";

struct PathSearch {
  std::string program;  // full path of the first executable regular file; "" if none
  int error = 0;        // 0 when found, else ENOENT (nowhere) or EACCES (found, not executable)
};

// Looks up `name` (no '/') in `path_list` as execvp does: each ':'-separated
// directory in order, an empty entry meaning the current directory.
PathSearch search_path(const std::string& name, const std::string& path_list);

}  // namespace pc
