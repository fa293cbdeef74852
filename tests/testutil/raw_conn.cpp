#include "tests/testutil/raw_conn.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>

namespace ironboot::testutil {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

RawConn::RawConn(int port, int rcvbuf, const std::string& source) {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) {
    return;
  }
  if (rcvbuf > 0) {
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  }
  if (!source.empty()) {
    sockaddr_in local{};
    local.sin_family = AF_INET;
    if (::inet_pton(AF_INET, source.c_str(), &local.sin_addr) != 1 ||
        ::bind(fd_, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0) {
      return;
    }
  }
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
}

RawConn::~RawConn() { Close(); }

void RawConn::Close() {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

void RawConn::Reset() {
  if (fd_ >= 0) {
    linger l{1, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  }
  Close();
}

bool RawConn::Send(std::string_view s) {
  while (!s.empty()) {
    ssize_t n = ::send(fd_, s.data(), s.size(), MSG_NOSIGNAL);
    if (n <= 0) {
      return false;
    }
    s.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

std::string RawConn::ReadSome(size_t max, std::chrono::milliseconds timeout) {
  pollfd p{fd_, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) {
    return "";
  }
  std::string buf(max, '\0');
  ssize_t n = ::recv(fd_, buf.data(), buf.size(), 0);
  if (n <= 0) {
    closed_ = true;
    return "";
  }
  buf.resize(static_cast<size_t>(n));
  return buf;
}

std::string RawConn::ReadUntilClose(std::chrono::milliseconds timeout) {
  std::string out;
  auto deadline = Clock::now() + timeout;
  while (!closed_ && Clock::now() < deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    out += ReadSome(1 << 16, std::max(left, 1ms));
  }
  return out;
}

std::string RawConn::ReadResponse(std::chrono::milliseconds timeout) {
  std::string out;
  auto deadline = Clock::now() + timeout;
  while (!closed_ && Clock::now() < deadline) {
    size_t end = out.find("\r\n\r\n");
    if (end != std::string::npos) {
      size_t cl = out.find("Content-Length: ");
      size_t len = cl == std::string::npos ? 0 : std::stoul(out.substr(cl + 16));
      if (out.size() >= end + 4 + len) {
        return out;
      }
    }
    out += ReadSome(1 << 16, 50ms);
  }
  return out;
}

}  // namespace ironboot::testutil
