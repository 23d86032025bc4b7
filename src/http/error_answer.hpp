#pragma once
// What a Prefect server's error answer says, for messages: the status's
// reason phrase, the server's own explanation, and the Hint that says what
// to change (api_client.cpp builds its errors from them).

#include <string>

#include "common/error.hpp"

namespace pc {

// "Service Unavailable" for 503; "HTTP 599" for a status without a phrase here.
std::string reason_phrase(long status);

// The server's explanation: FastAPI's "detail" (a string or a validation
// list), Prefect's "exception_message" (+ "exception_detail" for 422s), else
// the start of the body, on one line, at most 500 characters. Never the
// echoed "request_body", nor the `input` of a validation error (it may hold
// job variables).
std::string server_detail(const std::string& body);

// What to change for an answer that retrying cannot fix: credentials (401,
// 403 but a refusal of a reserved name), the server's CSRF check, the server
// itself (5xx), else the request.
Hint status_hint(long status, const std::string& detail);

}  // namespace pc
