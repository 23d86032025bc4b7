#include "common/host.hpp"

#include <unistd.h>

namespace pc {

std::string host_name() {
  char buffer[256] = {};
  if (gethostname(buffer, sizeof(buffer) - 1) != 0 || buffer[0] == '\0') {
    return "localhost";
  }
  return buffer;
}

}  // namespace pc
