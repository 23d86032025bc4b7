#include "db/database.hpp"

#include <libpq-fe.h>
#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <memory>

#include "common/error.hpp"
#include "common/redact.hpp"
#include "common/url.hpp"

namespace pc {
namespace {

using Clock = std::chrono::steady_clock;

struct ConnDeleter {
  void operator()(PGconn* c) const { PQfinish(c); }
};
struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
struct OptionsDeleter {
  void operator()(PQconninfoOption* o) const { PQconninfoFree(o); }
};
using ConnPtr = std::unique_ptr<PGconn, ConnDeleter>;
using ResultPtr = std::unique_ptr<PGresult, ResultDeleter>;
using OptionsPtr = std::unique_ptr<PQconninfoOption, OptionsDeleter>;

struct Target {
  std::string shown;     // user@host:port/dbname
  std::string password;  // to redact from libpq's messages
};

// libpq's message on one line, with the password and any URL userinfo
// replaced: its messages name host and user, but a password in a URL could
// come back in a parse error.
std::string clean(std::string message, const Target& target, const std::string& url) {
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) {
    message.pop_back();
  }
  for (auto& c : message) {
    if (c == '\n' || c == '\t') {
      c = ' ';
    }
  }
  Redactor redactor;
  redactor.add_secret(target.password);
  if (auto password = password_of(url)) {
    redactor.add_secret(*password);
  }
  return redactor.redact(message);
}

Target parse_target(const std::string& url) {
  char* raw_error = nullptr;
  OptionsPtr options(PQconninfoParse(url.c_str(), &raw_error));
  if (!options) {
    std::string reason = raw_error != nullptr ? raw_error : "out of memory";
    PQfreemem(raw_error);
    throw preflight_error(
        "DATABASE_URL is not a valid PostgreSQL connection string: " + clean(reason, Target{}, url),
        Hint::kDatabaseUrl);
  }
  std::string host, port, dbname, user;
  Target target;
  for (PQconninfoOption* o = options.get(); o->keyword != nullptr; ++o) {
    if (o->val == nullptr) {
      continue;
    }
    const std::string key = o->keyword;
    if (key == "host" || (key == "hostaddr" && host.empty())) {
      host = o->val;
    } else if (key == "port") {
      port = o->val;
    } else if (key == "dbname") {
      dbname = o->val;
    } else if (key == "user") {
      user = o->val;
    } else if (key == "password") {
      target.password = o->val;
    }
  }
  target.shown = (user.empty() ? "" : user + "@") + (host.empty() ? "localhost" : host) +
                 (port.empty() ? "" : ":" + port) + (dbname.empty() ? "" : "/" + dbname);
  return target;
}

// Waits until libpq's socket is ready for `events` or the deadline passes.
// Returns false on timeout.
bool wait_socket(PGconn* conn, short events, Clock::time_point deadline) {
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      return false;
    }
    pollfd p{PQsocket(conn), events, 0};
    int rc = poll(&p, 1, static_cast<int>(left.count()));
    if (rc < 0 && errno == EINTR) {
      continue;
    }
    return rc != 0;  // ready, or an error that libpq will report itself
  }
}

}  // namespace

std::string describe_database(const std::string& database_url) {
  return parse_target(database_url).shown;
}

void check_database(const std::string& database_url, std::chrono::seconds timeout) {
  const Target target = parse_target(database_url);
  const auto deadline = Clock::now() + timeout;
  const std::string prefix = "database check failed for " + target.shown + " (DATABASE_URL): ";
  const std::string too_slow =
      prefix + "no answer within " + std::to_string(timeout.count()) + " s";
  auto fail = [&](PGconn* conn, const std::string& what) -> Error {
    std::string reason = conn != nullptr ? PQerrorMessage(conn) : "out of memory";
    return preflight_error(prefix + what + ": " + clean(reason, target, database_url),
                           Hint::kDatabaseUnreachable);
  };

  // The non-blocking API, so that one deadline covers everything: libpq's own
  // connect_timeout applies per host and address and not to the query. It is
  // still set, as a second bound.
  const std::string seconds = std::to_string(std::max<long long>(2, timeout.count()));
  const char* keys[] = {"dbname", "connect_timeout", nullptr};
  const char* values[] = {database_url.c_str(), seconds.c_str(), nullptr};
  ConnPtr conn(PQconnectStartParams(keys, values, 1));
  if (!conn || PQstatus(conn.get()) == CONNECTION_BAD) {
    throw fail(conn.get(), "cannot connect");
  }
  PostgresPollingStatusType poll_status = PGRES_POLLING_WRITING;
  while (poll_status != PGRES_POLLING_OK) {
    if (poll_status == PGRES_POLLING_FAILED) {
      throw fail(conn.get(), "cannot connect");
    }
    short events = poll_status == PGRES_POLLING_READING ? POLLIN : POLLOUT;
    if (!wait_socket(conn.get(), events, deadline)) {
      throw preflight_error(too_slow + " while connecting", Hint::kDatabaseUnreachable);
    }
    poll_status = PQconnectPoll(conn.get());
  }

  if (PQsendQuery(conn.get(), "SELECT 1") == 0) {
    throw fail(conn.get(), "SELECT 1 failed");
  }
  while (PQisBusy(conn.get()) != 0) {
    if (!wait_socket(conn.get(), POLLIN, deadline)) {
      throw preflight_error(too_slow + " to SELECT 1", Hint::kDatabaseUnreachable);
    }
    if (PQconsumeInput(conn.get()) == 0) {
      throw fail(conn.get(), "SELECT 1 failed");
    }
  }
  ResultPtr result(PQgetResult(conn.get()));
  if (!result || PQresultStatus(result.get()) != PGRES_TUPLES_OK) {
    throw fail(conn.get(), "SELECT 1 failed");
  }
}

}  // namespace pc
