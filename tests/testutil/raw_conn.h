#pragma once
// tests/testutil: a raw TCP client for what an HTTP library will not do on
// purpose: half a request, a body never sent, a reset mid-download, a source
// address of its own (any 127.x.y.z) to act as another host.

#include <chrono>
#include <string>
#include <string_view>

namespace ironboot::testutil {

class RawConn {
 public:
  // Connects to 127.0.0.1:port. `rcvbuf` > 0 sets SO_RCVBUF first (a small
  // one makes the server block on a download). `source` binds the local end
  // to that IPv4 address ("" for the kernel's choice).
  explicit RawConn(int port, int rcvbuf = 0, const std::string& source = "");
  ~RawConn();
  RawConn(const RawConn&) = delete;
  RawConn& operator=(const RawConn&) = delete;

  bool connected() const { return connected_; }
  int fd() const { return fd_; }
  void Close();
  // Closes with a TCP reset (SO_LINGER 0), as a client that is power-cycled.
  void Reset();
  bool Send(std::string_view s);
  // Reads at most `max` bytes that arrive within `timeout`; "" and closed()
  // set on EOF or reset.
  std::string ReadSome(size_t max, std::chrono::milliseconds timeout);
  // Reads until the server closes the connection or `timeout` passes.
  std::string ReadUntilClose(std::chrono::milliseconds timeout);
  // Reads one response with a Content-Length body (keep-alive).
  std::string ReadResponse(std::chrono::milliseconds timeout);
  bool closed() const { return closed_; }

 private:
  int fd_ = -1;
  bool connected_ = false;
  bool closed_ = false;
};

}  // namespace ironboot::testutil
