#pragma once
// This machine's host name, as a worker name and a claim label use it.

#include <string>

namespace pc {

// gethostname(), or "localhost" when it fails or is empty. A container's or
// a `unshare --uts` sandbox's own name: each host of a multi-host set-up has
// its own.
std::string host_name();

}  // namespace pc
