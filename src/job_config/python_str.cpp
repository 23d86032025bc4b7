#include <cmath>

#include "job_config/job_config.hpp"

namespace pc {
namespace {

using json = nlohmann::json;

// Python's repr() of a str: single quotes unless the text has ' and no ".
std::string python_repr_str(const std::string& text) {
  const char quote =
      text.find('\'') != std::string::npos && text.find('"') == std::string::npos ? '"' : '\'';
  std::string out(1, quote);
  for (unsigned char c : text) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c == static_cast<unsigned char>(quote)) {
          out += '\\';
          out += static_cast<char>(c);
        } else if (c < 0x20 || c == 0x7f) {
          static const char* kHex = "0123456789abcdef";
          out += "\\x";
          out += kHex[c >> 4];
          out += kHex[c & 0xf];
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += quote;
  return out;
}

std::string python_repr(const json& value) {
  if (value.is_string()) {
    return python_repr_str(value.get<std::string>());
  }
  if (value.is_object()) {
    std::string out = "{";
    bool first = true;
    for (const auto& [key, item] : value.items()) {
      out += (first ? "" : ", ") + python_repr_str(key) + ": " + python_repr(item);
      first = false;
    }
    return out + "}";
  }
  if (value.is_array()) {
    std::string out = "[";
    bool first = true;
    for (const auto& item : value) {
      out += (first ? "" : ", ") + python_repr(item);
      first = false;
    }
    return out + "]";
  }
  return python_str(value);
}

}  // namespace

std::string python_str(const json& value) {
  if (value.is_string())
    return value.get<std::string>();
  if (value.is_boolean())
    return value.get<bool>() ? "True" : "False";
  if (value.is_null())
    return "None";
  if (value.is_number_float()) {
    double d = value.get<double>();
    if (std::floor(d) == d && std::abs(d) < 1e16) {
      return std::to_string(static_cast<long long>(d)) + ".0";
    }
  }
  if (value.is_object() || value.is_array()) {
    return python_repr(value);
  }
  return value.dump();
}

}  // namespace pc
