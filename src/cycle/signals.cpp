#include "cycle/signals.hpp"

#include <signal.h>

namespace pc {
namespace {

std::atomic<int> g_first{0};
std::atomic<int> g_count{0};
std::atomic<bool> g_flag{false};
std::atomic<bool> g_hurry{false};

extern "C" void on_stop_signal(int sig) {
  int expected = 0;
  g_first.compare_exchange_strong(expected, sig);
  if (g_count.fetch_add(1) >= 1) {
    g_hurry.store(true);
  }
  g_flag.store(true);
}

}  // namespace

void StopSignal::install() {
  static bool installed = false;
  if (installed) {
    return;
  }
  installed = true;
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = 0;  // no SA_RESTART: a blocking wait returns EINTR and we re-check
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  // A closed pipe to a child must not kill us.
  signal(SIGPIPE, SIG_IGN);
}

int StopSignal::first() {
  return g_first.load();
}
int StopSignal::count() {
  return g_count.load();
}
const std::atomic<bool>& StopSignal::flag() {
  return g_flag;
}
const std::atomic<bool>& StopSignal::hurry_flag() {
  return g_hurry;
}

void StopSignal::simulate(int sig) {
  on_stop_signal(sig);
}

void StopSignal::reset_for_tests() {
  g_first = 0;
  g_count = 0;
  g_flag = false;
  g_hurry = false;
}

}  // namespace pc
