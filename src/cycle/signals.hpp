#pragma once
// SIGINT/SIGTERM handling. The handlers only record the signal; the cycle's
// loops poll stop_requested() and act on it. A second signal asks for a faster
// exit (short grace periods), but cleanup such as pausing the pool still runs.

#include <atomic>

namespace pc {

class StopSignal {
 public:
  // Installs the handlers for SIGINT and SIGTERM (once per process).
  static void install();

  // The first signal received (SIGINT or SIGTERM), 0 while none.
  static int first();
  // How many signals arrived.
  static int count();
  static bool stop_requested() { return count() > 0; }
  static bool hurry() { return count() > 1; }

  // The flags that interruptible sleeps watch (common/clock.hpp): set at
  // the first signal (stop) and at the second (hurry).
  static const std::atomic<bool>& flag();
  static const std::atomic<bool>& hurry_flag();

  // For tests: behave as if `sig` had been received.
  static void simulate(int sig);
  static void reset_for_tests();
};

}  // namespace pc
