#pragma once
// The install stamp: what the last successful install put into the flow
// interpreter's environment, so that a cycle whose inputs have not changed
// installs nothing.
//
// The digest covers the bytes of the requirements file and of every file it
// includes with -r/-c (recursively, relative to the including file), or the
// editable project's metadata (pyproject.toml, setup.cfg, setup.py), plus the
// installer's arguments and the interpreter's path, executable and version.
// The interpreter computes it (one short child, hashlib) and says where its
// environment is (sys.prefix); the stamp is a file there, one per kind of
// install. Packages a requirements line points at (a local wheel, a URL) are
// not read: a new wheel under the same name needs a changed requirements
// file, as it does for pip.
//
// A stamp is removed before an install starts and written (to a temporary
// file, then renamed) only after it succeeded: a failed or interrupted
// install leaves none behind, and the next cycle installs again.

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace pc {

enum class StampKind { kRequirements, kEditable };

struct StampProbe {
  std::filesystem::path stamp;  // <sys.prefix>/.prefect-cycle-<kind>.stamp
  std::string digest;           // hex SHA-256
  std::string python_version;   // "3.11.2", for the log
};

// Asks `python` for its environment and the digest of `root` (a
// requirements file, or the editable project's directory) and of `args`.
// nullopt when the interpreter cannot answer (missing, broken, a file that
// cannot be read): then the install runs, unstamped, and says why.
std::optional<StampProbe> probe_stamp(const std::string& python, StampKind kind,
                                      const std::filesystem::path& root,
                                      const std::vector<std::string>& args, std::string& why_not);

// Whether the stamp holds `probe.digest`. An unreadable stamp does not.
bool stamp_matches(const StampProbe& probe);

// Removes the stamp before an install. Returns "" or why it could not.
std::string remove_stamp(const StampProbe& probe);

// Records a successful install. Returns "" or why it could not (a read-only
// environment: the next cycle installs again).
std::string write_stamp(const StampProbe& probe, const std::string& description);

}  // namespace pc
