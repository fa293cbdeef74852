#include "fleet/status_server.h"

#include <boost/asio.hpp>
#include <boost/beast.hpp>

#include <thread>

namespace ironboot::fleet {
namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(tcp::socket socket, const StatusHandler* handler)
      : stream_(std::move(socket)), handler_(handler) {}

  void Read() {
    request_ = {};
    stream_.expires_after(std::chrono::seconds(10));
    http::async_read(
        stream_, buffer_, request_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
  }

 private:
  void OnRead(beast::error_code ec) {
    if (ec) {
      stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
      return;
    }
    StatusReply reply =
        (*handler_)(std::string(request_.method_string()), std::string(request_.target()));
    response_ = {};
    response_.version(request_.version());
    response_.result(static_cast<http::status>(reply.status));
    response_.set(http::field::content_type, reply.content_type);
    response_.keep_alive(request_.keep_alive());
    response_.body() = std::move(reply.body);
    response_.prepare_payload();
    http::async_write(stream_, response_,
                      [self = shared_from_this()](beast::error_code wec, size_t) {
                        if (!wec && self->response_.keep_alive()) {
                          self->Read();
                        } else {
                          self->stream_.socket().shutdown(tcp::socket::shutdown_send, wec);
                        }
                      });
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> request_;
  http::response<http::string_body> response_;
  const StatusHandler* handler_;
};

}  // namespace

class StatusServer::Impl {
 public:
  Impl(std::string address, StatusHandler handler)
      : address_(std::move(address)), handler_(std::move(handler)), acceptor_(io_) {}

  Result<void> Start() {
    auto colon = address_.rfind(':');
    if (colon == std::string::npos) {
      return Fail(ErrorCode::kInvalid, "status address \"" + address_ + "\": want host:port");
    }
    beast::error_code ec;
    auto ip = net::ip::make_address(address_.substr(0, colon), ec);
    int port = -1;
    try {
      port = std::stoi(address_.substr(colon + 1));
    } catch (...) {
    }
    if (ec || port < 0 || port > 65535) {
      return Fail(ErrorCode::kInvalid, "status address \"" + address_ + "\": want IP:port");
    }
    tcp::endpoint ep(ip, static_cast<uint16_t>(port));
    acceptor_.open(ep.protocol(), ec);
    if (!ec) {
      acceptor_.set_option(net::socket_base::reuse_address(true), ec);
      acceptor_.bind(ep, ec);
    }
    if (!ec) {
      acceptor_.listen(net::socket_base::max_listen_connections, ec);
    }
    if (ec) {
      return Fail(ErrorCode::kUnavailable, "status address " + address_ + ": " + ec.message());
    }
    port_ = acceptor_.local_endpoint().port();
    Accept();
    thread_ = std::thread([this] { io_.run(); });
    return {};
  }

  void Accept() {
    acceptor_.async_accept(net::make_strand(io_), [this](beast::error_code ec, tcp::socket socket) {
      if (ec) {
        return;  // closed
      }
      std::make_shared<Connection>(std::move(socket), &handler_)->Read();
      Accept();
    });
  }

  void Stop() {
    if (thread_.joinable()) {
      io_.stop();
      thread_.join();
    }
  }

  std::string address_;
  StatusHandler handler_;
  net::io_context io_;
  tcp::acceptor acceptor_;
  std::thread thread_;
  uint16_t port_ = 0;
};

StatusServer::StatusServer(std::string address, StatusHandler handler)
    : impl_(std::make_unique<Impl>(std::move(address), std::move(handler))) {}
StatusServer::~StatusServer() {
  Stop();
}
Result<void> StatusServer::Start() {
  return impl_->Start();
}
uint16_t StatusServer::port() const {
  return impl_->port_;
}
void StatusServer::Stop() {
  impl_->Stop();
}

}  // namespace ironboot::fleet
