#pragma once
// bootserver/: the whole route table and a pure Handle(request) -> Reply, so
// unit tests call it without sockets. The network edge is http_server.h.

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/beast/http.hpp>

#include "bootserver/config_access.h"
#include "bootserver/labels.h"
#include "bootserver/metrics.h"
#include "bootserver/store_holder.h"

namespace ironboot::bootserver {

namespace http = boost::beast::http;

// An owned file descriptor.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd();
  UniqueFd(UniqueFd&& o) noexcept : fd_(o.release()) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept;
  int get() const { return fd_; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_ = -1;
};

struct HttpRequest {
  const http::request<http::string_body>& message;
  std::string client;  // remote IP address, e.g. "127.0.0.1"
  bool tls = false;    // arrived on the HTTPS listener
  std::string_view path() const;
  std::string_view raw_query() const;
};

// A response. For files, `res` carries the status and headers (Content-Length
// set) and `file` the bytes to stream after them; `res.body()` is empty.
struct Reply {
  http::response<http::string_body> res;
  struct FileSlice {
    std::shared_ptr<UniqueFd> fd;
    uint64_t offset = 0;
    uint64_t length = 0;
  };
  std::optional<FileSlice> file;
  std::string handler;  // route name: the metrics label
  std::string group;    // selected group id, for the access log ("" if none)
  uint64_t BodyBytes() const { return file ? file->length : res.body().size(); }
};

// Builds a plain-text reply; `Matchbox404` is Go's http.NotFound exactly.
Reply TextReply(http::status status, std::string body,
                std::string content_type = "text/plain; charset=utf-8");
Reply Matchbox404();

class BootHandler {
 public:
  struct Options {
    // Canonical assets root; nullopt disables /assets/ (Matchbox's -assets-path="").
    std::optional<std::filesystem::path> assets_path;
    // Who may fetch /config (must outlive the handler). nullptr serves any
    // machine config to anyone who names its MAC: for tests and tools only;
    // `ironboot serve` always sets one.
    ConfigAccess* config_access = nullptr;
    // Called with every answered request (boot events for the observed
    // state: which MAC fetched its script, who fetched which asset). Must be
    // cheap and thread-safe; it runs on the serving thread.
    std::function<void(const HttpRequest&, const Reply&)> observer = {};
    // /config answers only requests that arrived over TLS (HttpRequest::tls);
    // others get 403, counted as denied_tls.
    bool config_tls_only = false;
    // When set, the talos.config= URL in served iPXE and GRUB scripts points
    // here instead (RewriteConfigUrl), e.g. at the HTTPS listener.
    std::string config_url_base{};
    // Parts of the server that are off while booting goes on, each with the
    // reason (e.g. an unreadable rollout state): listed by /readyz, which
    // stays 200 since machines still boot.
    std::vector<std::string> degraded{};
  };
  using RouteFn = std::function<Reply(const HttpRequest&)>;

  // `store` and `metrics` must outlive the handler.
  BootHandler(Options options, const StoreHolder* store, HttpMetrics* metrics);

  // Adds an exact-path route (e.g. "/config") answering `methods`; others get
  // 405. Call before serving; not thread-safe against Handle.
  void AddRoute(std::string path, std::string handler_name, std::vector<http::verb> methods,
                RouteFn fn);

  // Answers one request. Thread-safe. Does not count metrics (the server does,
  // after the response is written).
  Reply Handle(const HttpRequest& req) const;

  HttpMetrics* metrics() const { return metrics_; }

 private:
  struct Route {
    std::string handler;
    std::vector<http::verb> methods;
    RouteFn fn;
  };

  Reply Root(const HttpRequest& req) const;
  Reply Chainload(const HttpRequest& req) const;
  Reply Ipxe(const HttpRequest& req) const;
  Reply Grub(const HttpRequest& req) const;
  Reply Metadata(const HttpRequest& req) const;
  Reply Generic(const HttpRequest& req) const;
  Reply Assets(const HttpRequest& req) const;
  Reply Metrics(const HttpRequest& req) const;
  Reply Healthz(const HttpRequest& req) const;
  Reply Readyz(const HttpRequest& req) const;
  Reply Config(const HttpRequest& req) const;

  // Selection shared by /ipxe, /grub, /metadata, /generic.
  struct Selection {
    StorePtr store;  // keeps group/profile alive
    const Group* group = nullptr;
    const Profile* profile = nullptr;
    Labels labels;
  };
  Selection Select(const HttpRequest& req, std::string_view handler, bool need_profile) const;

  // Constant after construction (and AddRoute calls).
  Options options_;
  const StoreHolder* store_;
  HttpMetrics* metrics_;
  std::map<std::string, Route, std::less<>> routes_;
};

}  // namespace ironboot::bootserver
