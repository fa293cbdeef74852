#include "bootserver/tftp_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <system_error>
#include <utility>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>

#include "common/internal_errors.h"
#include "common/log.h"

namespace ironboot::bootserver {
namespace fs = std::filesystem;

struct TftpEndpoint {
  sockaddr_storage storage{};
  socklen_t len = 0;

  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
  sockaddr* get() { return reinterpret_cast<sockaddr*>(&storage); }
  int family() const { return storage.ss_family; }

  std::string ToString() const {
    char host[INET6_ADDRSTRLEN] = "?";
    uint16_t port = 0;
    if (family() == AF_INET) {
      auto* in = reinterpret_cast<const sockaddr_in*>(&storage);
      inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
      port = ntohs(in->sin_port);
      return std::string(host) + ":" + std::to_string(port);
    }
    auto* in6 = reinterpret_cast<const sockaddr_in6*>(&storage);
    inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
    port = ntohs(in6->sin6_port);
    return "[" + std::string(host) + "]:" + std::to_string(port);
  }
  // The address without the port: what the per-client limit counts by.
  std::string Host() const {
    char host[INET6_ADDRSTRLEN] = "?";
    if (family() == AF_INET) {
      inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage)->sin_addr, host,
                sizeof host);
    } else {
      inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_addr, host,
                sizeof host);
    }
    return host;
  }
  bool SameHost(const TftpEndpoint& o) const {
    if (family() != o.family()) {
      return false;
    }
    if (family() == AF_INET) {
      return reinterpret_cast<const sockaddr_in*>(&storage)->sin_addr.s_addr ==
             reinterpret_cast<const sockaddr_in*>(&o.storage)->sin_addr.s_addr;
    }
    return std::memcmp(&reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_addr,
                       &reinterpret_cast<const sockaddr_in6*>(&o.storage)->sin6_addr,
                       sizeof(in6_addr)) == 0;
  }
  bool SameAs(const TftpEndpoint& o) const {
    return len == o.len && std::memcmp(&storage, &o.storage, len) == 0;
  }
};

using SockAddr = TftpEndpoint;

namespace {

constexpr size_t kMaxDatagram = 65536;
// A transfer socket only has to take ACKs and ERRORs; a longer datagram is cut,
// which leaves an ERROR's message short and anything else malformed.
constexpr size_t kMaxClientPacket = 1024;
// Bytes read from a file at a time, whatever the block size.
constexpr size_t kReadChunk = 8192;
// A client-supplied string in a log line or ERROR is cut after this many bytes.
constexpr size_t kMaxShown = 256;
// A client address whose request was refused is logged at most this often.
constexpr auto kRefusalLogInterval = std::chrono::seconds(60);
// Client addresses remembered for that; beyond it refusals go unlogged (still counted).
constexpr size_t kMaxRefusalLogClients = 4096;

// "20s" or "300ms", for messages.
std::string DurationText(std::chrono::milliseconds d) {
  if (d.count() % 1000 == 0) {
    return std::to_string(d.count() / 1000) + "s";
  }
  return std::to_string(d.count()) + "ms";
}

std::string Errno(int err) {
  return std::strerror(err);
}

// A client-supplied string, safe for one log line or an ERROR packet: control
// and non-ASCII bytes escaped as \xNN, cut with "..." after kMaxShown bytes.
// Idempotent.
std::string ForLog(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (out.size() >= kMaxShown) {
      out += "...";
      break;
    }
    if (c < 0x20 || c >= 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out;
}

// Parses "host:port", "[v6]:port" or ":port" (numeric addresses only).
Result<SockAddr> ParseAddress(const std::string& text) {
  auto bad = [&](const std::string& why) {
    return Fail(ErrorCode::kInvalid, "TFTP address \"" + text + "\": " + why +
                                         " (want host:port, e.g. 0.0.0.0:69 or [::]:69)");
  };
  const auto colon = text.rfind(':');
  if (colon == std::string::npos) {
    return bad("no port");
  }
  std::string host = text.substr(0, colon);
  const std::string port_text = text.substr(colon + 1);
  int port = -1;
  if (!port_text.empty() && port_text.size() <= 5 &&
      std::all_of(port_text.begin(), port_text.end(), ::isdigit)) {
    port = std::stoi(port_text);
  }
  if (port < 0 || port > 65535) {
    return bad("port \"" + port_text + "\" is not a number from 0 to 65535");
  }
  SockAddr addr;
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&addr.storage);
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(static_cast<uint16_t>(port));
    if (inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), &in6->sin6_addr) != 1) {
      return bad("\"" + host + "\" is not an IPv6 address");
    }
    addr.len = sizeof(sockaddr_in6);
    return addr;
  }
  auto* in = reinterpret_cast<sockaddr_in*>(&addr.storage);
  in->sin_family = AF_INET;
  in->sin_port = htons(static_cast<uint16_t>(port));
  if (host.empty()) {
    host = "0.0.0.0";
  }
  if (inet_pton(AF_INET, host.c_str(), &in->sin_addr) != 1) {
    return bad("\"" + host + "\" is not an IPv4 address");
  }
  addr.len = sizeof(sockaddr_in);
  return addr;
}

// A socket bound to `local` (port 0: a fresh transfer ID) and connected to
// `peer`, so the kernel drops datagrams from any other address or port.
Result<int> OpenTransferSocket(const SockAddr& local, const SockAddr& peer) {
  int fd = ::socket(local.family(), SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return Fail(ErrorCode::kInternal, "socket: " + Errno(errno));
  }
  SockAddr bind_addr = local;
  if (bind_addr.family() == AF_INET) {
    reinterpret_cast<sockaddr_in*>(&bind_addr.storage)->sin_port = 0;
  } else {
    reinterpret_cast<sockaddr_in6*>(&bind_addr.storage)->sin6_port = 0;
  }
  if (::bind(fd, bind_addr.get(), bind_addr.len) != 0 || ::connect(fd, peer.get(), peer.len) != 0) {
    const int err = errno;
    ::close(fd);
    return Fail(ErrorCode::kInternal, "transfer socket for " + peer.ToString() + ": " + Errno(err));
  }
  return fd;
}

// Reads a file as the blocks the client receives: raw bytes (octet) or
// converted to netascii.
class BlockReader {
 public:
  BlockReader(int fd, bool netascii) : fd_(fd), netascii_(netascii) {}
  ~BlockReader() { ::close(fd_); }

  // The number of bytes the client will receive.
  Result<uint64_t> TransferSize() {
    struct stat st {};
    if (::fstat(fd_, &st) != 0) {
      return Fail(ErrorCode::kInternal, "fstat: " + Errno(errno));
    }
    if (!netascii_) {
      return static_cast<uint64_t>(st.st_size);
    }
    uint64_t size = 0;
    std::string buf(64 * 1024, '\0');
    off_t offset = 0;
    for (;;) {
      ssize_t n = ::pread(fd_, buf.data(), buf.size(), offset);
      if (n < 0) {
        return Fail(ErrorCode::kInternal, "read: " + Errno(errno));
      }
      if (n == 0) {
        return size;
      }
      size += NetasciiSize(std::string_view(buf.data(), static_cast<size_t>(n)));
      offset += n;
    }
  }

  // The next `n` bytes, fewer only at the end of the file.
  Result<std::string> Next(size_t n) {
    raw_.resize(kReadChunk);
    while (pending_.size() < n && !eof_) {
      ssize_t got = ::read(fd_, raw_.data(), raw_.size());
      if (got < 0) {
        if (errno == EINTR) {
          continue;
        }
        return Fail(ErrorCode::kInternal, "read: " + Errno(errno));
      }
      if (got == 0) {
        eof_ = true;
        break;
      }
      std::string_view chunk(raw_.data(), static_cast<size_t>(got));
      if (netascii_) {
        AppendNetascii(chunk, pending_);
      } else {
        pending_.append(chunk);
      }
    }
    std::string out = pending_.substr(0, std::min(n, pending_.size()));
    pending_.erase(0, out.size());
    return out;
  }

 private:
  int fd_;
  bool netascii_;
  bool eof_ = false;
  std::string pending_;  // converted bytes not yet sent: under n + 2 * kReadChunk
  std::string raw_;      // read buffer, kReadChunk bytes
};

}  // namespace

TftpRoot DebianIpxeRoot(fs::path dir) {
  return TftpRoot{
      std::move(dir), {"undionly.kpxe", "undionly.kkpxe", "ipxe.efi", "snponly.efi"}, true};
}

std::vector<TftpRoot> DefaultTftpRoots(const std::optional<fs::path>& tftp_root) {
  std::vector<TftpRoot> roots;
  if (tftp_root) {
    roots.push_back(TftpRoot{*tftp_root, {}, false});
  }
  roots.push_back(DebianIpxeRoot());
  return roots;
}

const char* TftpResultName(TftpResult result) {
  switch (result) {
    case TftpResult::kOk:
      return "ok";
    case TftpResult::kNotFound:
      return "not_found";
    case TftpResult::kDenied:
      return "denied";
    case TftpResult::kBusy:
      return "busy";
    case TftpResult::kClientLimit:
      return "client_limit";
    case TftpResult::kTimeout:
      return "timeout";
    case TftpResult::kError:
      return "error";
  }
  return "error";
}

namespace {

prometheus::Family<prometheus::Counter>& RequestsFamily(prometheus::Registry& registry) {
  return prometheus::BuildCounter()
      .Name("ironboot_tftp_requests_total")
      .Help("TFTP requests by outcome: ok, not_found, denied, busy, client_limit, timeout, error")
      .Register(registry);
}

}  // namespace

TftpMetrics::TftpMetrics(prometheus::Registry& registry)
    : ok(RequestsFamily(registry).Add({{"result", "ok"}})),
      not_found(RequestsFamily(registry).Add({{"result", "not_found"}})),
      denied(RequestsFamily(registry).Add({{"result", "denied"}})),
      busy(RequestsFamily(registry).Add({{"result", "busy"}})),
      client_limit(RequestsFamily(registry).Add({{"result", "client_limit"}})),
      timeout(RequestsFamily(registry).Add({{"result", "timeout"}})),
      error(RequestsFamily(registry).Add({{"result", "error"}})),
      bytes_sent(prometheus::BuildCounter()
                     .Name("ironboot_tftp_bytes_sent_total")
                     .Help("TFTP DATA payload bytes sent, retransmissions included")
                     .Register(registry)
                     .Add({})),
      active(prometheus::BuildGauge()
                 .Name("ironboot_tftp_transfers_active")
                 .Help("TFTP transfers in progress")
                 .Register(registry)
                 .Add({})) {}

TftpResolved ResolveTftpPath(std::string_view filename, const std::vector<TftpRoot>& roots) {
  std::string name(filename);
  std::replace(name.begin(), name.end(), '\\', '/');
  const std::string shown = ForLog(filename);
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= name.size()) {
    size_t end = name.find('/', start);
    if (end == std::string::npos) {
      end = name.size();
    }
    std::string part = name.substr(start, end - start);
    if (part == "..") {
      return {TftpResult::kDenied, {}, "Access violation: \"" + shown + "\" contains \"..\""};
    }
    if (!part.empty() && part != ".") {
      parts.push_back(std::move(part));
    }
    start = end + 1;
  }
  if (parts.empty()) {
    return {TftpResult::kNotFound, {}, "File not found: \"" + shown + "\" names no file"};
  }
  fs::path rel;
  for (const auto& p : parts) {
    rel /= p;
  }

  for (const auto& root : roots) {
    std::error_code ec;
    if (!root.only.empty()) {
      if (parts.size() != 1 || !root.only.contains(parts[0])) {
        continue;
      }
      fs::path real = fs::canonical(root.dir / rel, ec);
      if (ec) {
        continue;  // not installed
      }
      if (!fs::is_regular_file(real, ec)) {
        return {TftpResult::kDenied, {}, "Access violation: \"" + shown + "\" is not a file"};
      }
      return {TftpResult::kOk, real, {}};
    }
    fs::path real = fs::canonical(root.dir / rel, ec);
    if (ec) {
      continue;  // missing (or a dangling symlink): try the next root
    }
    fs::path real_root = fs::canonical(root.dir, ec);
    if (ec) {
      continue;
    }
    fs::path inside = real.lexically_relative(real_root);
    if (inside.empty() || *inside.begin() == "..") {
      return {TftpResult::kDenied,
              {},
              "Access violation: \"" + shown + "\" leads outside the TFTP root"};
    }
    if (!fs::is_regular_file(real, ec)) {
      return {TftpResult::kDenied, {}, "Access violation: \"" + shown + "\" is not a file"};
    }
    return {TftpResult::kOk, real, {}};
  }
  return {TftpResult::kNotFound, {}, "File not found: \"" + shown + "\""};
}

struct TftpServer::Transfer {
  SockAddr peer;
  SockAddr local;
  TftpRequest request;
  std::thread thread;
  std::atomic<bool> heard_from_client{false};  // any packet on the transfer socket
  std::atomic<bool> done{false};
};

TftpServer::TftpServer(TftpOptions options, std::shared_ptr<prometheus::Registry> registry)
    : options_(std::move(options)), registry_(std::move(registry)), metrics_(*registry_) {}

TftpServer::~TftpServer() {
  Stop();
}

Result<uint16_t> TftpServer::Start() {
  auto log = Logger("tftp");
  if (socket_ >= 0 || stopping_) {
    return Fail(ErrorCode::kInternal, "TftpServer::Start called twice or after Stop");
  }
  auto addr = ParseAddress(options_.address);
  if (!addr) {
    return std::unexpected(addr.error());
  }
  std::vector<TftpRoot> roots;
  for (auto& root : options_.roots) {
    std::error_code ec;
    if (!fs::is_directory(root.dir, ec)) {
      if (root.optional) {
        log->warn("root={} missing, not served (for iPXE binaries: apt-get install ipxe)",
                  root.dir.string());
        continue;
      }
      return Fail(ErrorCode::kInvalid,
                  "TFTP root \"" + root.dir.string() + "\": not a directory or missing");
    }
    roots.push_back(root);
  }
  if (roots.empty()) {
    log->warn("no TFTP root to serve; every request will get \"File not found\"");
  }
  options_.roots = std::move(roots);
  if (options_.max_retries < 0) {
    options_.max_retries = 0;
  }

  socket_ = ::socket(addr->family(), SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (socket_ < 0) {
    return Fail(ErrorCode::kInternal, "TFTP socket: " + Errno(errno));
  }
  int one = 1;
  if (addr->family() == AF_INET) {
    ::setsockopt(socket_, IPPROTO_IP, IP_PKTINFO, &one, sizeof one);
  } else {
    ::setsockopt(socket_, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof one);
  }
  if (::bind(socket_, addr->get(), addr->len) != 0) {
    const int err = errno;
    ::close(socket_);
    socket_ = -1;
    return Fail(ErrorCode::kUnavailable,
                "TFTP address " + options_.address + ": bind: " + Errno(err) +
                    (err == EACCES ? " (port 69 needs root or CAP_NET_BIND_SERVICE)" : ""));
  }
  SockAddr bound;
  bound.len = sizeof bound.storage;
  ::getsockname(socket_, bound.get(), &bound.len);
  port_ = bound.family() == AF_INET
              ? ntohs(reinterpret_cast<sockaddr_in*>(&bound.storage)->sin_port)
              : ntohs(reinterpret_cast<sockaddr_in6*>(&bound.storage)->sin6_port);
  if (::pipe2(stop_pipe_, O_CLOEXEC) != 0) {
    const int err = errno;
    ::close(socket_);
    socket_ = -1;
    return Fail(ErrorCode::kInternal, "pipe: " + Errno(err));
  }
  log->info(
      "listening address={} port={} roots={} max_transfers={} max_transfers_per_client={} "
      "progress_deadline={} max_timeout={}s max_window_bytes={}",
      options_.address, port_, options_.roots.size(), options_.max_transfers,
      options_.max_transfers_per_client, DurationText(options_.progress_deadline),
      options_.limits.max_timeout_seconds, options_.limits.max_window_bytes);
  listener_ = std::thread([this] { Listen(); });
  return port_;
}

void TftpServer::Stop() {
  if (stopping_.exchange(true)) {
    return;
  }
  if (stop_pipe_[1] >= 0) {
    char byte = 1;
    [[maybe_unused]] auto n = ::write(stop_pipe_[1], &byte, 1);
  }
  if (listener_.joinable()) {
    listener_.join();
  }
  Reap(true);
  for (int* fd : {&socket_, &stop_pipe_[0], &stop_pipe_[1]}) {
    if (*fd >= 0) {
      ::close(*fd);
      *fd = -1;
    }
  }
}

void TftpServer::Reap(bool all) {
  std::list<std::unique_ptr<Transfer>> finished;
  {
    std::lock_guard lock(mu_);
    for (auto it = transfers_.begin(); it != transfers_.end();) {
      if (all || (*it)->done) {
        finished.push_back(std::move(*it));
        it = transfers_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& t : finished) {
    t->thread.join();
  }
}

void TftpServer::Count(TftpResult result) {
  switch (result) {
    case TftpResult::kOk:
      metrics_.ok.Increment();
      break;
    case TftpResult::kNotFound:
      metrics_.not_found.Increment();
      break;
    case TftpResult::kDenied:
      metrics_.denied.Increment();
      break;
    case TftpResult::kBusy:
      metrics_.busy.Increment();
      break;
    case TftpResult::kClientLimit:
      metrics_.client_limit.Increment();
      break;
    case TftpResult::kTimeout:
      metrics_.timeout.Increment();
      break;
    case TftpResult::kError:
      metrics_.error.Increment();
      break;
  }
}

void TftpServer::Refuse(const SockAddr& peer, const SockAddr& local, TftpResult result,
                        TftpErrorCode code, const std::string& message, std::string_view file) {
  Count(result);  // before the reply, so a client that has it sees the count
  if (auto fd = OpenTransferSocket(local, peer)) {
    auto packet = EncodeTftpError(code, message);
    [[maybe_unused]] auto n = ::send(*fd, packet.data(), packet.size(), 0);
    ::close(*fd);
  }

  // A flood of refused requests must not become a flood of log lines: one
  // line per client address per kRefusalLogInterval, with the count of those
  // left out since. The metric counts every one.
  const auto now = std::chrono::steady_clock::now();
  const std::string host = peer.Host();
  auto it = refusal_log_.find(host);
  if (it == refusal_log_.end()) {
    if (refusal_log_.size() >= kMaxRefusalLogClients) {
      std::erase_if(refusal_log_,
                    [&](const auto& e) { return now - e.second.logged >= kRefusalLogInterval; });
    }
    if (refusal_log_.size() >= kMaxRefusalLogClients) {
      return;
    }
    it = refusal_log_.emplace(host, RefusalLog{now - kRefusalLogInterval, 0}).first;
  }
  if (now - it->second.logged < kRefusalLogInterval) {
    ++it->second.suppressed;
    return;
  }
  const uint64_t suppressed = std::exchange(it->second.suppressed, 0);
  it->second.logged = now;
  Logger("tftp")->log(
      result == TftpResult::kDenied ? spdlog::level::info : spdlog::level::warn,
      "transfer client={} file=\"{}\" result={} bytes=0 duration_ms=0 message=\"{}\"{}",
      peer.ToString(), ForLog(file), TftpResultName(result), ForLog(message),
      suppressed == 0 ? std::string()
                      : " refusals_not_logged=" + std::to_string(suppressed) +
                            " (one line per client address per minute)");
}

void TftpServer::Listen() {
  auto log = Logger("tftp");
  std::vector<uint8_t> buf(kMaxDatagram);
  SockAddr bound;
  bound.len = sizeof bound.storage;
  ::getsockname(socket_, bound.get(), &bound.len);

  while (!stopping_) {
    pollfd fds[2] = {{socket_, POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
    int ready = ::poll(fds, 2, 500);
    Reap(false);
    if (ready <= 0 || (fds[1].revents & POLLIN)) {
      continue;
    }
    SockAddr peer;
    SockAddr local = bound;
    iovec iov{buf.data(), buf.size()};
    alignas(cmsghdr) char control[256];
    msghdr msg{};
    msg.msg_name = &peer.storage;
    msg.msg_namelen = sizeof peer.storage;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n = ::recvmsg(socket_, &msg, MSG_DONTWAIT);
    if (n < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        log->warn("recvmsg: {}", Errno(errno));
      }
      continue;
    }
    peer.len = msg.msg_namelen;
    // Answer from the address the request was sent to (the listener may be on
    // 0.0.0.0 of a host with several addresses).
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
        in_pktinfo info;
        std::memcpy(&info, CMSG_DATA(c), sizeof info);
        reinterpret_cast<sockaddr_in*>(&local.storage)->sin_addr = info.ipi_addr;
      } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
        in6_pktinfo info;
        std::memcpy(&info, CMSG_DATA(c), sizeof info);
        reinterpret_cast<sockaddr_in6*>(&local.storage)->sin6_addr = info.ipi6_addr;
      }
    }
    // Last resort: no datagram may stop the listener.
    try {
      Accept(std::span(buf.data(), static_cast<size_t>(n)), peer, local);
    } catch (const std::exception& e) {
      metrics_.error.Increment();
      ReportInternalError("tftp", "client=" + peer.ToString() +
                                      " request dropped: unexpected error: " + e.what());
    }
  }
}

void TftpServer::Accept(std::span<const uint8_t> datagram, const SockAddr& peer,
                        const SockAddr& local) {
  auto packet = ParseTftpPacket(datagram);
  if (!packet) {
    Refuse(peer, local, TftpResult::kError, TftpErrorCode::kIllegalOperation,
           "Illegal TFTP operation: " + packet.error().message, "");
    return;
  }
  auto* request = std::get_if<TftpRequest>(&*packet);
  if (request == nullptr) {
    Logger("tftp")->debug("client={} sent a non-request packet to the listening port; ignored",
                          peer.ToString());
    return;
  }
  if (request->opcode == TftpOpcode::kWriteRequest) {
    Refuse(peer, local, TftpResult::kDenied, TftpErrorCode::kAccessViolation,
           "Access violation: this TFTP server is read-only", request->filename);
    return;
  }
  std::unique_lock lock(mu_);
  size_t active = 0;
  size_t from_client = 0;
  for (const auto& t : transfers_) {
    if (t->done) {
      continue;
    }
    ++active;
    if (t->peer.SameHost(peer)) {
      ++from_client;
    }
    // The client resent its RRQ before our first packet reached it. Only an
    // identical request that has had no answer yet: a PXE ROM that aborts a
    // tsize probe and asks again from the same port gets a new transfer.
    if (!t->heard_from_client && t->request == *request && t->peer.SameAs(peer)) {
      return;
    }
  }
  // The per-client limit first, so a host that fills the server is told it
  // is the one over its share.
  if (from_client >= options_.max_transfers_per_client) {
    lock.unlock();
    Refuse(peer, local, TftpResult::kClientLimit, TftpErrorCode::kNotDefined,
           "too many transfers from this address (" + std::to_string(from_client) +
               " in progress), try again",
           request->filename);
    return;
  }
  if (active >= options_.max_transfers) {
    lock.unlock();
    Refuse(peer, local, TftpResult::kBusy, TftpErrorCode::kNotDefined,
           "server busy (" + std::to_string(active) + " transfers in progress), try again",
           request->filename);
    return;
  }
  auto transfer = std::make_unique<Transfer>();
  transfer->peer = peer;
  transfer->local = local;
  transfer->request = std::move(*request);
  Transfer* raw = transfer.get();
  transfers_.push_back(std::move(transfer));
  metrics_.active.Increment();
  try {
    raw->thread = std::thread([this, raw] { Serve(*raw); });
  } catch (const std::system_error&) {  // out of threads: refuse like a full server
    transfers_.pop_back();
    metrics_.active.Decrement();
    lock.unlock();
    Refuse(peer, local, TftpResult::kBusy, TftpErrorCode::kNotDefined,
           "server busy (cannot start a transfer), try again", "");
  }
}

void TftpServer::Serve(Transfer& transfer) {
  auto log = Logger("tftp");
  const auto started = std::chrono::steady_clock::now();
  const TftpRequest& request = transfer.request;
  TftpResult result = TftpResult::kError;
  std::string message;
  uint64_t delivered = 0;  // file bytes the client acknowledged
  TftpNegotiation negotiation;

  auto fd_or = OpenTransferSocket(transfer.local, transfer.peer);
  int fd = fd_or ? *fd_or : -1;
  auto send = [&](const std::vector<uint8_t>& packet) {
    if (fd >= 0) {
      // A lost datagram is as good as a dropped one: the retransmit covers it.
      [[maybe_unused]] auto n = ::send(fd, packet.data(), packet.size(), 0);
    }
  };
  auto send_error = [&](TftpErrorCode code, const std::string& text) {
    send(EncodeTftpError(code, text));
  };

  // Waits up to `deadline` for an ACK (kAck, `block` set). kAbort on Stop(),
  // a client ERROR or a socket error, with `result` and `message` set.
  // Anything else from the client is skipped.
  enum class Wait { kAck, kTimeout, kAbort };
  std::vector<uint8_t> buf(kMaxClientPacket);
  auto wait_ack = [&](std::chrono::steady_clock::time_point deadline, uint16_t& block) -> Wait {
    for (;;) {
      auto left =
          std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        return Wait::kTimeout;
      }
      pollfd fds[2] = {{fd, POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
      int ready = ::poll(fds, 2, static_cast<int>(left.count()));
      if (ready < 0 && errno == EINTR) {
        continue;
      }
      if (fds[1].revents & POLLIN) {
        send_error(TftpErrorCode::kNotDefined, "server shutting down");
        result = TftpResult::kError;
        message = "server shutting down";
        return Wait::kAbort;
      }
      if (ready <= 0 || !(fds[0].revents & (POLLIN | POLLERR))) {
        continue;
      }
      ssize_t n = ::recv(fd, buf.data(), buf.size(), MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) {
          continue;
        }
        result = TftpResult::kError;
        message = "client unreachable: " + Errno(errno);
        return Wait::kAbort;
      }
      auto packet = ParseTftpPacket(std::span(buf.data(), static_cast<size_t>(n)));
      if (!packet) {
        continue;  // garbage from the client's port: ignore
      }
      transfer.heard_from_client = true;
      if (auto* ack = std::get_if<TftpAck>(&*packet)) {
        block = ack->block;
        return Wait::kAck;
      }
      if (auto* err = std::get_if<TftpErrorPacket>(&*packet)) {
        result = TftpResult::kError;
        message = "client aborted: code " + std::to_string(static_cast<int>(err->code)) + " \"" +
                  ForLog(err->message) + "\"";
        return Wait::kAbort;
      }
    }
  };

  // The progress deadline: reset only by an ACK that acknowledges something
  // new (ACK 0 for the OACK, or a block in the window).
  auto last_progress = std::chrono::steady_clock::now();
  auto stalled = [&](std::chrono::steady_clock::time_point now) {
    if (now < last_progress + options_.progress_deadline) {
      return false;
    }
    result = TftpResult::kTimeout;
    message = "no progress for " + DurationText(options_.progress_deadline) +
              " (progress deadline), transfer dropped";
    return true;
  };

  auto run = [&] {
    if (!fd_or) {
      message = fd_or.error().message;
      return;
    }
    if (request.mode != "octet" && request.mode != "netascii") {
      message = "Illegal TFTP operation: mode \"" + ForLog(request.mode) +
                "\" not supported (want octet or netascii)";
      send_error(TftpErrorCode::kIllegalOperation, message);
      return;
    }
    TftpResolved resolved = ResolveTftpPath(request.filename, options_.roots);
    if (resolved.result != TftpResult::kOk) {
      result = resolved.result;
      message = resolved.message;
      send_error(result == TftpResult::kNotFound ? TftpErrorCode::kFileNotFound
                                                 : TftpErrorCode::kAccessViolation,
                 message);
      return;
    }
    int file = ::open(resolved.path.c_str(), O_RDONLY | O_CLOEXEC);
    if (file < 0) {
      const int err = errno;
      result = err == ENOENT ? TftpResult::kNotFound : TftpResult::kDenied;
      message = (err == ENOENT ? "File not found: \"" : "Access violation: \"") +
                ForLog(request.filename) + "\": " + Errno(err);
      send_error(err == ENOENT ? TftpErrorCode::kFileNotFound : TftpErrorCode::kAccessViolation,
                 message);
      return;
    }
    BlockReader reader(file, request.mode == "netascii");
    auto size = reader.TransferSize();
    negotiation = NegotiateTftpOptions(request.options, options_.limits,
                                       size ? std::optional<uint64_t>(*size) : std::nullopt);
    const auto timeout =
        negotiation.timeout
            ? std::chrono::duration_cast<std::chrono::milliseconds>(*negotiation.timeout)
            : options_.retransmit_timeout;
    uint16_t acked_block = 0;

    // RFC 2347: OACK, answered by ACK 0, before DATA 1.
    if (!negotiation.acknowledged.empty()) {
      const auto oack = EncodeTftpOptionAck(negotiation.acknowledged);
      for (int tries = 0;; ++tries) {
        if (tries > options_.max_retries) {
          result = TftpResult::kTimeout;
          message = "no ACK for the OACK after " + std::to_string(tries) + " sends";
          return;
        }
        send(oack);
        Wait w = Wait::kTimeout;
        const auto deadline = std::min(std::chrono::steady_clock::now() + timeout,
                                       last_progress + options_.progress_deadline);
        while ((w = wait_ack(deadline, acked_block)) == Wait::kAck && acked_block != 0) {
        }
        if (w == Wait::kAbort) {
          return;
        }
        if (w == Wait::kAck) {
          last_progress = std::chrono::steady_clock::now();
          break;
        }
        if (stalled(std::chrono::steady_clock::now())) {
          return;
        }
      }
    }

    // DATA: up to window_size blocks in flight (RFC 7440; 1 is RFC 1350's
    // lock-step). Each block is sent once when it enters the window; an ACK
    // slides the window and only the blocks that enter it are sent. Only a
    // timeout resends, and then the whole unacknowledged window. So no ACK,
    // duplicate or in-window, makes the server send more than it
    // acknowledges (the "Sorcerer's Apprentice" bug, and its windowed form).
    struct Block {
      uint16_t number;
      size_t payload;
      std::vector<uint8_t> datagram;
    };
    std::deque<Block> window;  // sent, not yet acknowledged; oldest first
    uint64_t next_index = 1;
    bool last_read = false;
    auto send_block = [&](const Block& b) {
      send(b.datagram);
      metrics_.bytes_sent.Increment(static_cast<double>(b.payload));
    };
    auto fill = [&]() -> bool {
      while (!last_read && window.size() < negotiation.window_size) {
        auto chunk = reader.Next(negotiation.block_size);
        if (!chunk) {
          message = "reading " + resolved.path.string() + ": " + chunk.error().message;
          send_error(TftpErrorCode::kNotDefined, "read error on the server");
          return false;
        }
        last_read = chunk->size() < negotiation.block_size;
        const auto number = static_cast<uint16_t>(next_index++ & 0xffff);
        const auto* bytes = reinterpret_cast<const uint8_t*>(chunk->data());
        window.push_back(
            Block{number, chunk->size(), EncodeTftpData(number, std::span(bytes, chunk->size()))});
        send_block(window.back());
      }
      return true;
    };
    if (!fill()) {
      return;
    }
    int retries = 0;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      uint16_t block = 0;
      Wait w = wait_ack(std::min(deadline, last_progress + options_.progress_deadline), block);
      if (w == Wait::kAbort) {
        return;
      }
      const auto now = std::chrono::steady_clock::now();
      if (w == Wait::kTimeout) {
        if (stalled(now)) {
          return;
        }
        if (++retries > options_.max_retries) {
          result = TftpResult::kTimeout;
          message = "no ACK for block " + std::to_string(window.front().number) + " after " +
                    std::to_string(retries) + " sends";
          return;
        }
        std::for_each(window.begin(), window.end(), send_block);
        deadline = now + timeout;
        continue;
      }
      auto it = std::find_if(window.begin(), window.end(),
                             [&](const Block& b) { return b.number == block; });
      if (it == window.end()) {
        continue;  // a duplicate or stale ACK: nothing new, nothing sent
      }
      for (auto b = window.begin(); b != std::next(it); ++b) {
        delivered += b->payload;
      }
      window.erase(window.begin(), std::next(it));
      if (last_read && window.empty()) {
        result = TftpResult::kOk;
        return;
      }
      last_progress = now;
      retries = 0;
      deadline = now + timeout;
      if (!fill()) {
        return;
      }
    }
  };
  // Last resort: a transfer that throws (out of memory) ends as an error and
  // still frees its slot.
  try {
    run();
  } catch (const std::exception& e) {
    result = TftpResult::kError;
    message = std::string("unexpected error: ") + e.what();
    ReportInternalError("tftp", "transfer ended: " + message);
  }

  if (fd >= 0) {
    ::close(fd);
  }
  Count(result);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - started)
                      .count();
  // Timeouts and errors may need an operator; a missing or refused file is
  // the client's business (PXE ROMs probe for files).
  auto level = result == TftpResult::kTimeout || result == TftpResult::kError ? spdlog::level::warn
                                                                              : spdlog::level::info;
  log->log(level,
           "transfer client={} file=\"{}\" mode={} result={} bytes={} duration_ms={} blksize={} "
           "windowsize={}{}",
           transfer.peer.ToString(), ForLog(request.filename), ForLog(request.mode),
           TftpResultName(result), delivered, ms, negotiation.block_size, negotiation.window_size,
           message.empty() ? "" : " message=\"" + ForLog(message) + "\"");
  metrics_.active.Decrement();
  transfer.done = true;
}

}  // namespace ironboot::bootserver
