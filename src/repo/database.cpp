#include <libpq-fe.h>

#include <memory>

#include "common/error.hpp"
#include "common/redact.hpp"
#include "config/settings.hpp"
#include "repo/preflight.hpp"

namespace pc {
namespace {

struct ConnDeleter {
  void operator()(PGconn* c) const { PQfinish(c); }
};
struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};

std::string clean(std::string message, const std::string& url) {
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) {
    message.pop_back();
  }
  for (auto& c : message) {
    if (c == '\n')
      c = ' ';
  }
  Redactor redactor;
  if (auto password = url_password(url)) {
    redactor.add_secret(*password);
  }
  return redactor.redact(message);
}

}  // namespace

void check_database(const std::string& database_url, std::chrono::seconds timeout) {
  const std::string shown = redact_url_userinfo(database_url);
  const std::string seconds = std::to_string(std::max<long long>(2, timeout.count()));
  const char* keys[] = {"dbname", "connect_timeout", nullptr};
  const char* values[] = {database_url.c_str(), seconds.c_str(), nullptr};
  std::unique_ptr<PGconn, ConnDeleter> conn(PQconnectdbParams(keys, values, 1));
  if (!conn || PQstatus(conn.get()) != CONNECTION_OK) {
    throw preflight_error("database check failed: cannot connect to " + shown + ": " +
                          clean(conn ? PQerrorMessage(conn.get()) : "out of memory", database_url) +
                          " (DATABASE_URL)");
  }
  std::unique_ptr<PGresult, ResultDeleter> result(PQexec(conn.get(), "SELECT 1"));
  if (!result || PQresultStatus(result.get()) != PGRES_TUPLES_OK) {
    throw preflight_error("database check failed: SELECT 1 on " + shown + ": " +
                          clean(PQerrorMessage(conn.get()), database_url));
  }
}

}  // namespace pc
