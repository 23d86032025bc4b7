#include "common/path_search.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

namespace pc {
namespace {

// A directory is X_OK too, but execvp would not run it.
bool is_executable_file(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(path.c_str(), X_OK) == 0;
}

}  // namespace

PathSearch search_path(const std::string& name, const std::string& path_list) {
  PathSearch result{"", ENOENT};
  std::size_t start = 0;
  while (start <= path_list.size()) {
    auto colon = path_list.find(':', start);
    std::string dir =
        path_list.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
    std::string candidate = (dir.empty() ? std::string(".") : dir) + "/" + name;
    if (is_executable_file(candidate)) {
      return {candidate, 0};
    }
    if (access(candidate.c_str(), F_OK) == 0) {
      result.error = EACCES;
    }
    if (colon == std::string::npos) {
      break;
    }
    start = colon + 1;
  }
  return result;
}

}  // namespace pc
