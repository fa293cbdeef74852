#pragma once
// bootserver/: the network edge. A Boost.Beast HTTP/1.1 server: a session per
// connection on its own strand, a timeout on every read and write, header and
// body limits, a cap on concurrent connections, files streamed with sendfile,
// one access-log line and the metrics per request, and a graceful shutdown
// that finishes in-flight requests up to a deadline. The same server speaks
// HTTPS when given a certificate (the /config listener of `serve`).

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bootserver/handler.h"
#include "common/error.h"

namespace ironboot::bootserver {

struct ServerOptions {
  std::string address = "127.0.0.1:8080";  // host:port; port 0 picks a free port
  int threads = 2;
  // Beyond it: 503 and close. Start() lowers it to what the process's open
  // file limit allows (two descriptors a connection: socket and file).
  size_t max_connections = 4096;
  // Connections open at once from one client address; beyond it that address
  // gets 503 and close, so one host cannot take every slot.
  size_t max_connections_per_client = 64;
  // A new connection waiting for the first byte of its first request.
  std::chrono::milliseconds first_byte_timeout{10000};
  // A keep-alive connection waiting for the first byte of its next request.
  std::chrono::milliseconds idle_timeout{60000};
  // From the first byte of a request to its end (a client that stops sending
  // mid-request is cut off after this).
  std::chrono::milliseconds read_timeout{10000};
  // A response write (or one sendfile step) making no progress for this long.
  std::chrono::milliseconds write_timeout{60000};
  uint32_t header_limit = 8192;     // bytes; larger -> 431
  uint64_t body_limit = 1u << 20;   // bytes; larger -> 413
  // The only paths whose POST may carry a body, and then only with
  // Content-Length: any other request with a body gets 413, any
  // Transfer-Encoding 411 (chunked) or 400 (anything else), and the
  // connection is closed without reading the body.
  std::vector<std::string> body_paths{"/hooks/git"};
  // HTTPS: when both are set the listener speaks TLS only, with this PEM
  // certificate chain and private key (see tls_context.h; ReloadTls re-reads
  // them). Requests carry HttpRequest::tls = true. Replies that stream a file
  // are not supported over TLS (500): serve only string replies there.
  std::string tls_cert_file{};
  std::string tls_key_file{};
  // When not empty, only these exact paths are answered; any other gets 404.
  std::vector<std::string> only_paths{};
};

class HttpServer {
 public:
  // `handler` must outlive the server.
  HttpServer(ServerOptions options, const BootHandler* handler);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds, listens and starts the worker threads. Ignores SIGPIPE (unless a
  // handler is installed) and raises the soft open-file limit to the hard one,
  // as Go's runtime does for Matchbox. kInvalid for a bad address,
  // kUnavailable when the port cannot be bound (the message names the address);
  // for TLS, the errors of LoadServerTlsContext (naming the file) first.
  Result<void> Start();
  // TLS only: re-reads the certificate and key files. New connections use the
  // new ones, open connections keep theirs; on error the old ones stay in use.
  // Thread-safe.
  Result<void> ReloadTls();
  // The bound port (useful with port 0). Valid after Start.
  uint16_t port() const { return port_; }
  size_t active_connections() const;

  // Stops accepting, closes idle connections, lets in-flight requests finish
  // for up to `grace`, then closes the rest and joins the threads. Idempotent.
  void Shutdown(std::chrono::milliseconds grace);

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
  uint16_t port_ = 0;
};

// The request target as logged: values of secret query parameters (token,
// secret, password) replaced by "***", truncated to 512 bytes.
std::string LoggableTarget(std::string_view target);

}  // namespace ironboot::bootserver
