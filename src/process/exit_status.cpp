// How a child ended, in words: signal names, ExitStatus::describe() and the
// hint explain_exit() adds for the exits users ask about (137, 127, ...).
#include <signal.h>

#include <string>

#include "process/process.hpp"

namespace pc {

std::string signal_name(int sig) {
  switch (sig) {
    case SIGHUP:
      return "SIGHUP";
    case SIGINT:
      return "SIGINT";
    case SIGQUIT:
      return "SIGQUIT";
    case SIGILL:
      return "SIGILL";
    case SIGABRT:
      return "SIGABRT";
    case SIGBUS:
      return "SIGBUS";
    case SIGFPE:
      return "SIGFPE";
    case SIGKILL:
      return "SIGKILL";
    case SIGUSR1:
      return "SIGUSR1";
    case SIGSEGV:
      return "SIGSEGV";
    case SIGUSR2:
      return "SIGUSR2";
    case SIGPIPE:
      return "SIGPIPE";
    case SIGALRM:
      return "SIGALRM";
    case SIGTERM:
      return "SIGTERM";
    case SIGXCPU:
      return "SIGXCPU";
    case SIGXFSZ:
      return "SIGXFSZ";
    default:
      return "signal " + std::to_string(sig);
  }
}

std::string ExitStatus::describe() const {
  if (signal != 0) {
    return "killed by signal " + std::to_string(signal) + " (" + signal_name(signal) + ")";
  }
  if (code < 0) {
    return "unknown exit status";
  }
  return "exit code " + std::to_string(code);
}

std::string explain_exit(const ExitStatus& s) {
  int sig = s.signal;
  if (sig == 0 && s.code > 128 && s.code < 160) {
    sig = s.code - 128;  // a shell (or `sh -c`) reporting its child's signal death
  }
  switch (sig) {
    case 0:
      break;
    case SIGKILL:
      return "killed (SIGKILL; often out of memory)";
    case SIGTERM:
      return "terminated (SIGTERM)";
    case SIGINT:
      return "interrupted (SIGINT)";
    case SIGSEGV:
      return "segmentation fault (SIGSEGV)";
    case SIGABRT:
      return "aborted (SIGABRT)";
    case SIGBUS:
      return "bus error (SIGBUS)";
    case SIGHUP:
      return "hung up (SIGHUP)";
    case SIGPIPE:
      return "broken pipe (SIGPIPE)";
    case SIGXCPU:
      return "CPU time limit exceeded (SIGXCPU)";
    default:
      return "killed by " + signal_name(sig);
  }
  switch (s.code) {
    case 0:
      return "success";
    case 1:
      return "general error";
    case 2:
      return "misuse of a command (bad arguments)";
    case 126:
      return "command found but not executable";
    case 127:
      return "command not found";
    default:
      return s.code < 0 ? "the exit status could not be read" : "unexpected exit code";
  }
}

}  // namespace pc
