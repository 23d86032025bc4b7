#include "http/error_answer.hpp"

#include <algorithm>

#include <nlohmann/json.hpp>

namespace pc {
namespace {

// One validation error of FastAPI/pydantic: "body.flow_runs.id: Input should be
// a valid UUID". The echoed `input` is left out: it may hold job variables.
std::string validation_entry(const nlohmann::json& entry) {
  if (!entry.is_object()) {
    return entry.is_string() ? entry.get<std::string>() : entry.dump();
  }
  std::string loc;
  if (auto it = entry.find("loc"); it != entry.end() && it->is_array()) {
    for (const auto& part : *it) {
      if (!loc.empty()) {
        loc += '.';
      }
      loc += part.is_string() ? part.get<std::string>() : part.dump();
    }
  }
  std::string msg = entry.value("msg", std::string());
  return loc.empty() ? msg : loc + ": " + msg;
}

std::string validation_list(const nlohmann::json& list) {
  std::string out;
  for (const auto& entry : list) {
    if (!out.empty()) {
      out += "; ";
    }
    out += validation_entry(entry);
  }
  return out;
}

}  // namespace

std::string reason_phrase(long status) {
  switch (status) {
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 422:
      return "Unprocessable Entity";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "HTTP " + std::to_string(status);
  }
}

// The server's explanation: FastAPI's "detail" (a string or a validation
// list), Prefect's "exception_message" (+ "exception_detail" for 422s), else
// the start of the body. Never the echoed "request_body".
std::string server_detail(const std::string& body) {
  constexpr std::size_t kMaxDetail = 500;
  std::string text;
  auto parsed = nlohmann::json::parse(body, nullptr, false);
  if (!parsed.is_discarded() && parsed.is_object()) {
    if (auto it = parsed.find("detail"); it != parsed.end()) {
      text = it->is_string()  ? it->get<std::string>()
             : it->is_array() ? validation_list(*it)
                              : it->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    } else if (auto msg = parsed.find("exception_message"); msg != parsed.end()) {
      text = msg->is_string() ? msg->get<std::string>() : msg->dump();
      if (auto d = parsed.find("exception_detail"); d != parsed.end() && d->is_array()) {
        text += ": " + validation_list(*d);
      }
    } else if (auto m = parsed.find("message"); m != parsed.end() && m->is_string()) {
      text = m->get<std::string>();
    }
  }
  if (text.empty()) {
    text = body.substr(0, 200);
  }
  std::replace(text.begin(), text.end(), '\n', ' ');
  std::replace(text.begin(), text.end(), '\r', ' ');
  if (text.size() > kMaxDetail) {
    text = text.substr(0, kMaxDetail) + "...";
  }
  return text;
}

// A fix for credential problems. A 403 can also be a plain refusal (pool
// names starting with "prefect" are reserved) or the server's CSRF check.
// What to change for an answer that retrying cannot fix.
Hint status_hint(long status, const std::string& detail) {
  if (status == 403 && detail.find("CSRF") != std::string::npos) {
    return Hint::kApiCsrf;
  }
  if (status == 401 || (status == 403 && detail.find("reserved") == std::string::npos)) {
    return Hint::kApiAuth;
  }
  return status >= 500 ? Hint::kApiServerError : Hint::kApiAnswer;
}

}  // namespace pc
