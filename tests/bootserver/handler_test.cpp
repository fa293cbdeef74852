// BootHandler::Handle without sockets: the route table, Matchbox's answers and
// status codes, 405, /readyz, and the metrics a request moves.

#include "bootserver/handler.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <sstream>

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>

#include "bootserver/render.h"
#include "common/log.h"
#include "tests/testutil/testutil.h"

namespace ironboot::bootserver {
namespace {

namespace fs = std::filesystem;
using testutil::TempDir;
using testutil::WriteFile;

// The value of one sample (counter, gauge, or histogram count); -1 if absent.
double Sample(prometheus::Registry& registry, const std::string& name,
              const std::map<std::string, std::string>& labels = {}) {
  for (const auto& family : registry.Collect()) {
    if (family.name != name) {
      continue;
    }
    for (const auto& m : family.metric) {
      std::map<std::string, std::string> have;
      for (const auto& l : m.label) {
        have[l.name] = l.value;
      }
      if (have != labels) {
        continue;
      }
      switch (family.type) {
        case prometheus::MetricType::Counter:
          return m.counter.value;
        case prometheus::MetricType::Gauge:
          return m.gauge.value;
        case prometheus::MetricType::Histogram:
          return static_cast<double>(m.histogram.sample_count);
        default:
          return -1;
      }
    }
  }
  return -1;
}

Profile MakeProfile(std::string id, std::string generic_id = "") {
  Profile p;
  p.id = id;
  p.kernel = "/assets/" + id + "/vmlinuz";
  p.initrd = {"/assets/" + id + "/initramfs.xz"};
  p.args = {"console=ttyS0", "talos.config=http://10.0.112.2/${mac:hexhyp}"};
  p.generic_id = std::move(generic_id);
  p.source = "profiles/" + id + ".json";
  return p;
}

Group MakeGroup(std::string id, std::string profile, std::map<std::string, std::string> selector,
                nlohmann::json metadata = nlohmann::json::object()) {
  Group g;
  g.id = id;
  g.profile = std::move(profile);
  g.selector = std::move(selector);
  g.metadata = std::move(metadata);
  g.source = "groups/" + id + ".json";
  return g;
}

class HandlerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WriteFile(dir_ / "assets/talos/vmlinuz", std::string(1000, 'k'));
    WriteFile(dir_ / "assets/config.yaml", "machine: {}\n");
    WriteFile(dir_ / "assets/s/config.yaml", "another file\n");
    WriteFile(dir_ / "verified/initramfs.xz", "initramfs");
    StoreContent c;
    c.revision = "test@1";
    c.profiles = {MakeProfile("cp1", "hello.tmpl"), MakeProfile("fallback", "missing.tmpl"),
                  MakeProfile("strict", "strict.tmpl")};
    c.groups = {MakeGroup("cp1", "cp1", {{"mac", "52:54:00:ab:cd:ef"}},
                          {{"hostname", "cp1"}, {"k8s", {{"version", "1.31"}}}}),
                MakeGroup("dangling", "missing-profile", {{"mac", "52:54:00:00:00:99"}}),
                MakeGroup("strict", "strict", {{"os", "strict"}}),
                MakeGroup("default", "fallback", {})};
    c.generic_templates = {{"hello.tmpl", "host={{.hostname}} mac={{.request.query.mac}}\n"},
                           {"strict.tmpl", "needs {{.request.query.uuid}}\n"}};
    c.extra_assets = {{"talos/initramfs.xz", dir_ / "verified/initramfs.xz"}};
    holder_.Publish(Store::Build(std::move(c)));
    handler_ = std::make_unique<BootHandler>(BootHandler::Options{fs::canonical(dir_ / "assets")},
                                             &holder_, &metrics_);
  }

  Reply Do(http::verb verb, const std::string& target,
           const std::map<std::string, std::string>& headers = {}) {
    http::request<http::string_body> msg{verb, target, 11};
    for (const auto& [k, v] : headers) {
      msg.set(k, v);
    }
    HttpRequest req{msg, "127.0.0.1"};
    return handler_->Handle(req);
  }
  Reply Get(const std::string& target, const std::map<std::string, std::string>& headers = {}) {
    return Do(http::verb::get, target, headers);
  }

  // The file bytes a reply would stream.
  static std::string FileBody(const Reply& r) {
    EXPECT_TRUE(r.file.has_value());
    if (!r.file) {
      return "";
    }
    std::string out(r.file->length, '\0');
    ssize_t n =
        ::pread(r.file->fd->get(), out.data(), out.size(), static_cast<off_t>(r.file->offset));
    EXPECT_EQ(n, static_cast<ssize_t>(out.size()));
    return out;
  }

  static void Expect404(const Reply& r) {
    EXPECT_EQ(r.res.result(), http::status::not_found);
    EXPECT_EQ(r.res.body(), "404 page not found\n");
    EXPECT_EQ(r.res[http::field::content_type], "text/plain; charset=utf-8");
    EXPECT_FALSE(r.file.has_value());
  }

  TempDir dir_;
  std::shared_ptr<prometheus::Registry> registry_ = std::make_shared<prometheus::Registry>();
  HttpMetrics metrics_{registry_};
  StoreHolder holder_;
  std::unique_ptr<BootHandler> handler_;  // built in SetUp, once assets/ exists
};

// "/" answers "matchbox\n"; /boot.ipxe and /boot.ipxe.0 the chainloader.
TEST_F(HandlerTest, RootAndChainloader) {
  Reply root = Get("/");
  EXPECT_EQ(root.res.result(), http::status::ok);
  EXPECT_EQ(root.res.body(), "matchbox\n");
  EXPECT_EQ(root.res[http::field::content_type], "text/plain; charset=utf-8");
  EXPECT_EQ(root.handler, "root");
  for (const char* path : {"/boot.ipxe", "/boot.ipxe.0"}) {
    Reply r = Get(path);
    EXPECT_EQ(r.res.result(), http::status::ok) << path;
    EXPECT_EQ(r.res.body(), kChainloadScript) << path;
    EXPECT_EQ(r.res[http::field::content_type], "text/plain; charset=utf-8");
    EXPECT_EQ(r.handler, "boot.ipxe");
  }
}

// /ipxe with the MAC in any notation selects the group and renders its profile.
TEST_F(HandlerTest, IpxeSelectsByMacInAnyNotation) {
  for (const char* q : {"mac=52:54:00:ab:cd:ef", "mac=52-54-00-AB-CD-EF", "mac=5254.00ab.cdef",
                        "uuid=x&mac=52%3A54%3A00%3Aab%3Acd%3Aef&arch=x86_64"}) {
    Reply r = Get(std::string("/ipxe?") + q);
    EXPECT_EQ(r.res.result(), http::status::ok) << q;
    EXPECT_EQ(r.res.body(), IpxeScript(MakeProfile("cp1", "hello.tmpl"))) << q;
    EXPECT_EQ(r.res[http::field::content_type], "text/plain; charset=utf-8");
    EXPECT_EQ(r.group, "cp1");
    EXPECT_EQ(r.handler, "ipxe");
  }
  EXPECT_EQ(Sample(*registry_, "ironboot_boot_selections_total", {{"group", "cp1"}}), 4);
}

// An unknown or invalid MAC falls to the default group; an invalid one is not a 400.
TEST_F(HandlerTest, UnknownAndInvalidMacGetDefaultGroup) {
  for (const char* q : {"mac=52:54:00:00:00:01", "mac=garbage", ""}) {
    Reply r = Get(std::string("/ipxe?") + q);
    EXPECT_EQ(r.res.result(), http::status::ok) << q;
    EXPECT_EQ(r.res.body(), IpxeScript(MakeProfile("fallback"))) << q;
    EXPECT_EQ(r.group, "default");
  }
}

// A group naming a missing profile answers 404: no fall-through to the default group.
TEST_F(HandlerTest, MissingProfileIs404WithoutFallThrough) {
  for (const char* path : {"/ipxe", "/grub", "/generic"}) {
    Reply r = Get(std::string(path) + "?mac=52:54:00:00:00:99");
    Expect404(r);
    EXPECT_EQ(r.group, "dangling") << path;
  }
  // /metadata needs no profile (as in Matchbox): the group's variables are served.
  Reply meta = Get("/metadata?mac=52:54:00:00:00:99");
  EXPECT_EQ(meta.res.result(), http::status::ok);
  EXPECT_EQ(meta.group, "dangling");
  EXPECT_NE(meta.res.body().find("MAC=52:54:00:00:00:99\n"), std::string::npos) << meta.res.body();
}

// Without any matching group (no default) /ipxe, /grub, /metadata, /generic are
// 404 and counted as unmatched per handler.
TEST_F(HandlerTest, NoMatchIs404AndCounted) {
  StoreContent c;
  c.profiles = {MakeProfile("cp1")};
  c.groups = {MakeGroup("cp1", "cp1", {{"mac", "52:54:00:ab:cd:ef"}})};
  holder_.Publish(Store::Build(std::move(c)));
  for (const char* path : {"/ipxe", "/grub", "/metadata", "/generic"}) {
    Reply r = Get(std::string(path) + "?mac=52:54:00:00:00:01");
    Expect404(r);
    EXPECT_EQ(r.group, "");
  }
  EXPECT_EQ(Sample(*registry_, "ironboot_boot_unmatched_total", {{"handler", "ipxe"}}), 1);
  EXPECT_EQ(Sample(*registry_, "ironboot_boot_unmatched_total", {{"handler", "metadata"}}), 1);
}

// /grub renders the selected profile's GRUB config.
TEST_F(HandlerTest, GrubRendersProfile) {
  Reply r = Get("/grub?mac=52:54:00:ab:cd:ef");
  EXPECT_EQ(r.res.result(), http::status::ok);
  EXPECT_EQ(r.res.body(), GrubConfig(MakeProfile("cp1")));
  EXPECT_EQ(r.res[http::field::content_type], "text/plain; charset=utf-8");
  EXPECT_EQ(r.handler, "grub");
}

// /metadata answers the env file with Matchbox's "plain/text" content type.
TEST_F(HandlerTest, MetadataEnvFile) {
  Reply r = Get("/metadata?mac=52-54-00-ab-cd-ef&foo=bar");
  EXPECT_EQ(r.res.result(), http::status::ok);
  EXPECT_EQ(r.res[http::field::content_type], "plain/text");
  EXPECT_EQ(r.res.body(),
            "HOSTNAME=cp1\n"
            "K8S_VERSION=1.31\n"
            "MAC=52:54:00:ab:cd:ef\n"
            "REQUEST_QUERY_FOO=bar\n"
            "REQUEST_QUERY_MAC=52:54:00:ab:cd:ef\n"
            "REQUEST_RAW_QUERY=mac=52-54-00-ab-cd-ef&foo=bar\n");
  EXPECT_EQ(r.group, "cp1");
}

// /generic renders the profile's template; a missing key or template is 404.
TEST_F(HandlerTest, GenericTemplate) {
  Reply ok = Get("/generic?mac=52:54:00:AB:CD:EF");
  EXPECT_EQ(ok.res.result(), http::status::ok);
  EXPECT_EQ(ok.res.body(), "host=cp1 mac=52:54:00:ab:cd:ef\n");
  EXPECT_EQ(ok.res[http::field::content_type], "text/plain; charset=utf-8");
  Expect404(Get("/generic?os=strict"));  // template needs request.query.uuid
  Reply strict_ok = Get("/generic?os=strict&uuid=u-1");
  EXPECT_EQ(strict_ok.res.result(), http::status::ok);
  EXPECT_EQ(strict_ok.res.body(), "needs u-1\n");
  Expect404(Get("/generic?mac=52:54:00:00:00:01"));  // default profile's template is missing
}

// Paths outside the route table answer Go's 404 with nosniff, handler "other".
TEST_F(HandlerTest, UnknownPathIsGo404) {
  for (const char* path : {"/nope", "/ipxe/", "/ignition", "/IPXE", "/assets"}) {
    Reply r = Get(path);
    Expect404(r);
    EXPECT_EQ(r.res["X-Content-Type-Options"], "nosniff");
    EXPECT_EQ(r.handler, "other") << path;
  }
}

// Methods other than GET and HEAD get 405 with an Allow header naming them.
TEST_F(HandlerTest, MethodNotAllowed) {
  for (auto verb : {http::verb::post, http::verb::put, http::verb::delete_, http::verb::options}) {
    // An unknown path is 404 whatever the method, as in Matchbox.
    EXPECT_EQ(Do(verb, "/nope").res.result(), http::status::not_found);
    for (const char* path : {"/ipxe", "/", "/assets/config.yaml"}) {
      Reply r = Do(verb, path);
      EXPECT_EQ(r.res.result(), http::status::method_not_allowed) << path;
      EXPECT_EQ(r.res[http::field::allow], "GET, HEAD");
      EXPECT_NE(r.res.body().find(std::string(http::to_string(verb))), std::string::npos)
          << r.res.body();
    }
  }
  Reply head = Do(http::verb::head, "/ipxe?mac=52:54:00:ab:cd:ef");
  EXPECT_EQ(head.res.result(), http::status::ok);
}

// Routing uses the decoded path, as Go's ServeMux does: /ipx%65 is /ipxe.
TEST_F(HandlerTest, RoutesOnDecodedPath) {
  Reply r = Get("/ipx%65?mac=52:54:00:ab:cd:ef");
  EXPECT_EQ(r.handler, "ipxe");
  EXPECT_EQ(r.res.result(), Get("/ipxe?mac=52:54:00:ab:cd:ef").res.result());
}

// A custom route answers its own methods; others get 405 naming them.
TEST_F(HandlerTest, AddRouteWithOwnMethods) {
  handler_->AddRoute("/hook", "webhook", {http::verb::post},
                     [](const HttpRequest&) { return TextReply(http::status::ok, "hooked\n"); });
  EXPECT_EQ(Do(http::verb::post, "/hook").res.body(), "hooked\n");
  Reply r = Get("/hook");
  EXPECT_EQ(r.res.result(), http::status::method_not_allowed);
  EXPECT_EQ(r.res[http::field::allow], "POST");
  EXPECT_EQ(r.handler, "webhook");
}

// /assets/ streams the file: 200 with length, type, validators; 206 for a
// range; 304 for a matching ETag; 416 past the end; extra (verified) assets first.
TEST_F(HandlerTest, AssetsReplies) {
  Reply full = Get("/assets/talos/vmlinuz");
  EXPECT_EQ(full.res.result(), http::status::ok);
  EXPECT_EQ(full.res[http::field::content_length], "1000");
  EXPECT_EQ(full.res[http::field::content_type], "application/octet-stream");
  EXPECT_EQ(full.res[http::field::accept_ranges], "bytes");
  EXPECT_EQ(full.handler, "assets");
  EXPECT_EQ(FileBody(full), std::string(1000, 'k'));
  std::string etag(full.res[http::field::etag]);
  ASSERT_FALSE(etag.empty());
  ASSERT_FALSE(full.res[http::field::last_modified].empty());

  Reply part = Get("/assets/talos/vmlinuz", {{"Range", "bytes=10-19"}});
  EXPECT_EQ(part.res.result(), http::status::partial_content);
  EXPECT_EQ(part.res[http::field::content_range], "bytes 10-19/1000");
  EXPECT_EQ(part.res[http::field::content_length], "10");
  EXPECT_EQ(part.file->offset, 10u);

  Reply cached = Get("/assets/talos/vmlinuz", {{"If-None-Match", etag}});
  EXPECT_EQ(cached.res.result(), http::status::not_modified);
  EXPECT_FALSE(cached.file.has_value());

  Reply stale_if_range =
      Get("/assets/talos/vmlinuz", {{"Range", "bytes=10-19"}, {"If-Range", "\"other\""}});
  EXPECT_EQ(stale_if_range.res.result(), http::status::ok);

  Reply past = Get("/assets/talos/vmlinuz", {{"Range", "bytes=1000-"}});
  EXPECT_EQ(past.res.result(), http::status::range_not_satisfiable);
  EXPECT_EQ(past.res[http::field::content_range], "bytes */1000");

  Reply extra = Get("/assets/talos/initramfs.xz");
  EXPECT_EQ(extra.res.result(), http::status::ok);
  EXPECT_EQ(FileBody(extra), "initramfs");
  EXPECT_EQ(extra.res[http::field::content_type], "application/x-xz");

  Expect404(Get("/assets/talos"));
  Expect404(Get("/assets/../assets/config.yaml"));
  Expect404(Get("/assets/%2e%2e/verified/initramfs.xz"));
  Expect404(Get("/assets/missing"));
}

// A target whose "/assets/" prefix is itself percent-encoded routes to
// /assets/ (decoded path) but is a 404, as in Matchbox (Go's StripPrefix): it
// used to serve the file named by the raw path past 8 bytes, here
// "s/config.yaml" for "/%61ssets/config.yaml". Encoding past the prefix is
// decoded as before.
TEST_F(HandlerTest, AssetsEncodedPrefix) {
  Reply r = Get("/%61ssets/config.yaml");
  Expect404(r);
  EXPECT_EQ(r.handler, "assets");
  Reply encoded_name = Get("/assets/%63onfig.yaml");
  EXPECT_EQ(encoded_name.res.result(), http::status::ok);
  EXPECT_EQ(FileBody(encoded_name), "machine: {}\n");
}

// A mac= value with a newline, quote or escape bytes cannot forge a log
// line: the warning about the unparseable MAC shows them as \xNN, on one line.
TEST_F(HandlerTest, UnparseableMacIsEscapedInTheLog) {
  std::ostringstream text;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(text);
  auto logger = Logger("http");
  logger->sinks().push_back(sink);
  Reply r = Get("/ipxe?mac=x%0a2026-01-01T00:00:00.000Z%20info%20config:%20served%22%1b%5c");
  logger->sinks().pop_back();
  EXPECT_EQ(r.res.result(), http::status::ok);  // no MAC label: the default group
  const std::string log = text.str();
  EXPECT_NE(log.find("ignoring unparseable MAC address client=127.0.0.1 "
                     "mac=\"x\\x0a2026-01-01T00:00:00.000Z info config: served\\x22\\x1b\\x5c\""),
            std::string::npos)
      << log;
  EXPECT_EQ(std::count(log.begin(), log.end(), '\n'), 1) << log;
}

// With assets disabled (Matchbox's -assets-path=""), /assets/ is a plain 404.
TEST_F(HandlerTest, AssetsDisabled) {
  BootHandler disabled(BootHandler::Options{}, &holder_, &metrics_);
  http::request<http::string_body> msg{http::verb::get, "/assets/config.yaml", 11};
  Reply r = disabled.Handle(HttpRequest{msg, "127.0.0.1"});
  Expect404(r);
}

// /healthz is always ok; /readyz is 503 with the reason before a store is
// published, then 200 naming the revision and listing each problem.
TEST_F(HandlerTest, HealthAndReadiness) {
  StoreHolder empty;
  empty.SetNotReadyReason("data path /nope is not a readable directory");
  BootHandler h(BootHandler::Options{}, &empty, &metrics_);
  http::request<http::string_body> readyz{http::verb::get, "/readyz", 11};
  Reply not_ready = h.Handle(HttpRequest{readyz, "127.0.0.1"});
  EXPECT_EQ(not_ready.res.result(), http::status::service_unavailable);
  EXPECT_EQ(not_ready.res.body(), "not ready: data path /nope is not a readable directory\n");
  http::request<http::string_body> healthz{http::verb::get, "/healthz", 11};
  EXPECT_EQ(h.Handle(HttpRequest{healthz, "127.0.0.1"}).res.body(), "ok\n");
  http::request<http::string_body> ipxe{http::verb::get, "/ipxe?mac=52:54:00:ab:cd:ef", 11};
  Expect404(h.Handle(HttpRequest{ipxe, "127.0.0.1"}));

  Reply ready = Get("/readyz");
  EXPECT_EQ(ready.res.result(), http::status::ok);
  EXPECT_EQ(ready.res.body(),
            "ready: serving test@1 (4 groups, 3 profiles)\n"
            "1 problem(s), served without the entries named:\n"
            "  groups/dangling.json: group \"dangling\" names profile \"missing-profile\", which "
            "does not exist; matching machines get 404\n");
}

// /metrics is the Prometheus text exposition of the injected registry.
TEST_F(HandlerTest, MetricsEndpoint) {
  metrics_.ObserveRequest("ipxe", 200, 0.001);
  Reply r = Get("/metrics");
  EXPECT_EQ(r.res.result(), http::status::ok);
  EXPECT_EQ(r.res[http::field::content_type], "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_NE(r.res.body().find("ironboot_http_requests_total{code=\"200\",handler=\"ipxe\"} 1"),
            std::string::npos)
      << r.res.body();
  EXPECT_NE(r.res.body().find("# TYPE ironboot_http_request_duration_seconds histogram"),
            std::string::npos);
}

}  // namespace
}  // namespace ironboot::bootserver
