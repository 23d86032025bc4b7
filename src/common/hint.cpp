#include "common/hint.hpp"

namespace pc {

const std::vector<HintRow>& hint_table() {
  // Written for an operator paged at night: the variable and its flag first,
  // then the outside thing to check, then how to skip a check if one can.
  static const std::vector<HintRow> kTable{
      {Hint::kConfigValue, "config.value",
       "set the variable or flag named above to an allowed value; `prefect-cycle config` shows "
       "every value and where it came from"},
      {Hint::kConfigCodeDirWithoutRepository, "config.code_dir_without_repository",
       "set PREFECT_WORKER_REPOSITORY (--repository) to the git URL of the flow code, or unset "
       "PREFECT_WORKER_CODE_DIR (--code-dir)"},
      {Hint::kPoolNotFound, "pool.not_found",
       "check PREFECT_WORK_POOL (--pool) and PREFECT_API_URL (--api-url); create the pool "
       "(prefect work-pool create NAME --type process) or set PREFECT_WORK_POOL_CREATE=true "
       "(--create-pool)"},
      {Hint::kPoolType, "pool.type",
       "set PREFECT_WORKER_TYPE (--worker-type) to the pool's type to run it with Prefect's "
       "worker CLI, or set PREFECT_WORK_POOL (--pool) to a process pool"},
      {Hint::kDeploymentNotFound, "deployment.not_found",
       "correct PREFECT_TRIGGER_DEPLOYMENTS (--trigger): comma-separated flow-name/deployment-name "
       "of existing deployments (prefect deployment ls), or remove the entry"},
      {Hint::kSummaryFile, "summary.file",
       "set PREFECT_CYCLE_SUMMARY_FILE (--summary-file) to a path in a directory that exists and "
       "this user can write, or unset it"},
      {Hint::kApiUnreachable, "api.unreachable",
       "check PREFECT_API_URL (--api-url): scheme, host and port of a running Prefect server; "
       "then the network and firewall between here and it (prefect-cycle doctor tests each step)"},
      {Hint::kApiAuth, "api.auth",
       "set PREFECT_API_AUTH_STRING (--api-auth-string) to the server's "
       "PREFECT_SERVER_API_AUTH_STRING (user:pass, self-hosted), or PREFECT_API_KEY (--api-key) "
       "to a valid key of the workspace in PREFECT_API_URL (Prefect Cloud)"},
      {Hint::kApiCsrf, "api.csrf",
       "turn PREFECT_SERVER_CSRF_PROTECTION_ENABLED off on the Prefect server: prefect-cycle does "
       "not send CSRF tokens"},
      {Hint::kApiTls, "api.tls",
       "set PREFECT_API_SSL_CERT_FILE (--ssl-cert-file) to the CA bundle that signed the server's "
       "certificate, or PREFECT_API_TLS_INSECURE_SKIP_VERIFY=true (--tls-insecure-skip-verify, "
       "unsafe)"},
      {Hint::kApiServerError, "api.server_error",
       "the Prefect server failed the request: check its log and its database; run the cycle "
       "again once GET /api/health answers"},
      {Hint::kApiAnswer, "api.answer",
       "check that PREFECT_API_URL (--api-url) is the base of a Prefect 3 API (it ends in /api) "
       "and nothing in between (a proxy, a login page) rewrites the answers; prefect-cycle doctor "
       "shows the server's version"},
      {Hint::kApiGone, "api.gone",
       "it was deleted on the server while the cycle ran (by a user or another client): run the "
       "cycle again, and check that nothing else manages PREFECT_WORK_POOL (--pool)"},
      {Hint::kWorkerCli, "worker.cli",
       "read the worker's output above; check that PREFECT_WORKER_PYTHON (--python) has Prefect 3 "
       "and the worker package of the pool's type, or set PREFECT_WORKER_TYPE=process "
       "(--worker-type) for a process pool"},
      {Hint::kWorkerCrashLoop, "worker.crash_loop",
       "check the Prefect server and the network to PREFECT_API_URL (--api-url); raise "
       "PREFECT_WORKER_MAX_CONSECUTIVE_FAILURES (--max-consecutive-failures) to ride out longer "
       "outages"},
      {Hint::kPauseFailed, "pool.pause_failed",
       "pause the pool by hand now (prefect work-pool pause NAME) so that no other worker runs "
       "its flow runs; then check the Prefect server and the network to PREFECT_API_URL "
       "(--api-url)"},
      {Hint::kJobTemplate, "job.template",
       "correct the work pool's base job template (prefect work-pool inspect NAME) or the "
       "deployment's job_variables (prefect deployment inspect FLOW/DEPLOYMENT)"},
      {Hint::kTempDir, "worker.temp_dir",
       "free space in, or give this user write access to, the temporary directory (TMPDIR), or "
       "set working_dir in the pool's job template"},
      {Hint::kWaitTimeout, "wait.timeout",
       "raise PREFECT_WAIT_TIMEOUT_SECONDS (--wait-timeout), keeping it below the schedule's "
       "interval, or find out why the runs take longer than usual; unfinished runs were stopped "
       "and the next cycle picks up the scheduled ones"},
      {Hint::kStopped, "stopped",
       "nothing to change: a stop signal (SIGINT or SIGTERM) cut this short, and the next cycle "
       "starts over; the cycle's last line tells whether the pool is paused"},
      {Hint::kRepositoryUnreachable, "repository.unreachable",
       "check PREFECT_WORKER_REPOSITORY (--repository): the URL, host and port, that the host is "
       "up, and that no firewall blocks it; to skip this check, set "
       "PREFECT_WORKER_VERIFY_REPOSITORY=false (--no-verify-repository)"},
      {Hint::kRepositoryTimeout, "repository.timeout",
       "raise PREFECT_WORKER_GIT_TIMEOUT_SECONDS (--git-timeout) for a slow host; if it never "
       "answers, check the host and port in PREFECT_WORKER_REPOSITORY (--repository) and the "
       "firewall; to skip this check, set PREFECT_WORKER_VERIFY_REPOSITORY=false "
       "(--no-verify-repository)"},
      {Hint::kRepositoryAuth, "repository.auth",
       "set GITHUB_ACCESS_TOKEN (--github-token) to a token that can read the repository, put "
       "user:password in PREFECT_WORKER_REPOSITORY (--repository), or load a key into the SSH "
       "agent for an ssh URL"},
      {Hint::kRepositoryFailed, "repository.failed",
       "check that PREFECT_WORKER_REPOSITORY (--repository) is a git URL its host serves; to skip "
       "this check, set PREFECT_WORKER_VERIFY_REPOSITORY=false (--no-verify-repository)"},
      {Hint::kBranchNotFound, "repository.branch",
       "set PREFECT_WORKER_BRANCH (--branch) to one of the repository's branches, or push the "
       "branch"},
      {Hint::kSyncUnreachable, "sync.unreachable",
       "check PREFECT_WORKER_REPOSITORY (--repository): the URL, host and port, that the host is "
       "up, and that no firewall blocks it; to run without a code sync, unset "
       "PREFECT_WORKER_CODE_DIR (--code-dir)"},
      {Hint::kSyncTimeout, "sync.timeout",
       "raise PREFECT_WORKER_GIT_TIMEOUT_SECONDS (--git-timeout) for a large repository or a slow "
       "host; if it never answers, check the host and port in PREFECT_WORKER_REPOSITORY "
       "(--repository) and the firewall"},
      {Hint::kSyncFailed, "sync.failed",
       "check PREFECT_WORKER_REPOSITORY (--repository) and PREFECT_WORKER_BRANCH (--branch); if "
       "the checkout in PREFECT_WORKER_CODE_DIR (--code-dir) is damaged, delete it and the next "
       "cycle clones it again"},
      {Hint::kCodeDir, "sync.code_dir",
       "set PREFECT_WORKER_CODE_DIR (--code-dir) to a path this user can write that does not "
       "exist yet or holds a clone of PREFECT_WORKER_REPOSITORY, or remove what is in the way"},

      {Hint::kRequirements, "install.requirements",
       "fix the requirements file (PREFECT_WORKER_REQUIREMENTS_FILE, --requirements-file) or the "
       "package index pip reads, from pip's output above; or set "
       "PREFECT_WORKER_INSTALL_REQUIREMENTS=false (--no-install-requirements)"},
      {Hint::kEditableInstall, "install.editable",
       "fix the project's pyproject.toml or setup.py in PREFECT_WORKER_CODE_DIR from pip's output "
       "above, or set PREFECT_WORKER_INSTALL_EDITABLE=false (--no-install-editable)"},
      {Hint::kPython, "python",
       "set PREFECT_WORKER_PYTHON (--python) to an interpreter that has Prefect installed (the "
       "image's is /opt/prefect/bin/python), or pip install prefect into it"},
      {Hint::kDatabaseMissing, "database.missing",
       "set DATABASE_URL (--database-url) or DATABASE_PUBLIC_URL, or set "
       "PREFECT_WORKER_CHECK_DATABASE=false (--no-check-database)"},
      {Hint::kDatabaseUrl, "database.url",
       "set DATABASE_URL (--database-url) to a PostgreSQL URL "
       "(postgresql://user:password@host:5432/dbname), or set PREFECT_WORKER_CHECK_DATABASE=false "
       "(--no-check-database)"},
      {Hint::kDatabaseUnreachable, "database.unreachable",
       "check DATABASE_URL (--database-url): host, port, user, password and database name, and "
       "that the database accepts connections from here; to skip this check, set "
       "PREFECT_WORKER_CHECK_DATABASE=false (--no-check-database)"},
      {Hint::kUsageFlag, "usage.flag",
       "use the flag named above, or another that `prefect-cycle --help` lists; each has an "
       "environment variable too (`prefect-cycle config` shows them)"},
  };
  return kTable;
}

std::string_view hint_name(Hint hint) {
  return hint_table().at(static_cast<std::size_t>(hint)).name;
}

std::string_view hint_text(Hint hint) {
  return hint_table().at(static_cast<std::size_t>(hint)).text;
}

}  // namespace pc
