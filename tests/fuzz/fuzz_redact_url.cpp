// libFuzzer target: no URL password survives redaction. The input is
// "prefix NUL url NUL suffix". When curl (not the URL module) reads `url` as
// a URL, its password is set to a marker, and the rebuilt URL, with and
// without the surrounding text, is redacted by a Redactor with no registered
// secrets (the userinfo rule alone). The marker in the output is a crash.
// A second text puts the marker into a user-info made of the input's bytes
// ("scheme://<user>:<marker>@<rest>"), so that raw '@', ':' and '%' count too.
#include <curl/curl.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/redact.hpp"

namespace {

constexpr std::string_view kMarker = "Pw0rdMarker7";

struct UrlDeleter {
  void operator()(CURLU* u) const { curl_url_cleanup(u); }
};

// `url` with its password replaced by the marker, as curl writes it; "" when
// curl does not read `url` as a URL with a host.
std::string with_marker_password(const std::string& url) {
  std::unique_ptr<CURLU, UrlDeleter> handle(curl_url());
  if (!handle || curl_url_set(handle.get(), CURLUPART_URL, url.c_str(), CURLU_NON_SUPPORT_SCHEME) !=
                     CURLUE_OK) {
    return "";
  }
  if (curl_url_set(handle.get(), CURLUPART_PASSWORD, std::string(kMarker).c_str(), 0) !=
      CURLUE_OK) {
    return "";
  }
  char* rebuilt = nullptr;
  if (curl_url_get(handle.get(), CURLUPART_URL, &rebuilt, 0) != CURLUE_OK || rebuilt == nullptr) {
    return "";
  }
  std::string out(rebuilt);
  curl_free(rebuilt);
  return out;
}

void check(const pc::Redactor& redactor, const std::string& text) {
  // Only the password may hold the marker: input bytes that spell it once
  // filtered or joined to their neighbours are no leak.
  const auto first = text.find(kMarker);
  if (first == std::string::npos || text.find(kMarker, first + 1) != std::string::npos) {
    return;
  }
  if (redactor.redact(text).find(kMarker) != std::string::npos) {
    __builtin_trap();
  }
}

// The user-info of the hand-built URL: bytes that cannot end an authority or
// a user-info (so the marker is the password of the URL as written).
std::string userinfo_bytes(std::string_view raw) {
  std::string out;
  for (char c : raw) {
    if (std::string_view("/?#@ \t\r\n\"'").find(c) == std::string_view::npos && c != '\0') {
      out.push_back(c);
    }
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  if (input.find(kMarker) != std::string_view::npos) {
    return 0;  // the marker in the input itself is no leak
  }
  const auto first = input.find('\0');
  const auto second = first == std::string_view::npos ? first : input.find('\0', first + 1);
  const std::string prefix(first == std::string_view::npos ? std::string_view()
                                                           : input.substr(0, first));
  const std::string url(first == std::string_view::npos
                            ? input
                            : input.substr(first + 1, second == std::string_view::npos
                                                          ? std::string_view::npos
                                                          : second - first - 1));
  const std::string suffix(second == std::string_view::npos ? std::string_view()
                                                            : input.substr(second + 1));
  const pc::Redactor redactor;

  if (const std::string marked = with_marker_password(url); !marked.empty()) {
    check(redactor, marked);
    check(redactor, prefix + " " + marked + " " + suffix);
    check(redactor, prefix + marked + suffix);
  }
  // scheme://<user bytes>:<marker>@<url bytes>, inside the text.
  std::string user = userinfo_bytes(url.substr(0, url.size() / 2));
  const std::string built =
      "https://" + user + ":" + std::string(kMarker) + "@" + url.substr(url.size() / 2);
  check(redactor, prefix + " " + built + " " + suffix);
  check(redactor, prefix + built);
  return 0;
}
