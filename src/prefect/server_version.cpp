#include "prefect/server_version.hpp"

#include <cctype>
#include <tuple>

namespace pc {
namespace {

// Reads a run of digits at `pos`; nullopt when there is none.
std::optional<int> number_at(std::string_view text, std::size_t& pos) {
  std::size_t start = pos;
  int value = 0;
  while (pos < text.size() && std::isdigit(static_cast<unsigned char>(text[pos])) != 0 &&
         pos - start < 6) {
    value = value * 10 + (text[pos] - '0');
    ++pos;
  }
  if (pos == start) {
    return std::nullopt;
  }
  return value;
}

}  // namespace

std::optional<ServerVersion> ServerVersion::parse(std::string_view text) {
  while (!text.empty() && (text.front() == '"' || text.front() == ' ' || text.front() == 'v')) {
    text.remove_prefix(1);
  }
  std::size_t pos = 0;
  ServerVersion v;
  auto major = number_at(text, pos);
  if (!major || pos >= text.size() || text[pos] != '.') {
    return std::nullopt;
  }
  ++pos;
  auto minor = number_at(text, pos);
  if (!minor) {
    return std::nullopt;
  }
  v.major = *major;
  v.minor = *minor;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    v.patch = number_at(text, pos).value_or(0);
  }
  return v;
}

bool ServerVersion::at_least(int ma, int mi, int pa) const {
  return std::tie(major, minor, patch) >= std::tie(ma, mi, pa);
}

ServerFeatures features_of(const std::optional<ServerVersion>& version) {
  ServerFeatures features;
  if (!version) {
    return features;
  }
  features.supported =
      version->at_least(kOldestSupported.major, kOldestSupported.minor, kOldestSupported.patch);
  features.flow_run_labels = version->at_least(
      kFirstWithFlowRunLabels.major, kFirstWithFlowRunLabels.minor, kFirstWithFlowRunLabels.patch);
  features.events =
      version->at_least(kFirstWithEvents.major, kFirstWithEvents.minor, kFirstWithEvents.patch);
  return features;
}

namespace {

std::string release(const ServerVersion& v) {
  return std::to_string(v.major) + "." + std::to_string(v.minor) + "." + std::to_string(v.patch);
}

}  // namespace

std::string ServerFeatures::missing() const {
  std::string missing;
  if (!flow_run_labels) {
    missing = "no flow-run labels (before Prefect " + release(kFirstWithFlowRunLabels) +
              "): runs are not labelled; stale runs are recognised by their claim message";
  }
  if (!events) {
    missing += std::string(missing.empty() ? "" : "; ") + "no events (before Prefect " +
               release(kFirstWithEvents) + "): the worker and cycle events are not sent";
  }
  return missing;
}

}  // namespace pc
