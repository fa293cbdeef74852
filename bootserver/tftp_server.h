#pragma once
// bootserver/: a built-in, read-only TFTP server (RFC 1350; options of RFC
// 2347-2349 and windowsize of RFC 7440) so one ironboot process can chainload
// PXE clients into iPXE without dnsmasq. Plain POSIX UDP sockets: one listener
// thread, and one thread with its own ephemeral socket per transfer (the
// server's transfer ID, as RFC 1350 requires). See bootserver/TFTP.md.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include "bootserver/tftp_packet.h"
#include "common/error.h"

namespace ironboot::bootserver {

// A directory files are served from.
struct TftpRoot {
  std::filesystem::path dir;
  // Empty: every regular file under `dir`; a symlink is followed only if it
  // resolves inside `dir`. Non-empty: only these names, directly in `dir`,
  // followed wherever their symlinks point (a trusted, packaged directory:
  // Debian's /usr/lib/ipxe/ipxe.efi is a link to /boot/ipxe.efi).
  std::set<std::string> only;
  // True: a missing `dir` is logged as a warning at Start() and skipped.
  // False: Start() fails.
  bool optional = false;
};

// Where Debian's `ipxe` package installs its binaries.
inline constexpr const char* kDebianIpxeDir = "/usr/lib/ipxe";
// The iPXE binaries of Debian's `ipxe` package: undionly.kpxe (BIOS),
// ipxe.efi and snponly.efi (UEFI), as an optional root.
TftpRoot DebianIpxeRoot(std::filesystem::path dir = kDebianIpxeDir);
// The roots `ironboot serve` uses: `tftp_root` (the -tftp-root flag, required
// to exist) when given, then Debian's iPXE binaries (optional).
std::vector<TftpRoot> DefaultTftpRoots(const std::optional<std::filesystem::path>& tftp_root);

struct TftpOptions {
  // "host:port", "[v6]:port" or ":port" (all IPv4 addresses). Port 0 picks one.
  std::string address = "0.0.0.0:69";
  // Searched in order; the first root holding the name serves it.
  std::vector<TftpRoot> roots;
  // More concurrent transfers than this are refused with "server busy".
  size_t max_transfers = 64;
  // More concurrent transfers from one client address (any port) than this
  // are refused with "too many transfers from this address", so one host
  // cannot take every slot.
  size_t max_transfers_per_client = 4;
  // Wait for an ACK this long before sending again (a client's "timeout"
  // option, at most limits.max_timeout_seconds, overrides it for its
  // transfer), and give up after this many retransmissions of the same packet.
  std::chrono::milliseconds retransmit_timeout{1000};
  int max_retries = 5;
  // A transfer whose client acknowledges nothing new for this long is dropped
  // (result "timeout"), whatever timeout it negotiated and however many
  // duplicate ACKs it sends.
  std::chrono::milliseconds progress_deadline{20000};
  TftpLimits limits;
};

// Counters read by /metrics and by tests.
struct TftpMetrics {
  explicit TftpMetrics(prometheus::Registry& registry);
  // ironboot_tftp_requests_total{result}: one per request, by outcome.
  prometheus::Counter& ok;            // whole file sent and acknowledged
  prometheus::Counter& not_found;     // no root holds the file
  prometheus::Counter& denied;        // traversal, outside-root symlink, WRQ, unreadable
  prometheus::Counter& busy;          // refused: max_transfers reached
  prometheus::Counter& client_limit;  // refused: max_transfers_per_client reached
  prometheus::Counter& timeout;       // the client stopped acknowledging or made no progress
  prometheus::Counter& error;         // malformed request, bad mode, client abort, I/O error
  // ironboot_tftp_bytes_sent_total: DATA payload bytes put on the wire,
  // retransmissions included.
  prometheus::Counter& bytes_sent;
  // ironboot_tftp_transfers_active: transfers in progress.
  prometheus::Gauge& active;
};

// Outcome label values of ironboot_tftp_requests_total.
enum class TftpResult { kOk, kNotFound, kDenied, kBusy, kClientLimit, kTimeout, kError };
const char* TftpResultName(TftpResult result);

// Where a request's filename leads, or why it leads nowhere.
struct TftpResolved {
  TftpResult result = TftpResult::kOk;  // kOk, kNotFound or kDenied
  std::filesystem::path path;           // the file to open when kOk
  std::string message;                  // for the ERROR packet otherwise
};
// Resolves a requested filename against `roots` in order: a leading '/' is
// dropped, '\' counts as '/', any ".." component is refused, and a file whose
// real path leaves its root (symlink) is refused. Touches the filesystem
// (stat, realpath) but opens nothing.
TftpResolved ResolveTftpPath(std::string_view filename, const std::vector<TftpRoot>& roots);

// A UDP peer or local address (defined in tftp_server.cpp).
struct TftpEndpoint;

// The server. Start() once, Stop() (or destroy) once; thread-safe.
class TftpServer {
 public:
  TftpServer(TftpOptions options, std::shared_ptr<prometheus::Registry> registry);
  ~TftpServer();
  TftpServer(const TftpServer&) = delete;
  TftpServer& operator=(const TftpServer&) = delete;

  // Binds the listening socket and starts serving. Returns the bound port.
  // Fails (kInvalid) on a malformed address or a missing non-optional root,
  // (kUnavailable) when the address cannot be bound.
  Result<uint16_t> Start();
  // Stops listening, aborts transfers in progress and joins every thread.
  void Stop();

  uint16_t port() const { return port_; }
  const TftpMetrics& metrics() const { return metrics_; }

 private:
  struct Transfer;
  struct RefusalLog {
    std::chrono::steady_clock::time_point logged;
    uint64_t suppressed = 0;
  };
  void Listen();
  // Handles one datagram that reached the listening socket.
  void Accept(std::span<const uint8_t> datagram, const TftpEndpoint& peer,
              const TftpEndpoint& local);
  void Serve(Transfer& transfer);
  // Sends an ERROR for a request that starts no transfer, counts it, and logs
  // it unless this client address was logged within the last minute.
  void Refuse(const TftpEndpoint& peer, const TftpEndpoint& local, TftpResult result,
              TftpErrorCode code, const std::string& message, std::string_view file);
  void Count(TftpResult result);
  void Reap(bool all);

  // Constant after Start().
  TftpOptions options_;
  std::shared_ptr<prometheus::Registry> registry_;
  TftpMetrics metrics_;
  int socket_ = -1;
  int stop_pipe_[2] = {-1, -1};  // written once by Stop(); every thread polls [0]
  uint16_t port_ = 0;
  std::thread listener_;

  // Listener thread only: when each client address last had a refusal
  // logged, and how many were not logged since.
  std::map<std::string, RefusalLog> refusal_log_;

  std::mutex mu_;
  std::list<std::unique_ptr<Transfer>> transfers_;  // guarded by mu_
  std::atomic<bool> stopping_{false};
};

}  // namespace ironboot::bootserver
