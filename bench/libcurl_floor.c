/* The memory floor of any program that talks HTTP through Debian's libcurl:
 * links only libcurl, optionally makes one request, prints its VmHWM.
 *
 *   cc bench/libcurl_floor.c -o /tmp/libcurl_floor -lcurl
 *   /tmp/libcurl_floor                          # linked, nothing called
 *   /tmp/libcurl_floor http://127.0.0.1:4200/api/health
 *
 * Another TLS flavour: link its runtime library instead of -lcurl, e.g.
 *   cc bench/libcurl_floor.c -o /tmp/libcurl_floor \
 *      /usr/lib/x86_64-linux-gnu/libcurl-gnutls.so.4
 *
 * docs/benchmarks.md compares prefect-cycle's peak RSS with it. */
#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char** argv) {
  if (argc > 1) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURL* curl = curl_easy_init();
    curl_easy_setopt(curl, CURLOPT_URL, argv[1]);
    curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
    CURLcode rc = curl_easy_perform(curl);
    printf("request: %s\n", curl_easy_strerror(rc));
    curl_easy_cleanup(curl);
    curl_global_cleanup();
  }
  FILE* status = fopen("/proc/self/status", "r");
  char line[256];
  while (status && fgets(line, sizeof line, status)) {
    if (strncmp(line, "VmHWM", 5) == 0 || strncmp(line, "RssAnon", 7) == 0 ||
        strncmp(line, "RssFile", 7) == 0) {
      fputs(line, stdout);
    }
  }
  return 0;
}
