#pragma once
// fleet/: a small HTTP/1.1 server (Boost.Beast) for the fleet's status API:
// one handler function answers every request. Only for loopback test and
// demo use: one I/O thread, a read timeout per request, small bodies.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/error.h"

namespace ironboot::fleet {

struct StatusReply {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
};
// method ("GET"), target ("/fleet?x=y") -> reply. Called on the I/O thread.
using StatusHandler =
    std::function<StatusReply(const std::string& method, const std::string& target)>;

class StatusServer {
 public:
  StatusServer(std::string address, StatusHandler handler);
  ~StatusServer();  // Stop()
  StatusServer(const StatusServer&) = delete;
  StatusServer& operator=(const StatusServer&) = delete;

  // Binds "host:port" (port 0: any) and starts serving. kInvalid for a bad
  // address, kUnavailable when it cannot be bound (message names it).
  Result<void> Start();
  uint16_t port() const;
  void Stop();

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace ironboot::fleet
