#include "bootserver/http_server.h"

#include <sys/sendfile.h>

#include <csignal>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <algorithm>
#include <condition_variable>
#include <list>
#include <mutex>

#include "bootserver/tls_context.h"
#include "common/log.h"
#include "common/thread_name.h"

namespace ironboot::bootserver {

namespace beast = boost::beast;
namespace net = boost::asio;
using tcp = net::ip::tcp;
namespace ssl = net::ssl;

std::string LoggableTarget(std::string_view target) {
  std::string out;
  size_t q = target.find('?');
  out.append(target.substr(0, q));
  if (q != std::string_view::npos) {
    std::string_view query = target.substr(q + 1);
    out += '?';
    bool first = true;
    while (!query.empty()) {
      size_t amp = query.find('&');
      std::string_view part = query.substr(0, amp);
      query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
      size_t eq = part.find('=');
      std::string_view key = part.substr(0, eq);
      if (!first) {
        out += '&';
      }
      first = false;
      if (eq != std::string_view::npos &&
          (key == "token" || key == "secret" || key == "password" || key == "access_token")) {
        out.append(key);
        out += "=***";
      } else {
        out.append(part);
      }
    }
  }
  if (out.size() > 512) {
    out.resize(509);
    out += "...";
  }
  return out;
}

// What the server needs of a session of either stream type.
class SessionBase {
 public:
  virtual ~SessionBase() = default;
  // Called on shutdown: a connection waiting for a request is closed now; one
  // inside a request finishes it first (keep-alive is off while draining).
  virtual void Drain() = 0;
  virtual void ForceClose() = 0;
  std::list<std::weak_ptr<SessionBase>>::iterator registration;
};

class HttpServer::Impl {
 public:
  Impl(ServerOptions options, const BootHandler* handler)
      : options_(std::move(options)),
        handler_(handler),
        ioc_(options_.threads),
        acceptor_(net::make_strand(ioc_)),
        work_(net::make_work_guard(ioc_)) {}

  Result<uint16_t> Start();
  void Shutdown(std::chrono::milliseconds grace);
  void Accept();

  void Register(const std::shared_ptr<SessionBase>& s);
  void Unregister(SessionBase* s);
  TlsContextPtr tls_context() const {
    std::lock_guard lock(mu_);
    return tls_context_;
  }
  size_t active() const { return active_.load(); }

  // Declared first so they outlive ioc_, whose destructor may destroy sessions.
  mutable std::mutex mu_;
  std::condition_variable drained_;
  std::list<std::weak_ptr<SessionBase>> sessions_;  // guarded by mu_
  bool stopped_ = false;                            // guarded by mu_
  TlsContextPtr tls_context_;  // guarded by mu_; null: plain HTTP
  std::atomic<bool> draining_{false};
  std::atomic<size_t> active_{0};

  // Constant after construction.
  const ServerOptions options_;
  const BootHandler* handler_;
  net::io_context ioc_;
  tcp::acceptor acceptor_;
  net::executor_work_guard<net::io_context::executor_type> work_;
  std::shared_ptr<spdlog::logger> log_ = Logger("http");
  std::vector<std::thread> threads_;
};

using PlainStream = beast::tcp_stream;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

// One connection. `Stream` is PlainStream or TlsStream; the TLS session does
// the handshake first and a TLS shutdown (close_notify) after its last
// response; it cannot sendfile(2), so file replies become 500 there.
template <class Stream>
class Session : public SessionBase, public std::enable_shared_from_this<Session<Stream>> {
  static constexpr bool kTls = std::is_same_v<Stream, TlsStream>;
  using std::enable_shared_from_this<Session<Stream>>::shared_from_this;

 public:
  // `tls` must be non-null for TlsStream.
  Session(tcp::socket&& socket, HttpServer::Impl* server, TlsContextPtr tls)
      : tls_(std::move(tls)),
        stream_(MakeStream(std::move(socket), tls_.get())),
        send_timer_(stream_.get_executor()),
        server_(server) {
    beast::error_code ec;
    auto ep = lowest().socket().remote_endpoint(ec);
    client_ = ec ? "unknown" : ep.address().to_string();
  }

  ~Session() override { server_->Unregister(this); }

  void Run() {
    if constexpr (kTls) {
      net::dispatch(stream_.get_executor(),
                    beast::bind_front_handler(&Session::Handshake, shared_from_this()));
    } else {
      net::dispatch(stream_.get_executor(),
                    beast::bind_front_handler(&Session::ReadIdle, shared_from_this()));
    }
  }

  // SessionBase
  void Drain() override {
    net::post(stream_.get_executor(), [self = shared_from_this()] {
      if (self->idle_) {
        self->Close();
      }
    });
  }

  void ForceClose() override {
    net::post(stream_.get_executor(), [self = shared_from_this()] { self->Close(); });
  }

 private:
  static Stream MakeStream(tcp::socket&& socket, ssl::context* tls) {
    if constexpr (kTls) {
      return Stream(std::move(socket), *tls);
    } else {
      return Stream(std::move(socket));
    }
  }

  beast::tcp_stream& lowest() { return beast::get_lowest_layer(stream_); }

  // TLS: the handshake, within the read timeout. A failure (a plain-HTTP
  // client, a client that does not trust the certificate) is logged and the
  // connection closed.
  void Handshake() {
    if constexpr (kTls) {
      lowest().expires_after(server_->options_.read_timeout);
      stream_.async_handshake(
          ssl::stream_base::server, [self = shared_from_this()](beast::error_code ec) {
            if (ec) {
              self->server_->log_->info("client={} scheme=https TLS handshake failed: {}",
                                        self->client_, ec.message());
              self->Close();
              return;
            }
            self->ReadIdle();
          });
    }
  }

  // Waits for the first byte of the next request (keep-alive idle state).
  void ReadIdle() {
    if (buffer_.size() > 0) {
      ReadRequest();
      return;
    }
    if (server_->draining_) {
      Close();
      return;
    }
    idle_ = true;
    lowest().expires_after(server_->options_.idle_timeout);
    stream_.async_read_some(buffer_.prepare(4096),
                            [self = shared_from_this()](beast::error_code ec, size_t n) {
                              self->idle_ = false;
                              self->buffer_.commit(n);
                              if (ec) {
                                self->Close();
                                return;
                              }
                              self->ReadRequest();
                            });
  }

  void ReadRequest() {
    parser_.emplace();
    parser_->header_limit(server_->options_.header_limit);
    parser_->body_limit(server_->options_.body_limit);
    lowest().expires_after(server_->options_.read_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&Session::OnRead, shared_from_this()));
  }

  void OnRead(beast::error_code ec, size_t) {
    start_ = std::chrono::steady_clock::now();
    if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == net::error::operation_aborted || ec == net::error::connection_reset ||
        ec == net::error::eof || ec == ssl::error::stream_truncated ||
        ec.category() == net::error::get_ssl_category()) {
      if (ec == beast::error::timeout) {
        server_->log_->info("client={} read timed out mid-request; closing", client_);
      }
      Close();
      return;
    }
    if (ec) {
      Reply reply;
      if (ec == http::error::header_limit) {
        reply = TextReply(http::status::request_header_fields_too_large,
                          "431 request header fields too large (limit " +
                              std::to_string(server_->options_.header_limit) + " bytes)\n");
      } else if (ec == http::error::body_limit) {
        reply = TextReply(http::status::payload_too_large,
                          "413 request body too large (limit " +
                              std::to_string(server_->options_.body_limit) + " bytes)\n");
      } else {
        reply = TextReply(http::status::bad_request, "400 bad request: " + ec.message() + "\n");
      }
      reply.handler = "other";
      keep_alive_ = false;
      method_ = "-";
      target_ = "-";
      Respond(std::move(reply), 11);
      return;
    }
    const auto& msg = parser_->get();
    keep_alive_ = msg.keep_alive();
    method_ = std::string(msg.method_string());
    target_ = LoggableTarget(msg.target());
    head_ = msg.method() == http::verb::head;
    HttpRequest req{msg, client_, kTls};
    const auto& only = server_->options_.only_paths;
    if (!only.empty() && std::find(only.begin(), only.end(), req.path()) == only.end()) {
      Reply r = Matchbox404();
      r.handler = "other";
      Respond(std::move(r), msg.version());
      return;
    }
    Respond(server_->handler_->Handle(req), msg.version());
  }

  void Respond(Reply reply, unsigned version) {
    if (kTls && reply.file) {
      // No sendfile(2) through TLS; the HTTPS listener serves string replies only.
      std::string handler = std::move(reply.handler);
      reply = TextReply(http::status::internal_server_error,
                        "500 files are not served on the HTTPS listener\n");
      reply.handler = std::move(handler);
    }
    reply_ = std::move(reply);
    auto& res = reply_.res;
    res.version(version);
    res.keep_alive(keep_alive_ && !server_->draining_);
    if (!reply_.file) {
      res.content_length(res.body().size());
      if (head_) {
        res.body().clear();
      }
    } else if (head_) {
      reply_.file.reset();
    }
    body_bytes_ = 0;
    serializer_.emplace(res);
    lowest().expires_after(server_->options_.write_timeout);
    if (reply_.file) {
      http::async_write_header(stream_, *serializer_,
                               [self = shared_from_this()](beast::error_code ec, size_t) {
                                 if (ec) {
                                   self->Finish(ec);
                                   return;
                                 }
                                 self->SendFile();
                               });
    } else {
      body_bytes_ = head_ ? 0 : res.body().size();
      http::async_write(stream_, *serializer_,
                        [self = shared_from_this()](beast::error_code ec, size_t) {
                          self->Finish(ec);
                        });
    }
  }

  // Streams the file slice with sendfile(2), waiting for writability on EAGAIN.
  void SendFile() {
    if constexpr (kTls) {
      Finish(net::error::operation_not_supported);  // Respond never gets here with TLS
    } else {
      SendPlainFile();
    }
  }

  void SendPlainFile() {
    auto& sock = stream_.socket();
    beast::error_code ec;
    if (!sock.native_non_blocking()) {
      sock.native_non_blocking(true, ec);
    }
    auto& f = *reply_.file;
    size_t sent_now = 0;
    while (f.length > 0) {
      off_t off = static_cast<off_t>(f.offset);
      size_t chunk = static_cast<size_t>(std::min<uint64_t>(f.length, 1u << 22));
      ssize_t n = ::sendfile(sock.native_handle(), f.fd->get(), &off, chunk);
      if (n > 0) {
        f.offset += static_cast<uint64_t>(n);
        f.length -= static_cast<uint64_t>(n);
        body_bytes_ += static_cast<uint64_t>(n);
        sent_now += static_cast<size_t>(n);
        if (sent_now >= (16u << 20)) {
          // Be fair to other connections on this thread.
          net::post(stream_.get_executor(),
                    beast::bind_front_handler(&Session::SendFile, shared_from_this()));
          return;
        }
        continue;
      }
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        send_timer_.expires_after(server_->options_.write_timeout);
        send_timer_.async_wait([self = shared_from_this()](beast::error_code tec) {
          if (!tec) {
            self->timed_out_ = true;
            beast::error_code ignored;
            self->lowest().socket().cancel(ignored);
          }
        });
        sock.async_wait(tcp::socket::wait_write,
                        [self = shared_from_this()](beast::error_code wec) {
                          self->send_timer_.cancel();
                          if (wec || self->timed_out_) {
                            self->Finish(self->timed_out_ ? beast::error::timeout : wec);
                            return;
                          }
                          self->SendFile();
                        });
        return;
      }
      // n == 0 (file shrank) or a hard error: the client cannot get a whole body.
      Finish(n == 0 ? net::error::eof : beast::error_code(errno, beast::system_category()));
      return;
    }
    Finish({});
  }

  void Finish(beast::error_code ec) {
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    unsigned code = reply_.res.result_int();
    auto* metrics = server_->handler_->metrics();
    metrics->ObserveRequest(reply_.handler, code, seconds);
    if (reply_.handler == "assets" && body_bytes_ > 0) {
      metrics->AddAssetBytes(body_bytes_);
    }
    server_->log_->info("client={} method={} target=\"{}\" status={} bytes={} duration_ms={:.3f} group={}{}{}",
                        client_, method_, target_, code, body_bytes_, seconds * 1000.0,
                        reply_.group.empty() ? "-" : reply_.group, kTls ? " scheme=https" : "",
                        ec ? " error=\"" + ec.message() + "\"" : std::string());
    reply_ = Reply();
    serializer_.reset();
    if (ec || !keep_alive_ || server_->draining_) {
      if (kTls && !ec) {
        ShutdownTls();
        return;
      }
      Close();
      return;
    }
    ReadIdle();
  }

  // TLS: sends close_notify and waits briefly for the client's, then closes.
  // Only when no read or write is pending (after a complete response).
  void ShutdownTls() {
    if constexpr (kTls) {
      lowest().expires_after(std::min<std::chrono::milliseconds>(server_->options_.read_timeout,
                                                               std::chrono::seconds(2)));
      stream_.async_shutdown([self = shared_from_this()](beast::error_code) { self->Close(); });
    }
  }

  void Close() {
    if (closed_) {
      return;
    }
    closed_ = true;
    beast::error_code ec;
    send_timer_.cancel();
    lowest().socket().shutdown(tcp::socket::shutdown_send, ec);
    lowest().socket().close(ec);
  }

  TlsContextPtr tls_;  // keeps the context alive for the stream (null for plain)
  Stream stream_;
  net::steady_timer send_timer_;
  HttpServer::Impl* server_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<http::response_serializer<http::string_body>> serializer_;
  Reply reply_;
  std::string client_;
  std::string method_;
  std::string target_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  uint64_t body_bytes_ = 0;
  bool keep_alive_ = false;
  bool head_ = false;
  bool idle_ = false;
  bool closed_ = false;
  bool timed_out_ = false;
};

void HttpServer::Impl::Register(const std::shared_ptr<SessionBase>& s) {
  std::lock_guard lock(mu_);
  sessions_.push_front(s);
  s->registration = sessions_.begin();
  active_.fetch_add(1);
}

void HttpServer::Impl::Unregister(SessionBase* s) {
  std::lock_guard lock(mu_);
  sessions_.erase(s->registration);
  if (active_.fetch_sub(1) == 1) {
    drained_.notify_all();
  }
}

namespace {

// "host:port", "[v6]:port", ":port" (all interfaces), as Go's net.Listen takes.
Result<tcp::endpoint> ParseAddress(const std::string& address) {
  size_t colon = address.rfind(':');
  if (colon == std::string::npos) {
    return Fail(ErrorCode::kInvalid, "address \"" + address + "\": want host:port");
  }
  std::string host = address.substr(0, colon);
  std::string port_text = address.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty()) {
    host = "0.0.0.0";
  } else if (host == "localhost") {
    host = "127.0.0.1";
  }
  int port = -1;
  try {
    size_t used = 0;
    port = std::stoi(port_text, &used);
    if (used != port_text.size()) {
      port = -1;
    }
  } catch (...) {
  }
  if (port < 0 || port > 65535) {
    return Fail(ErrorCode::kInvalid,
                "address \"" + address + "\": port \"" + port_text + "\" is not a number 0-65535");
  }
  beast::error_code ec;
  auto ip = net::ip::make_address(host, ec);
  if (ec) {
    return Fail(ErrorCode::kInvalid, "address \"" + address + "\": host \"" + host +
                                         "\" is not an IP address");
  }
  return tcp::endpoint(ip, static_cast<unsigned short>(port));
}

}  // namespace

Result<uint16_t> HttpServer::Impl::Start() {
  // sendfile(2) has no MSG_NOSIGNAL: a client that aborts a download would
  // kill the process with SIGPIPE. Ignored process-wide unless the embedding
  // program installed its own handler.
  struct sigaction current {};
  if (sigaction(SIGPIPE, nullptr, &current) == 0 && current.sa_handler == SIG_DFL) {
    std::signal(SIGPIPE, SIG_IGN);
  }
  if (!options_.tls_cert_file.empty() || !options_.tls_key_file.empty()) {
    auto ctx = LoadServerTlsContext(options_.tls_cert_file, options_.tls_key_file);
    if (!ctx) {
      return std::unexpected(ctx.error());
    }
    std::lock_guard lock(mu_);
    tls_context_ = std::move(*ctx);
  }
  auto endpoint = ParseAddress(options_.address);
  if (!endpoint) {
    return std::unexpected(endpoint.error());
  }
  beast::error_code ec;
  acceptor_.open(endpoint->protocol(), ec);
  if (!ec) {
    acceptor_.set_option(net::socket_base::reuse_address(true), ec);
  }
  if (!ec) {
    acceptor_.bind(*endpoint, ec);
  }
  if (!ec) {
    acceptor_.listen(net::socket_base::max_listen_connections, ec);
  }
  if (ec) {
    return Fail(ErrorCode::kUnavailable,
                "cannot listen on " + options_.address + ": " + ec.message());
  }
  uint16_t port = acceptor_.local_endpoint().port();
  Accept();
  for (int i = 0; i < std::max(1, options_.threads); ++i) {
    threads_.emplace_back([this] {
      SetThreadName("http");
      ioc_.run();
    });
  }
  return port;
}

void HttpServer::Impl::Accept() {
  acceptor_.async_accept(net::make_strand(ioc_), [this](beast::error_code ec, tcp::socket socket) {
    if (ec) {
      if (ec == net::error::operation_aborted || !acceptor_.is_open()) {
        return;
      }
      log_->warn("accept failed: {}", ec.message());
    } else if (active_.load() >= options_.max_connections) {
      // Over the cap: answer 503 without reading, best effort, and close.
      static constexpr std::string_view kBusy =
          "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
          "Content-Length: 43\r\nConnection: close\r\n\r\n503 too many connections, try again later\n\n";
      beast::error_code ignored;
      socket.non_blocking(true, ignored);
      socket.write_some(net::buffer(kBusy.data(), kBusy.size()), ignored);
      socket.close(ignored);
      log_->warn("connection refused: {} connections open (limit {})", active_.load(),
                 options_.max_connections);
    } else if (auto tls = tls_context()) {
      auto session = std::make_shared<Session<TlsStream>>(std::move(socket), this, std::move(tls));
      Register(session);
      session->Run();
    } else {
      auto session = std::make_shared<Session<PlainStream>>(std::move(socket), this, nullptr);
      Register(session);
      session->Run();
    }
    if (!draining_) {
      Accept();
    }
  });
}

void HttpServer::Impl::Shutdown(std::chrono::milliseconds grace) {
  {
    std::lock_guard lock(mu_);
    if (stopped_) {
      return;
    }
    stopped_ = true;
  }
  draining_ = true;
  net::post(acceptor_.get_executor(), [this] {
    beast::error_code ec;
    acceptor_.close(ec);
  });
  std::vector<std::shared_ptr<SessionBase>> live;
  {
    std::lock_guard lock(mu_);
    for (auto& w : sessions_) {
      if (auto s = w.lock()) {
        live.push_back(std::move(s));
      }
    }
  }
  for (auto& s : live) {
    s->Drain();
  }
  live.clear();
  {
    std::unique_lock lock(mu_);
    drained_.wait_for(lock, grace, [this] { return active_.load() == 0; });
    if (active_.load() > 0) {
      log_->warn("shutdown deadline passed with {} connection(s) still busy; closing them",
                 active_.load());
      for (auto& w : sessions_) {
        if (auto s = w.lock()) {
          live.push_back(std::move(s));
        }
      }
    }
  }
  for (auto& s : live) {
    s->ForceClose();
  }
  live.clear();
  work_.reset();
  {
    std::unique_lock lock(mu_);
    drained_.wait_for(lock, std::chrono::seconds(2), [this] { return active_.load() == 0; });
  }
  ioc_.stop();
  for (auto& t : threads_) {
    if (t.joinable()) {
      t.join();
    }
  }
  // The close posted above may not have run before stop(): make sure the
  // port is released (no thread touches the acceptor any more).
  beast::error_code ec;
  acceptor_.close(ec);
}

HttpServer::HttpServer(ServerOptions options, const BootHandler* handler)
    : impl_(std::make_unique<Impl>(std::move(options), handler)) {}

HttpServer::~HttpServer() { Shutdown(std::chrono::milliseconds(0)); }

Result<void> HttpServer::Start() {
  auto port = impl_->Start();
  if (!port) {
    return std::unexpected(port.error());
  }
  port_ = *port;
  return {};
}

size_t HttpServer::active_connections() const { return impl_->active(); }

Result<void> HttpServer::ReloadTls() {
  if (!impl_->tls_context()) {
    return Fail(ErrorCode::kInvalid, "the listener on " + impl_->options_.address +
                                         " is not an HTTPS listener");
  }
  auto ctx = LoadServerTlsContext(impl_->options_.tls_cert_file, impl_->options_.tls_key_file);
  if (!ctx) {
    return std::unexpected(ctx.error());
  }
  std::lock_guard lock(impl_->mu_);
  impl_->tls_context_ = std::move(*ctx);
  return {};
}

void HttpServer::Shutdown(std::chrono::milliseconds grace) { impl_->Shutdown(grace); }

}  // namespace ironboot::bootserver
