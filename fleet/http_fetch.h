#pragma once
// fleet/: the simulated firmware's HTTP client (libcurl). Requests leave from
// the node's own loopback address, so the boot server sees that node's IP.

#include <atomic>
#include <chrono>
#include <string>

#include "common/error.h"

namespace ironboot::fleet {

struct FetchResult {
  int status = 0;
  std::string body;
};

// GET `url` from `source_ip` ("" = any). kUnavailable naming the URL when no
// HTTP answer arrived (refused, timeout, or `cancel` became true while
// waiting); any status is returned as is.
Result<FetchResult> HttpFetch(const std::string& url, const std::string& source_ip,
                              std::chrono::milliseconds timeout,
                              const std::atomic<bool>* cancel = nullptr);

}  // namespace ironboot::fleet
