#pragma once
// The database check of the preflight: connect with libpq and run SELECT 1.

#include <chrono>
#include <string>

namespace pc {

// How a connection string (URL or key=value form) is shown in messages:
// "user@host:port/dbname", without the password. Unknown parts are left out.
// Throws pc::Error(kPreflight) when libpq cannot parse it.
std::string describe_database(const std::string& database_url);

// Connects with libpq and runs SELECT 1, all within `timeout` (a hard
// deadline over name lookup, connect, authentication and the query). Throws
// pc::Error(kPreflight) naming the target and libpq's reason, never the
// password.
void check_database(const std::string& database_url, std::chrono::seconds timeout);

}  // namespace pc
