#pragma once
// What the user should change, per class of failure. Every pc::Error names
// one: the message says what failed and the value; the hint says which
// variable (and flag) to change, or which outside thing (the server, the
// network, the repository's host) to fix. The table is the README's
// "Troubleshooting" list; tests/unit/common/hint_test.cpp checks both.

#include <string_view>
#include <vector>

namespace pc {

enum class Hint {
  kConfigValue,
  kConfigCodeDirWithoutRepository,
  kPoolNotFound,
  kPoolType,
  kDeploymentNotFound,
  kSummaryFile,
  kApiUnreachable,
  kApiAuth,
  kApiCsrf,
  kApiTls,
  kApiServerError,
  kApiAnswer,
  kApiGone,
  kWorkerCli,
  kWorkerCrashLoop,
  kPauseFailed,
  kJobTemplate,
  kTempDir,
  kWaitTimeout,
  kStopped,
  kRepositoryUnreachable,
  kRepositoryTimeout,
  kRepositoryAuth,
  kRepositoryFailed,
  kBranchNotFound,
  kSyncUnreachable,
  kSyncTimeout,
  kSyncFailed,
  kCodeDir,
  kRequirements,
  kEditableInstall,
  kPython,
  kDatabaseMissing,
  kDatabaseUrl,
  kDatabaseUnreachable,
  kUsageFlag,
  kCount,  // not a class: the number of classes; keep it last
};

struct HintRow {
  Hint hint;
  std::string_view name;  // stable, e.g. "repository.unreachable"
  std::string_view text;  // what to change, starting with a verb
};

// Every Hint, in enum order.
const std::vector<HintRow>& hint_table();
std::string_view hint_name(Hint hint);
std::string_view hint_text(Hint hint);

}  // namespace pc
