#include "fleet/http_fetch.h"

#include <curl/curl.h>

#include <memory>
#include <mutex>

namespace ironboot::fleet {
namespace {

size_t Append(char* data, size_t size, size_t n, void* user) {
  auto* body = static_cast<std::string*>(user);
  body->append(data, size * n);
  return size * n;
}

int Progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  const auto* cancel = static_cast<const std::atomic<bool>*>(user);
  return cancel != nullptr && cancel->load() ? 1 : 0;  // non-zero aborts the transfer
}

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

}  // namespace

Result<FetchResult> HttpFetch(const std::string& url, const std::string& source_ip,
                              std::chrono::milliseconds timeout, const std::atomic<bool>* cancel) {
  GlobalInit();
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), curl_easy_cleanup);
  if (!curl) {
    return Fail(ErrorCode::kInternal, "GET " + url + ": curl_easy_init failed");
  }
  FetchResult result;
  char error_buf[CURL_ERROR_SIZE] = {0};
  CURL* c = curl.get();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, Append);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &result.body);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error_buf);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  if (cancel != nullptr) {
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, Progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, const_cast<std::atomic<bool>*>(cancel));
  }
  std::string interface;
  if (!source_ip.empty()) {
    interface = "host!" + source_ip;
    curl_easy_setopt(c, CURLOPT_INTERFACE, interface.c_str());
  }
  CURLcode rc = curl_easy_perform(c);
  if (rc != CURLE_OK) {
    std::string why = error_buf[0] != 0 ? error_buf : curl_easy_strerror(rc);
    return Fail(ErrorCode::kUnavailable, "GET " + url + ": " + why);
  }
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  result.status = static_cast<int>(status);
  return result;
}

}  // namespace ironboot::fleet
