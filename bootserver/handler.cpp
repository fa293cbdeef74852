#include "bootserver/handler.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <prometheus/text_serializer.h>

#include "bootserver/assets.h"
#include "bootserver/mac.h"
#include "bootserver/render.h"
#include "common/log.h"
#include "common/log_safe.h"

namespace ironboot::bootserver {
namespace fs = std::filesystem;

namespace {

// The machine's static address from the plan, "" when it has none.
std::string StaticAddressOf(const Store& store, const std::string& mac) {
  const auto& addresses = store.content().machine_addresses;
  auto it = addresses.find(mac);
  return it == addresses.end() ? std::string() : it->second;
}

}  // namespace

UniqueFd::~UniqueFd() {
  if (fd_ >= 0) {
    ::close(fd_);
  }
}

UniqueFd& UniqueFd::operator=(UniqueFd&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) {
      ::close(fd_);
    }
    fd_ = o.release();
  }
  return *this;
}

std::string_view HttpRequest::path() const {
  std::string_view t = message.target();
  return t.substr(0, t.find('?'));
}

std::string_view HttpRequest::raw_query() const {
  std::string_view t = message.target();
  size_t q = t.find('?');
  return q == std::string_view::npos ? std::string_view() : t.substr(q + 1);
}

Reply TextReply(http::status status, std::string body, std::string content_type) {
  Reply r;
  r.res.result(status);
  r.res.set(http::field::content_type, content_type);
  r.res.body() = std::move(body);
  return r;
}

Reply Matchbox404() {
  Reply r = TextReply(http::status::not_found, "404 page not found\n");
  r.res.set("X-Content-Type-Options", "nosniff");
  return r;
}

BootHandler::BootHandler(Options options, const StoreHolder* store, HttpMetrics* metrics)
    : options_(std::move(options)), store_(store), metrics_(metrics) {
  using V = std::vector<http::verb>;
  const V kGet = {http::verb::get, http::verb::head};
  auto bind = [this](Reply (BootHandler::*fn)(const HttpRequest&) const) {
    return [this, fn](const HttpRequest& req) { return (this->*fn)(req); };
  };
  AddRoute("/", "root", kGet, bind(&BootHandler::Root));
  AddRoute("/boot.ipxe", "boot.ipxe", kGet, bind(&BootHandler::Chainload));
  AddRoute("/boot.ipxe.0", "boot.ipxe", kGet, bind(&BootHandler::Chainload));
  AddRoute("/ipxe", "ipxe", kGet, bind(&BootHandler::Ipxe));
  AddRoute("/grub", "grub", kGet, bind(&BootHandler::Grub));
  AddRoute("/metadata", "metadata", kGet, bind(&BootHandler::Metadata));
  AddRoute("/generic", "generic", kGet, bind(&BootHandler::Generic));
  AddRoute("/metrics", "metrics", kGet, bind(&BootHandler::Metrics));
  AddRoute("/healthz", "healthz", kGet, bind(&BootHandler::Healthz));
  AddRoute("/readyz", "readyz", kGet, bind(&BootHandler::Readyz));
  AddRoute("/config", "config", kGet, bind(&BootHandler::Config));
}

void BootHandler::AddRoute(std::string path, std::string handler_name,
                           std::vector<http::verb> methods, RouteFn fn) {
  routes_[std::move(path)] = Route{std::move(handler_name), std::move(methods), std::move(fn)};
}

Reply BootHandler::Handle(const HttpRequest& req) const {
  // Route on the decoded path, as Go's ServeMux does ("/ipx%65" is "/ipxe").
  std::string decoded_path;
  std::string_view path = req.path();
  if (path.find('%') != std::string_view::npos) {
    if (auto d = PathUnescape(path)) {
      decoded_path = std::move(*d);
      path = decoded_path;
    }
  }
  const Route* route = nullptr;
  if (auto it = routes_.find(path); it != routes_.end()) {
    route = &it->second;
  }
  // /assets/ serves published (verified) assets and, when configured, the assets dir.
  bool is_asset = !route && path.substr(0, 8) == "/assets/";
  std::string handler = route ? route->handler : (is_asset ? "assets" : "other");
  std::vector<http::verb> allowed = route ? route->methods
                                          : std::vector<http::verb>{http::verb::get, http::verb::head};
  // Paths that exist answer 405 to other methods; unknown paths are 404 whatever
  // the method, as in Matchbox.
  bool method_ok = !route && !is_asset;
  for (auto v : allowed) {
    method_ok |= v == req.message.method();
  }
  Reply reply;
  if (!method_ok) {
    std::string allow;
    for (auto v : allowed) {
      allow += (allow.empty() ? "" : ", ") + std::string(http::to_string(v));
    }
    reply = TextReply(http::status::method_not_allowed,
                      "405 method not allowed: " + std::string(req.message.method_string()) +
                          " (want " + allow + ")\n");
    reply.res.set(http::field::allow, allow);
  } else if (route) {
    reply = route->fn(req);
  } else if (is_asset) {
    reply = Assets(req);
  } else {
    reply = Matchbox404();  // Go's ServeMux: "/" catches everything, answers 404
  }
  reply.handler = std::move(handler);
  if (options_.observer) {
    options_.observer(req, reply);
  }
  return reply;
}

Reply BootHandler::Root(const HttpRequest&) const {
  return TextReply(http::status::ok, "matchbox\n");
}

Reply BootHandler::Chainload(const HttpRequest&) const {
  return TextReply(http::status::ok, std::string(kChainloadScript));
}

BootHandler::Selection BootHandler::Select(const HttpRequest& req, std::string_view handler,
                                           bool need_profile) const {
  Selection sel;
  auto parsed = LabelsFromQuery(req.raw_query());
  sel.labels = std::move(parsed.labels);
  static auto log = Logger("http");
  for (const auto& bad : parsed.dropped_macs) {
    log->warn("ignoring unparseable MAC address client={} mac=\"{}\"", req.client,
              LogSafe(bad.substr(0, 64)));
  }
  sel.store = store_->Get();
  if (!sel.store) {
    return sel;
  }
  sel.group = sel.store->Select(sel.labels);
  if (sel.group == nullptr) {
    metrics_->CountUnmatched(handler);
    return sel;
  }
  metrics_->CountSelection(sel.group->id);
  if (need_profile) {
    sel.profile = sel.store->ProfileOf(sel.group);
  }
  return sel;
}

Reply BootHandler::Ipxe(const HttpRequest& req) const {
  static auto log = Logger("config");
  Selection sel = Select(req, "ipxe", true);
  if (sel.profile == nullptr) {
    Reply r = Matchbox404();
    r.group = sel.group ? sel.group->id : "";
    return r;
  }
  Reply r;
  auto mac = sel.labels.find("mac");
  const std::string& stored = sel.store->IpxeScriptOf(sel.profile);
  std::string rewritten;
  if (!options_.config_url_base.empty()) {
    rewritten = RewriteConfigUrl(stored, options_.config_url_base);
  }
  const std::string& script = options_.config_url_base.empty() ? stored : rewritten;
  if (options_.config_access != nullptr && mac != sel.labels.end() &&
      sel.store->FindMachineConfig(mac->second) != nullptr) {
    // The machine's own fetch may open its config to this address (with
    // tokens on, the script's talos.config= URL then carries a token); a
    // fetch from elsewhere gets the plain script and opens nothing.
    IpxeGrant grant = options_.config_access->RecordIpxeFetch(
        mac->second, StaticAddressOf(*sel.store, mac->second), req.client);
    switch (grant.result) {
      case IpxeGrant::Result::kGranted:
        break;
      case IpxeGrant::Result::kStaticAddress:
        log->warn("iPXE script served without /config access mac={} client={} "
                  "reason=\"not the machine's static address {}\"",
                  mac->second, req.client, grant.other_address);
        break;
      case IpxeGrant::Result::kHeldByAnother:
        log->warn("iPXE script served without /config access mac={} client={} "
                  "reason=\"{} fetched this machine's iPXE script within -config-window and "
                  "holds its config\"",
                  mac->second, req.client, grant.other_address);
        break;
    }
    r = TextReply(http::status::ok,
                  grant.token.empty() ? script : AddConfigToken(script, grant.token));
    r.res.set(http::field::cache_control, "no-store");
  } else {
    r = TextReply(http::status::ok, script);
  }
  r.group = sel.group->id;
  return r;
}

Reply BootHandler::Grub(const HttpRequest& req) const {
  Selection sel = Select(req, "grub", true);
  if (sel.profile == nullptr) {
    Reply r = Matchbox404();
    r.group = sel.group ? sel.group->id : "";
    return r;
  }
  Reply r = TextReply(http::status::ok,
                      options_.config_url_base.empty()
                          ? GrubConfig(*sel.profile)
                          : RewriteConfigUrl(GrubConfig(*sel.profile), options_.config_url_base));
  r.group = sel.group->id;
  return r;
}

Reply BootHandler::Metadata(const HttpRequest& req) const {
  Selection sel = Select(req, "metadata", false);
  if (sel.group == nullptr) {
    return Matchbox404();
  }
  Reply r = TextReply(http::status::ok,
                      MetadataEnv(CollectVariables(*sel.group, sel.labels, req.raw_query())),
                      "plain/text");
  r.group = sel.group->id;
  return r;
}

Reply BootHandler::Generic(const HttpRequest& req) const {
  Selection sel = Select(req, "generic", true);
  static auto log = Logger("http");
  if (sel.group == nullptr) {
    return Matchbox404();
  }
  Reply miss = Matchbox404();
  miss.group = sel.group->id;
  if (sel.profile == nullptr) {
    log->info("no profile named \"{}\" group={}", sel.group->profile, sel.group->id);
    return miss;
  }
  const std::string* tmpl = sel.store->FindGenericTemplate(sel.profile->generic_id);
  if (tmpl == nullptr) {
    log->info("no generic template named \"{}\" group={} profile={}", sel.profile->generic_id,
              sel.group->id, sel.profile->id);
    return miss;
  }
  auto rendered = RenderTemplate(*tmpl, CollectVariables(*sel.group, sel.labels, req.raw_query()));
  if (!rendered) {
    log->info("generic template \"{}\" failed group={}: {}", sel.profile->generic_id,
              sel.group->id, rendered.error().message);
    return miss;
  }
  Reply r = TextReply(http::status::ok, std::move(*rendered));
  r.group = sel.group->id;
  return r;
}

Reply BootHandler::Assets(const HttpRequest& req) const {
  // Routed on the decoded path, but the file is named by the raw one: a
  // target whose "/assets/" is itself encoded ("/%61ssets/x") is a 404, as
  // Go's http.StripPrefix answers it in Matchbox (slicing the raw path by the
  // decoded prefix's length would name another file).
  if (!req.path().starts_with("/assets/")) {
    return Matchbox404();
  }
  std::string_view rel = req.path().substr(8);  // after "/assets/", still encoded
  fs::path file;
  // Assets published by the GitOps plan (verified downloads) come first.
  StorePtr store = store_->Get();
  const fs::path* extra = nullptr;
  if (store) {
    if (auto decoded = PathUnescape(rel)) {
      extra = store->FindExtraAsset(*decoded);
    }
  }
  if (extra != nullptr) {
    file = *extra;
  } else if (!options_.assets_path) {
    return Matchbox404();
  } else {
    auto resolved = ResolveAssetPath(*options_.assets_path, rel);
    if (!resolved) {
      return Matchbox404();
    }
    file = std::move(*resolved);
  }
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return Matchbox404();
  }
  auto owned = std::make_shared<UniqueFd>(fd);
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    return Matchbox404();
  }
  FileInfo info{static_cast<uint64_t>(st.st_size),
                std::chrono::system_clock::time_point(
                    std::chrono::duration_cast<std::chrono::system_clock::duration>(
                        std::chrono::seconds(st.st_mtim.tv_sec) +
                        std::chrono::nanoseconds(st.st_mtim.tv_nsec)))};
  std::string etag = MakeETag(info);
  std::string last_modified = HttpDate(info.mtime);

  Reply r;
  r.res.set(http::field::accept_ranges, "bytes");
  r.res.set(http::field::etag, etag);
  r.res.set(http::field::last_modified, last_modified);
  const auto& h = req.message;
  bool not_modified = false;
  if (auto inm = h.find(http::field::if_none_match); inm != h.end()) {
    not_modified = IfNoneMatchMatches(inm->value(), etag);
  } else if (auto ims = h.find(http::field::if_modified_since); ims != h.end()) {
    auto since = ParseHttpDate(ims->value());
    not_modified = since && std::chrono::floor<std::chrono::seconds>(info.mtime) <= *since;
  }
  if (not_modified) {
    r.res.result(http::status::not_modified);
    return r;
  }
  r.res.set(http::field::content_type, std::string(ContentTypeFor(file)));
  RangeResult range;
  if (auto rh = h.find(http::field::range); rh != h.end()) {
    bool if_range_ok = true;
    if (auto ir = h.find(http::field::if_range); ir != h.end()) {
      if_range_ok = ir->value() == etag || ir->value() == last_modified;
    }
    if (if_range_ok) {
      range = ParseRange(rh->value(), info.size);
    }
  }
  if (range.kind == RangeKind::kUnsatisfiable) {
    r = TextReply(http::status::range_not_satisfiable, "416 requested range not satisfiable\n");
    r.res.set(http::field::content_range, "bytes */" + std::to_string(info.size));
    return r;
  }
  Reply::FileSlice slice{owned, 0, info.size};
  if (range.kind == RangeKind::kSatisfiable) {
    r.res.result(http::status::partial_content);
    slice.offset = range.range.first;
    slice.length = range.range.length;
    r.res.set(http::field::content_range,
              "bytes " + std::to_string(slice.offset) + "-" +
                  std::to_string(slice.offset + slice.length - 1) + "/" + std::to_string(info.size));
  } else {
    r.res.result(http::status::ok);
  }
  r.res.content_length(slice.length);
  r.file = std::move(slice);
  return r;
}

Reply BootHandler::Metrics(const HttpRequest&) const {
  prometheus::TextSerializer serializer;
  return TextReply(http::status::ok, serializer.Serialize(metrics_->registry()->Collect()),
                   "text/plain; version=0.0.4; charset=utf-8");
}

Reply BootHandler::Healthz(const HttpRequest&) const {
  return TextReply(http::status::ok, "ok\n");
}

Reply BootHandler::Readyz(const HttpRequest&) const {
  StorePtr store = store_->Get();
  if (!store) {
    return TextReply(http::status::service_unavailable,
                     "not ready: " + store_->NotReadyReason() + "\n");
  }
  std::string body = "ready: serving " + store->content().revision + " (" +
                     std::to_string(store->group_count()) + " groups, " +
                     std::to_string(store->profile_count()) + " profiles)\n";
  const auto& problems = store->problems();
  if (!problems.empty()) {
    body += std::to_string(problems.size()) + " problem(s), served without the entries named:\n";
    for (const auto& p : problems) {
      body += "  " + p.ToString() + "\n";
    }
  }
  for (const auto& reason : options_.degraded) {
    body += "degraded: " + reason + "\n";
  }
  return TextReply(http::status::ok, std::move(body));
}

}  // namespace ironboot::bootserver

namespace ironboot::bootserver {

Reply BootHandler::Config(const HttpRequest& req) const {
  static auto log = Logger("config");
  if (options_.config_tls_only && !req.tls) {
    metrics_->CountConfigFetch(ResultLabel(ConfigDecision::kDeniedTls));
    log->warn("refused machine config over plain HTTP client={} result=denied_tls "
              "(serve -config-tls-only: /config is served on the HTTPS listener only)",
              req.client);
    return TextReply(http::status::forbidden, "403 forbidden\n");
  }
  std::string raw_mac;
  std::string token;
  bool have_mac = false;
  for (const auto& [k, v] : ParseQuery(req.raw_query())) {
    if (k == "mac" && !have_mac) {
      raw_mac = v;
      have_mac = true;
    } else if (k == "token" && token.empty()) {
      token = v;
    }
  }
  auto mac = NormalizeMac(raw_mac);
  if (!mac) {
    metrics_->CountConfigFetch("bad_request");
    return TextReply(http::status::bad_request,
                     "400 want ?mac=<MAC address> (e.g. 52-54-00-12-34-56), got \"" +
                         raw_mac.substr(0, 64) + "\"\n");
  }
  StorePtr store = store_->Get();
  const std::string* config = store ? store->FindMachineConfig(*mac) : nullptr;
  if (options_.config_access == nullptr) {
    if (config == nullptr) {
      metrics_->CountConfigFetch("not_found");
      log->warn("no machine config for mac={} client={}", *mac, req.client);
      return TextReply(http::status::not_found, "404 no machine config for MAC " + *mac + "\n");
    }
  } else {
    std::string static_address = store ? StaticAddressOf(*store, *mac) : std::string();
    ConfigDecision d = options_.config_access->Decide(*mac, config != nullptr, static_address,
                                                      req.client, token);
    std::string_view result = ResultLabel(d);
    if (d != ConfigDecision::kServed) {
      metrics_->CountConfigFetch(result);
      // Never the config nor the token. An unknown MAC is refused like a wrong
      // address (403, same body), so /config does not tell which MACs exist.
      log->warn("refused machine config mac={} client={} result={} token={}", *mac, req.client,
                result, token.empty() ? "absent" : "present");
      if (d == ConfigDecision::kRateLimited) {
        Reply r = TextReply(http::status::too_many_requests, "429 too many requests\n");
        r.res.set(http::field::retry_after, "60");
        return r;
      }
      return TextReply(http::status::forbidden, "403 forbidden\n");
    }
  }
  metrics_->CountConfigFetch("served");
  log->info("served machine config mac={} client={} rev={}", *mac, req.client,
            store->content().revision);
  Reply r = TextReply(http::status::ok, *config, "application/yaml");
  r.res.set(http::field::cache_control, "no-store");
  return r;
}

}  // namespace ironboot::bootserver
