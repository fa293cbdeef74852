#include "bootserver/http_server.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

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
#include <unordered_map>

#include "bootserver/tls_context.h"
#include "common/internal_errors.h"
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
  std::string client;  // remote address: the per-client connection count's key
};

namespace {

// A warning at most every 10 s; what was not logged in between is counted and
// said with the next one. Thread-safe.
class RateLimitedWarning {
 public:
  // Returns how many calls were suppressed since the last logged one, or -1
  // when this call must stay silent.
  long Take() {
    auto now = std::chrono::steady_clock::now();
    std::lock_guard lock(mu_);
    if (logged_once_ && now - last_ < std::chrono::seconds(10)) {
      ++suppressed_;
      return -1;
    }
    logged_once_ = true;
    last_ = now;
    return std::exchange(suppressed_, 0);
  }

 private:
  std::mutex mu_;
  std::chrono::steady_clock::time_point last_;  // guarded by mu_
  bool logged_once_ = false;                    // guarded by mu_
  long suppressed_ = 0;                         // guarded by mu_
};

constexpr std::string_view kBusyReply =
    "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
    "Content-Length: 43\r\nConnection: close\r\nRetry-After: 1\r\n\r\n"
    "503 too many connections, try again later\n\n";

bool IsOutOfResources(const boost::system::error_code& ec) {
  return ec == boost::asio::error::no_descriptors ||
         ec == boost::system::errc::too_many_files_open_in_system ||
         ec == boost::asio::error::no_buffer_space || ec == boost::asio::error::no_memory;
}

}  // namespace

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
  void OnAccept(beast::error_code ec, tcp::socket socket);
  // Out of file descriptors: answers pending connections 503 through the
  // reserve descriptor, then accepts again after a growing pause.
  void ShedWithoutDescriptors(const beast::error_code& ec);
  // Accepts again after a pause that doubles while accepting keeps failing
  // (10 ms to 1 s; a successful accept resets it).
  void AcceptAfterPause();
  // Answers 503 without reading, best effort, and closes.
  void Refuse(tcp::socket& socket, std::string_view why, const std::string& client);

  // False when `client` already has max_connections_per_client connections.
  // Only the acceptor's strand adds connections, so the answer holds until
  // its Register.
  bool ClientHasRoom(const std::string& client) const;
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
  std::unordered_map<std::string, size_t> per_client_;  // open connections, guarded by mu_
  std::atomic<bool> draining_{false};
  std::atomic<size_t> active_{0};
  // Set by Start (options_.max_connections lowered to the open-file limit).
  size_t max_connections_ = 0;
  // /dev/null held open so that, out of descriptors, one can be freed to
  // accept a waiting connection and tell it 503. Used on the acceptor's strand.
  int reserve_fd_ = -1;
  std::chrono::milliseconds accept_pause_{0};  // on the acceptor's strand
  RateLimitedWarning refuse_warning_;
  RateLimitedWarning accept_warning_;

  // Constant after construction.
  const ServerOptions options_;
  const BootHandler* handler_;
  net::io_context ioc_;
  tcp::acceptor acceptor_;
  net::steady_timer accept_timer_{acceptor_.get_executor()};
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
  Session(tcp::socket&& socket, HttpServer::Impl* server, TlsContextPtr tls, std::string client)
      : tls_(std::move(tls)),
        stream_(MakeStream(std::move(socket), tls_.get())),
        send_timer_(stream_.get_executor()),
        server_(server),
        client_(std::move(client)) {
    this->client = client_;
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
    if (buffer_.capacity() > 16 * 1024) {
      buffer_.shrink_to_fit();  // an idle connection keeps no large buffer
    }
    lowest().expires_after(requests_ == 0 ? server_->options_.first_byte_timeout
                                          : server_->options_.idle_timeout);
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

  // The header first: what it announces decides whether a body is read at all
  // (Beast 1.74 applies no limit to chunk extensions and trailers, so a
  // chunked body is never parsed).
  void ReadRequest() {
    ++requests_;
    parser_.emplace();
    parser_->header_limit(server_->options_.header_limit);
    parser_->body_limit(server_->options_.body_limit);
    lowest().expires_after(server_->options_.read_timeout);
    http::async_read_header(stream_, buffer_, *parser_,
                            beast::bind_front_handler(&Session::OnHeader, shared_from_this()));
  }

  void OnHeader(beast::error_code ec, size_t n) {
    if (ec) {
      OnRead(ec, n);
      return;
    }
    if (auto refusal = Refusal(parser_->get())) {
      start_ = std::chrono::steady_clock::now();
      const auto& msg = parser_->get();
      keep_alive_ = false;  // the body, if any, is not read: the connection ends
      method_ = std::string(msg.method_string());
      target_ = LoggableTarget(msg.target());
      head_ = false;
      refusal->handler = "other";
      Respond(std::move(*refusal), msg.version());
      return;
    }
    body_unread_ = !parser_->is_done() && !MayCarryBody(parser_->get());
    if (parser_->is_done() || body_unread_) {
      // A body where none is taken (POST /ipxe, DELETE ...) is never read:
      // the route answers (405) and the connection ends.
      OnRead({}, 0);
      return;
    }
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&Session::OnRead, shared_from_this()));
  }

  // What a request's header alone earns: a body only on POST to one of
  // body_paths and only with Content-Length (RFC 9112 6.1: a server may
  // answer 411 to chunked; a coding list it does not take is 400 and close),
  // exactly one Host on HTTP/1.1 (RFC 9112 3.2). nullopt: go on.
  std::optional<Reply> Refusal(const http::request_header<>& msg) const {
    if (msg.count(http::field::transfer_encoding) > 0) {
      auto te = msg[http::field::transfer_encoding];
      if (msg.count(http::field::transfer_encoding) == 1 && beast::iequals(te, "chunked")) {
        return TextReply(http::status::length_required,
                         "411 length required: send the body with Content-Length, "
                         "not Transfer-Encoding: chunked\n");
      }
      return TextReply(http::status::bad_request,
                       "400 bad request: Transfer-Encoding is not accepted\n");
    }
    size_t hosts = msg.count(http::field::host);
    if (hosts > 1 || (hosts == 0 && msg.version() >= 11)) {
      return TextReply(http::status::bad_request,
                       hosts == 0 ? "400 bad request: an HTTP/1.1 request needs a Host header\n"
                                  : "400 bad request: more than one Host header\n");
    }
    bool safe = msg.method() == http::verb::get || msg.method() == http::verb::head;
    if (safe && parser_->content_length().value_or(0) > 0) {
      const auto& allowed = server_->options_.body_paths;
      return TextReply(http::status::payload_too_large,
                       "413 request body not accepted: only POST " +
                           (allowed.empty() ? std::string("(none)") : allowed.front()) +
                           " carries a body\n");
    }
    return std::nullopt;
  }

  // POST to one of body_paths: the only requests whose body is read.
  bool MayCarryBody(const http::request_header<>& msg) const {
    std::string_view target = msg.target();
    std::string_view path = target.substr(0, target.find('?'));
    const auto& allowed = server_->options_.body_paths;
    return msg.method() == http::verb::post &&
           std::find(allowed.begin(), allowed.end(), path) != allowed.end();
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
    keep_alive_ = msg.keep_alive() && !body_unread_;
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
    Reply reply;
    bool handled = GuardInternal("http", [&] { reply = server_->handler_->Handle(req); });
    if (!handled) {
      // A bug in a handler: this request gets 500, the server goes on.
      reply = TextReply(http::status::internal_server_error,
                        "500 internal error (logged by the server)\n");
      reply.handler = "other";
      keep_alive_ = false;
    }
    Respond(std::move(reply), msg.version());
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
    parser_.reset();  // an idle connection keeps no request (or its body)
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
  uint64_t requests_ = 0;  // begun on this connection
  bool body_unread_ = false;  // the request's body was left unread: close after it
  bool keep_alive_ = false;
  bool head_ = false;
  bool idle_ = false;
  bool closed_ = false;
  bool timed_out_ = false;
};

bool HttpServer::Impl::ClientHasRoom(const std::string& client) const {
  std::lock_guard lock(mu_);
  auto it = per_client_.find(client);
  return it == per_client_.end() || it->second < options_.max_connections_per_client;
}

void HttpServer::Impl::Register(const std::shared_ptr<SessionBase>& s) {
  std::lock_guard lock(mu_);
  ++per_client_[s->client];
  sessions_.push_front(s);
  s->registration = sessions_.begin();
  active_.fetch_add(1);
}

void HttpServer::Impl::Unregister(SessionBase* s) {
  std::lock_guard lock(mu_);
  sessions_.erase(s->registration);
  if (auto it = per_client_.find(s->client); it != per_client_.end() && --it->second == 0) {
    per_client_.erase(it);
  }
  if (active_.fetch_sub(1) == 1) {
    drained_.notify_all();
  }
}

namespace {

// Raises the soft open-file limit to the hard one (as Go's runtime does for
// Matchbox) and returns `wanted` lowered, with a warning, to what that limit
// allows: two descriptors a connection (socket, file being sent), and a part
// kept for everything else (git, TLS files, the Talos API, TFTP).
size_t ConnectionsWithinFileLimit(size_t wanted, const std::string& address) {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
    return wanted;
  }
  if (rl.rlim_cur < rl.rlim_max) {
    rlimit raised = rl;
    raised.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) {
      rl = raised;
    }
  }
  if (rl.rlim_cur == RLIM_INFINITY) {
    return wanted;
  }
  size_t files = static_cast<size_t>(rl.rlim_cur);
  size_t kept = std::min<size_t>(files / 2, 256);
  size_t allowed = std::max<size_t>(1, (files - kept) / 2);
  if (wanted > allowed) {
    Logger("http")->warn(
        "listener {}: -max-connections {} lowered to {}: the open-file limit is {} (raise "
        "LimitNOFILE= in the unit, or ulimit -n)",
        address, wanted, allowed, files);
    return allowed;
  }
  return wanted;
}

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
  max_connections_ = ConnectionsWithinFileLimit(options_.max_connections, options_.address);
  reserve_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  Accept();
  for (int i = 0; i < std::max(1, options_.threads); ++i) {
    threads_.emplace_back([this] {
      SetThreadName("http");
      // A throw out of a completion handler costs that connection, not the
      // thread: run() is entered again.
      while (!GuardInternal("http", [this] { ioc_.run(); })) {
      }
    });
  }
  return port;
}

void HttpServer::Impl::Accept() {
  acceptor_.async_accept(net::make_strand(ioc_),
                         [this](beast::error_code ec, tcp::socket socket) {
                           OnAccept(ec, std::move(socket));
                         });
}

void HttpServer::Impl::OnAccept(beast::error_code ec, tcp::socket socket) {
  if (ec) {
    if (ec == net::error::operation_aborted || !acceptor_.is_open()) {
      return;
    }
    if (IsOutOfResources(ec)) {
      ShedWithoutDescriptors(ec);
      return;
    }
    if (long quiet = accept_warning_.Take(); quiet >= 0) {
      log_->warn("accept failed: {} ({} more since the last warning)", ec.message(), quiet);
    }
    AcceptAfterPause();
    return;
  }
  accept_pause_ = std::chrono::milliseconds(0);
  beast::error_code ep_ec;
  auto ep = socket.remote_endpoint(ep_ec);
  std::string client = ep_ec ? "unknown" : ep.address().to_string();
  if (active_.load() >= max_connections_) {
    Refuse(socket, "connections open: " + std::to_string(active_.load()) + " (limit " +
                       std::to_string(max_connections_) + ")",
           client);
  } else if (!ClientHasRoom(client)) {
    Refuse(socket, "this client already has " +
                       std::to_string(options_.max_connections_per_client) +
                       " connections open (-max-connections-per-client)",
           client);
  } else if (auto tls = tls_context()) {
    auto session =
        std::make_shared<Session<TlsStream>>(std::move(socket), this, std::move(tls), client);
    Register(session);
    session->Run();
  } else {
    auto session = std::make_shared<Session<PlainStream>>(std::move(socket), this, nullptr, client);
    Register(session);
    session->Run();
  }
  if (!draining_) {
    Accept();
  }
}

void HttpServer::Impl::Refuse(tcp::socket& socket, std::string_view why, const std::string& client) {
  beast::error_code ignored;
  socket.non_blocking(true, ignored);
  socket.write_some(net::buffer(kBusyReply.data(), kBusyReply.size()), ignored);
  socket.close(ignored);
  if (long quiet = refuse_warning_.Take(); quiet >= 0) {
    log_->warn("client={} connection refused with 503: {} ({} more refused since the last "
               "warning)",
               client, why, quiet);
  }
}

void HttpServer::Impl::ShedWithoutDescriptors(const beast::error_code& ec) {
  // accept(2) fails while the connection stays queued, so accepting again at
  // once spins; and a queued client would wait in silence. Free the reserve
  // descriptor, take the waiting connections one by one and tell them 503.
  int shed = 0;
  while (shed < 64 && reserve_fd_ >= 0) {
    ::close(reserve_fd_);
    int fd = ::accept4(acceptor_.native_handle(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd >= 0) {
      (void)!::send(fd, kBusyReply.data(), kBusyReply.size(), MSG_NOSIGNAL);
      ::close(fd);
      ++shed;
    }
    reserve_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      break;
    }
  }
  AcceptAfterPause();
  if (long quiet = accept_warning_.Take(); quiet >= 0) {
    rlimit rl{};
    getrlimit(RLIMIT_NOFILE, &rl);
    log_->warn("cannot accept connections: {} (open-file limit {}, {} connections open); "
               "answered {} waiting connection(s) 503; accepting again in {} ms ({} more "
               "since the last warning)",
               ec.message(), static_cast<unsigned long long>(rl.rlim_cur), active_.load(), shed,
               accept_pause_.count(), quiet);
  }
}

void HttpServer::Impl::AcceptAfterPause() {
  accept_pause_ = std::clamp(accept_pause_ * 2, std::chrono::milliseconds(10),
                             std::chrono::milliseconds(1000));
  accept_timer_.expires_after(accept_pause_);
  accept_timer_.async_wait([this](beast::error_code tec) {
    if (!tec && !draining_ && acceptor_.is_open()) {
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
    accept_timer_.cancel();
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
  if (reserve_fd_ >= 0) {
    ::close(reserve_fd_);
    reserve_fd_ = -1;
  }
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
