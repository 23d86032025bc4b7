#include "repo/install_stamp.hpp"

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <system_error>

#include "process/process.hpp"

namespace pc {
namespace {

namespace fs = std::filesystem;

// argv: kind ("requirements" or "editable"), root, then the installer's
// arguments. Prints sys.prefix, the digest and the version, one a line.
// Each part is length-prefixed and labelled, so two different inputs never
// feed the hash the same bytes.
constexpr const char* kStampProbe = R"PY(
import hashlib, os, re, sys
kind, root, args = sys.argv[1], sys.argv[2], sys.argv[3:]
h = hashlib.sha256()
def add(label, data):
    h.update(b"%s\0%d\0" % (label.encode(), len(data)) + data)
for label, value in (("executable", sys.executable), ("version", sys.version),
                     ("prefix", sys.prefix), ("kind", kind)):
    add(label, value.encode())
for a in args:
    add("arg", a.encode())
INCLUDE = re.compile(r"(?:-r|-c|--requirement|--constraint)(?:\s*=\s*|\s+|(?=\S))(\S+)")
def requirements(path, seen):
    path = os.path.abspath(path)
    if path in seen:
        return
    seen.add(path)
    with open(path, "rb") as f:
        data = f.read()
    add("file " + path, data)
    for line in data.decode("utf-8", "replace").splitlines():
        m = INCLUDE.match(line.strip())
        if m and "://" not in m.group(1):
            requirements(os.path.join(os.path.dirname(path), m.group(1)), seen)
if kind == "requirements":
    requirements(root, set())
else:
    for name in ("pyproject.toml", "setup.cfg", "setup.py"):
        p = os.path.join(root, name)
        if os.path.exists(p):
            with open(p, "rb") as f:
                add("file " + name, f.read())
print(sys.prefix)
print(h.hexdigest())
print("%d.%d.%d" % sys.version_info[:3])
)PY";

constexpr std::chrono::seconds kProbeTimeout{30};
constexpr std::chrono::seconds kProbeGrace{2};

}  // namespace

std::optional<StampProbe> probe_stamp(const std::string& python, StampKind kind,
                                      const fs::path& root, const std::vector<std::string>& args,
                                      std::string& why_not) {
  SpawnOptions options;
  const char* kind_name = kind == StampKind::kRequirements ? "requirements" : "editable";
  options.argv = {python, "-c", kStampProbe, kind_name, root.string()};
  options.argv.insert(options.argv.end(), args.begin(), args.end());
  std::vector<std::string> out;
  std::string last_error;
  const auto deadline = std::chrono::steady_clock::now() + kProbeTimeout;
  ExitStatus status = run_streaming(
      options,
      [&](std::string_view line, bool is_stderr) {
        if (!is_stderr) {
          out.emplace_back(line);
        } else if (line.find_first_not_of(" \t") != std::string_view::npos) {
          last_error = std::string(line.substr(0, 300));
        }
      },
      [deadline] { return std::chrono::steady_clock::now() > deadline; }, kProbeGrace);
  if (!status.exited() || status.code != 0 || out.size() != 3 || out[0].empty() ||
      out[1].size() != 64) {
    why_not = python + " could not compute the install digest (" + status.describe() +
              (last_error.empty() ? "" : ": " + last_error) + ")";
    return std::nullopt;
  }
  StampProbe probe;
  probe.stamp = fs::path(out[0]) / (std::string(".prefect-cycle-") + kind_name + ".stamp");
  probe.digest = out[1];
  probe.python_version = out[2];
  return probe;
}

bool stamp_matches(const StampProbe& probe) {
  std::ifstream in(probe.stamp);
  std::string first;
  return in && std::getline(in, first) && first == probe.digest;
}

std::string remove_stamp(const StampProbe& probe) {
  std::error_code ec;
  fs::remove(probe.stamp, ec);
  return ec ? "cannot remove " + probe.stamp.string() + ": " + ec.message() : "";
}

std::string write_stamp(const StampProbe& probe, const std::string& description) {
  const fs::path temp = probe.stamp.string() + ".tmp-" + std::to_string(::getpid());
  {
    std::ofstream out(temp, std::ios::trunc);
    out << probe.digest << "\n"
        << "# written by prefect-cycle after a successful install: " << description << "\n"
        << "# delete this file to make the next cycle install again\n";
    out.close();
    if (!out) {
      std::error_code ignored;
      fs::remove(temp, ignored);
      return "cannot write " + temp.string() + ": " + std::strerror(errno);
    }
  }
  std::error_code ec;
  fs::rename(temp, probe.stamp, ec);
  if (ec) {
    fs::remove(temp, ec);
    return "cannot write " + probe.stamp.string() + ": " + ec.message();
  }
  return "";
}

}  // namespace pc
