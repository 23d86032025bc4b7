#include "worker/launcher.hpp"

#include <utility>

namespace pc {

ProcessLauncher::Started ProcessLauncherImpl::start(const SpawnOptions& options,
                                                    LineCallback on_line, ExitCallback on_exit) {
  Child child = Child::spawn(options);
  Started started{0, child.pid(), child.spawn_error()};
  started.id = supervisor_.add(std::move(child), std::move(on_line), std::move(on_exit));
  return started;
}

}  // namespace pc
