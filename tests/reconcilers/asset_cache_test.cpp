#include "reconcilers/asset_cache.h"

#include <gtest/gtest.h>

#include <random>
#include <sstream>
#include <thread>

#include <prometheus/registry.h>
#include <spdlog/sinks/ostream_sink.h>

#include "common/log.h"
#include "reconcilers/sha512.h"
#include "tests/testutil/testutil.h"

namespace ironboot::reconcilers {
namespace {

namespace fs = std::filesystem;
using testutil::TempDir;

// Deterministic pseudo-random bytes: a stand-in for a kernel image.
std::string RandomBytes(std::size_t size, unsigned seed) {
  std::mt19937 gen(seed);
  std::string out(size, '\0');
  for (char& c : out) {
    c = static_cast<char>(gen() & 0xff);
  }
  return out;
}

std::size_t CountOf(const std::string& haystack, const std::string& needle) {
  std::size_t count = 0;
  for (std::size_t pos = haystack.find(needle); pos != std::string::npos;
       pos = haystack.find(needle, pos + 1)) {
    ++count;
  }
  return count;
}

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// A real nginx on 127.0.0.1 with a private config, serving `root()`. Its access
// log records "<request> <status> <bytes sent> range=<Range header>" per line.
class Nginx {
 public:
  // With `tls`, also serves HTTPS on tls_port() with a fresh self-signed
  // certificate for 127.0.0.1 (ca_file()).
  explicit Nginx(bool tls = false) : port_(testutil::FreePort()) {
    fs::create_directories(dir_ / "www");
    fs::create_directories(dir_ / "tmp");
    const std::string d = dir_.path().string();
    const std::string www = d + "/www";
    std::string tls_server;
    if (tls) {
      tls_port_ = testutil::FreePort();
      auto made = testutil::Run({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                                 "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj",
                                 "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                                 "-keyout", d + "/key.pem", "-out", d + "/cert.pem"});
      EXPECT_EQ(made.exit_code, 0) << made.output;
      tls_server = "  server {\n    listen 127.0.0.1:" + std::to_string(tls_port_) +
                   " ssl;\n    ssl_certificate " + d + "/cert.pem;\n    ssl_certificate_key " + d +
                   "/key.pem;\n    root " + www + ";\n  }\n";
    }
    testutil::WriteFile(
        dir_ / "nginx.conf",
        "load_module /usr/lib/nginx/modules/ngx_http_echo_module.so;\n"
        "daemon off;\nmaster_process off;\nworker_processes 1;\npid " +
            d + "/nginx.pid;\nerror_log " + d +
            "/error.log info;\nevents { worker_connections 64; }\n" +
            "http {\n  log_format ranged '$request $status $body_bytes_sent range=$http_range';\n" +
            "  access_log " + d + "/access.log ranged;\n  client_body_temp_path " + d +
            "/tmp/body;\n  proxy_temp_path " + d + "/tmp/proxy;\n  fastcgi_temp_path " + d +
            "/tmp/fastcgi;\n  uwsgi_temp_path " + d + "/tmp/uwsgi;\n  scgi_temp_path " + d +
            "/tmp/scgi;\n  types { }\n  default_type application/octet-stream;\n" +
            "  server {\n    listen 127.0.0.1:" + std::to_string(port_) + ";\n    root " + www +
            ";\n    location = /redirect/vmlinuz { return 302 /files/vmlinuz; }\n" +
            "    location = /redirect/file { return 302 file:///etc/hostname; }\n" +
            "    location /slow/ { alias " + www + "/files/; limit_rate 32k; }\n" +
            "    location = /chunked { echo_duplicate 200000 \"0123456789\"; }\n" +
            "    location = /busy { return 503; }\n    location = /forbidden { return 403; }\n" +
            "    location /norange/ { alias " + www + "/files/; max_ranges 0; }\n  }\n" +
            tls_server + "}\n");
    process_ = std::make_unique<testutil::Process>(std::vector<std::string>{
        "nginx", "-p", d + "/", "-c", d + "/nginx.conf", "-e", d + "/error.log"});
    const bool up = testutil::WaitFor([&] { return testutil::HttpGet(port_, "/").status != 0; });
    EXPECT_TRUE(up) << "nginx did not start: " << process_->Output() << ReadOr("error.log");
  }

  fs::path root() const { return dir_ / "www"; }
  std::string Url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  int port() const { return port_; }
  std::string TlsUrl(const std::string& path) const {
    return "https://127.0.0.1:" + std::to_string(tls_port_) + path;
  }
  fs::path ca_file() const { return dir_ / "cert.pem"; }
  // The access log once it has at least `min_lines` lines (nginx writes a line
  // just after the response, so poll for it).
  std::string AccessLog(std::size_t min_lines = 0) const {
    testutil::WaitFor([&] { return CountOf(ReadOr("access.log"), "\n") >= min_lines; },
                      std::chrono::seconds(5));
    return ReadOr("access.log");
  }
  void Stop() { process_.reset(); }

 private:
  std::string ReadOr(const std::string& name) const {
    std::error_code ec;
    return fs::exists(dir_ / name, ec) ? testutil::ReadFile(dir_ / name) : std::string();
  }

  TempDir dir_;
  int port_;
  int tls_port_ = 0;
  std::unique_ptr<testutil::Process> process_;
};

class AssetCacheTest : public ::testing::Test {
 protected:
  AssetCacheTest()
      : registry_(std::make_shared<prometheus::Registry>()),
        clock_(std::make_shared<SystemClock>()),
        content_(RandomBytes(2 << 20, 42)),
        sha512_(Sha512Hex(content_)) {}

  std::unique_ptr<AssetCache> MakeCache(AssetCacheOptions options = {}) {
    return std::make_unique<AssetCache>(state_.path(), registry_, clock_, options);
  }
  AssetSpec Spec(const std::string& url) const {
    AssetSpec spec;
    spec.name = "talos v1.11.3 amd64 kernel";
    spec.url = url;
    spec.sha512 = sha512_;
    return spec;
  }
  // Files in the content-addressed directory, excluding lock files.
  std::vector<std::string> StoredFiles() const {
    std::vector<std::string> names;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(state_ / "assets/sha512", ec)) {
      if (entry.path().extension() != ".lock") {
        names.push_back(entry.path().filename().string());
      }
    }
    return names;
  }
  void ServeKernel(const Nginx& nginx) const {
    testutil::WriteFile(nginx.root() / "files/vmlinuz", content_);
  }

  TempDir state_;
  TempDir files_;
  std::shared_ptr<prometheus::Registry> registry_;
  ClockPtr clock_;
  const std::string content_;
  const std::string sha512_;
};

// A file:// URL is downloaded, verified and stored under assets/sha512/<hex>,
// with every byte counted in ironboot_asset_download_bytes_total.
TEST_F(AssetCacheTest, FileUrlDownloadVerifiedAndStored) {
  testutil::WriteFile(files_ / "vmlinuz-amd64", content_);
  auto cache = MakeCache();
  auto path = cache->Ensure(Spec("file://" + (files_ / "vmlinuz-amd64").string()));
  ASSERT_TRUE(path) << path.error().message;
  EXPECT_EQ(*path, state_ / "assets/sha512" / sha512_);
  EXPECT_EQ(testutil::ReadFile(*path), content_);
  EXPECT_EQ(cache->metrics().download_bytes.Value(), static_cast<double>(content_.size()));
  EXPECT_EQ(cache->metrics().verify_failures.Value(), 0);
  EXPECT_EQ(StoredFiles(), std::vector<std::string>{sha512_});
}

// A file:// URL to a missing file is kNotFound naming the URL; nothing is stored.
TEST_F(AssetCacheTest, FileUrlMissing) {
  auto cache = MakeCache();
  const std::string url = "file://" + (files_ / "nope").string();
  auto path = cache->Ensure(Spec(url));
  ASSERT_FALSE(path);
  EXPECT_EQ(path.error().code, ErrorCode::kNotFound);
  EXPECT_TRUE(Contains(path.error().message, "talos v1.11.3 amd64 kernel: GET " + url))
      << path.error().message;
  EXPECT_FALSE(fs::exists(cache->PathFor(sha512_)));
}

// Specs that cannot be verified or fetched are refused before any download,
// with a message naming the asset and the problem.
TEST_F(AssetCacheTest, BadSpecsRefused) {
  auto cache = MakeCache();
  AssetSpec spec = Spec("file:///dev/null");
  spec.sha512 = "abc123";
  auto bad_hash = cache->Ensure(spec);
  ASSERT_FALSE(bad_hash);
  EXPECT_EQ(bad_hash.error().code, ErrorCode::kInvalid);
  EXPECT_EQ(bad_hash.error().message,
            "talos v1.11.3 amd64 kernel: sha512 \"abc123\" is not a SHA-512 (want 128 hex "
            "digits, got 6 characters)");

  spec.sha512.clear();
  auto no_hash = cache->Ensure(spec);
  ASSERT_FALSE(no_hash);
  EXPECT_EQ(no_hash.error().code, ErrorCode::kInvalid);
  EXPECT_EQ(no_hash.error().message,
            "talos v1.11.3 amd64 kernel: no sha512 and no sha512sum.txt URL; refusing to "
            "download file:///dev/null without a checksum");

  auto no_url = cache->Ensure(Spec(""));
  ASSERT_FALSE(no_url);
  EXPECT_EQ(no_url.error().message, "talos v1.11.3 amd64 kernel: no URL");

  auto ftp = cache->Ensure(Spec("ftp://127.0.0.1/vmlinuz"));
  ASSERT_FALSE(ftp);
  EXPECT_EQ(ftp.error().code, ErrorCode::kInvalid);
  EXPECT_EQ(ftp.error().message,
            "talos v1.11.3 amd64 kernel: URL ftp://127.0.0.1/vmlinuz is not http://, https:// "
            "or file://");
  EXPECT_TRUE(StoredFiles().empty());
}

// Over HTTP the file is downloaded and verified; a second Ensure, even from a
// new AssetCache on the same state dir, makes no request at all.
TEST_F(AssetCacheTest, HttpDownloadThenCachedWithoutNetwork) {
  Nginx nginx;
  ServeKernel(nginx);
  auto cache = MakeCache();
  auto path = cache->Ensure(Spec(nginx.Url("/files/vmlinuz")));
  ASSERT_TRUE(path) << path.error().message;
  EXPECT_EQ(testutil::ReadFile(*path), content_);
  const std::string log = nginx.AccessLog(1);
  EXPECT_EQ(CountOf(log, "GET /files/vmlinuz HTTP/1.1 200 " + std::to_string(content_.size())), 1u)
      << log;

  auto again = MakeCache()->Ensure(Spec(nginx.Url("/files/vmlinuz")));
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(*again, *path);
  EXPECT_EQ(nginx.AccessLog(), log);  // no new request

  nginx.Stop();
  EXPECT_TRUE(cache->Ensure(Spec(nginx.Url("/files/vmlinuz"))));
}

// With no sha512 in the spec, the hash comes from the release's sha512sum.txt
// (file name defaulting to the URL's last segment); once cached, neither file
// is requested again, even with the server gone.
TEST_F(AssetCacheTest, HashFromSha512SumTxt) {
  Nginx nginx;
  testutil::WriteFile(nginx.root() / "v1.11.3/vmlinuz-amd64", content_);
  testutil::WriteFile(
      nginx.root() / "v1.11.3/sha512sum.txt",
      std::string(128, 'e') + "  initramfs-amd64.xz\n" + sha512_ + "  vmlinuz-amd64\n");
  AssetSpec spec{.name = "talos v1.11.3 amd64 kernel",
                 .url = nginx.Url("/v1.11.3/vmlinuz-amd64"),
                 .sha512 = "",
                 .sha512sum_url = nginx.Url("/v1.11.3/sha512sum.txt"),
                 .file_name_in_sums = ""};
  auto cache = MakeCache();
  auto path = cache->Ensure(spec);
  ASSERT_TRUE(path) << path.error().message;
  EXPECT_EQ(*path, cache->PathFor(sha512_));
  EXPECT_EQ(testutil::ReadFile(*path), content_);
  const std::string log = nginx.AccessLog(2);
  EXPECT_EQ(CountOf(log, "GET /v1.11.3/sha512sum.txt HTTP/1.1 200"), 1u) << log;
  EXPECT_EQ(CountOf(log, "GET /v1.11.3/vmlinuz-amd64 HTTP/1.1 200"), 1u) << log;

  nginx.Stop();
  auto again = MakeCache()->Ensure(spec);
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(*again, *path);
}

// A sha512sum.txt without the file's line is kNotFound listing what it has.
TEST_F(AssetCacheTest, Sha512SumTxtWithoutTheFile) {
  testutil::WriteFile(files_ / "sha512sum.txt", std::string(128, 'e') + "  initramfs-amd64.xz\n");
  AssetSpec spec{.name = "talos v1.11.3 amd64 kernel",
                 .url = "file://" + (files_ / "vmlinuz-amd64").string(),
                 .sha512 = "",
                 .sha512sum_url = "file://" + (files_ / "sha512sum.txt").string(),
                 .file_name_in_sums = "vmlinuz-amd64"};
  auto path = MakeCache()->Ensure(spec);
  ASSERT_FALSE(path);
  EXPECT_EQ(path.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(path.error().message, "talos v1.11.3 amd64 kernel: " + spec.sha512sum_url +
                                      " has no line for \"vmlinuz-amd64\" (it lists: "
                                      "initramfs-amd64.xz)");
}

// A sha512sum.txt that is not one (an HTML page) is kInvalid naming its URL
// and line, and is not cached: fixing it upstream fixes the next Ensure.
TEST_F(AssetCacheTest, Sha512SumTxtMalformed) {
  Nginx nginx;
  ServeKernel(nginx);
  testutil::WriteFile(nginx.root() / "files/sha512sum.txt", "<html>\n<body>oops</body>\n");
  AssetSpec spec = Spec(nginx.Url("/files/vmlinuz"));
  spec.sha512.clear();
  spec.sha512sum_url = nginx.Url("/files/sha512sum.txt");
  spec.file_name_in_sums = "vmlinuz";
  auto cache = MakeCache();
  auto path = cache->Ensure(spec);
  ASSERT_FALSE(path);
  EXPECT_EQ(path.error().code, ErrorCode::kInvalid);
  EXPECT_TRUE(Contains(path.error().message,
                       "talos v1.11.3 amd64 kernel: " + spec.sha512sum_url + ":1: want"))
      << path.error().message;

  testutil::WriteFile(nginx.root() / "files/sha512sum.txt", sha512_ + " *vmlinuz\n");
  auto fixed = cache->Ensure(spec);
  ASSERT_TRUE(fixed) << fixed.error().message;
}

// A checksum mismatch is kInvalid naming asset, URL, expected and actual hash;
// nothing is stored (no file, no partial) and the failure is counted.
TEST_F(AssetCacheTest, ChecksumMismatch) {
  Nginx nginx;
  testutil::WriteFile(nginx.root() / "files/vmlinuz", "not the kernel you are looking for");
  const std::string actual = Sha512Hex("not the kernel you are looking for");
  auto cache = MakeCache();
  auto path = cache->Ensure(Spec(nginx.Url("/files/vmlinuz")));
  ASSERT_FALSE(path);
  EXPECT_EQ(path.error().code, ErrorCode::kInvalid);
  EXPECT_EQ(path.error().message, "talos v1.11.3 amd64 kernel: GET " + nginx.Url("/files/vmlinuz") +
                                      ": SHA-512 mismatch: expected " + sha512_.substr(0, 16) +
                                      "..., got " + actual.substr(0, 16) +
                                      "... (34 bytes); nothing stored");
  EXPECT_TRUE(StoredFiles().empty());
  EXPECT_EQ(cache->metrics().verify_failures.Value(), 1);
}

// A mismatch against a cached sha512sum.txt drops that cache, so a corrected
// sha512sum.txt upstream is fetched again next time.
TEST_F(AssetCacheTest, MismatchRefetchesSha512SumTxt) {
  Nginx nginx;
  ServeKernel(nginx);
  testutil::WriteFile(nginx.root() / "files/sha512sum.txt", std::string(128, 'f') + "  vmlinuz\n");
  AssetSpec spec = Spec(nginx.Url("/files/vmlinuz"));
  spec.sha512.clear();
  spec.sha512sum_url = nginx.Url("/files/sha512sum.txt");
  auto cache = MakeCache();
  ASSERT_FALSE(cache->Ensure(spec));
  testutil::WriteFile(nginx.root() / "files/sha512sum.txt", sha512_ + "  vmlinuz\n");
  auto path = cache->Ensure(spec);
  ASSERT_TRUE(path) << path.error().message;
  EXPECT_EQ(CountOf(nginx.AccessLog(4), "GET /files/sha512sum.txt"), 2u);
}

// HTTP 404 is kNotFound with the URL and the status in the message; a password
// in the URL never appears in it.
TEST_F(AssetCacheTest, Http404NamesUrlAndStatus) {
  Nginx nginx;
  auto cache = MakeCache();
  auto path = cache->Ensure(Spec(nginx.Url("/files/missing")));
  ASSERT_FALSE(path);
  EXPECT_EQ(path.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(path.error().message,
            "talos v1.11.3 amd64 kernel: GET " + nginx.Url("/files/missing") + ": HTTP 404");

  const std::string with_secret =
      "http://user:hunter2@127.0.0.1:" + std::to_string(nginx.port()) + "/files/missing?token=s3";
  auto secret = cache->Ensure(Spec(with_secret));
  ASSERT_FALSE(secret);
  EXPECT_FALSE(Contains(secret.error().message, "hunter2")) << secret.error().message;
  EXPECT_FALSE(Contains(secret.error().message, "s3")) << secret.error().message;
  EXPECT_TRUE(Contains(secret.error().message, "http://user:***@127.0.0.1:"))
      << secret.error().message;
  EXPECT_TRUE(StoredFiles().empty());
}

// 5xx is kUnavailable (retry later) and 403 kUnauthorized, each naming URL and status.
TEST_F(AssetCacheTest, HttpStatusCodes) {
  Nginx nginx;
  auto cache = MakeCache();
  auto busy = cache->Ensure(Spec(nginx.Url("/busy")));
  ASSERT_FALSE(busy);
  EXPECT_EQ(busy.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(busy.error().message,
            "talos v1.11.3 amd64 kernel: GET " + nginx.Url("/busy") + ": HTTP 503");
  auto forbidden = cache->Ensure(Spec(nginx.Url("/forbidden")));
  ASSERT_FALSE(forbidden);
  EXPECT_EQ(forbidden.error().code, ErrorCode::kUnauthorized);
  EXPECT_TRUE(Contains(forbidden.error().message, ": HTTP 403")) << forbidden.error().message;
}

// A body larger than max_bytes is refused with the URL named; nothing is kept.
TEST_F(AssetCacheTest, TooLargeRefused) {
  Nginx nginx;
  ServeKernel(nginx);
  AssetCacheOptions options;
  options.max_bytes = 1 << 20;
  auto cache = MakeCache(options);
  auto path = cache->Ensure(Spec(nginx.Url("/files/vmlinuz")));
  ASSERT_FALSE(path);
  EXPECT_EQ(path.error().code, ErrorCode::kInvalid);
  EXPECT_TRUE(Contains(path.error().message,
                       "GET " + nginx.Url("/files/vmlinuz") + ": file is larger than the limit"))
      << path.error().message;
  EXPECT_TRUE(StoredFiles().empty());

  // Without Content-Length (a chunked 2 MB body) the limit is enforced while streaming.
  auto streamed = cache->Ensure(Spec(nginx.Url("/chunked")));
  ASSERT_FALSE(streamed);
  EXPECT_EQ(streamed.error().code, ErrorCode::kInvalid);
  EXPECT_TRUE(Contains(streamed.error().message, "GET " + nginx.Url("/chunked") +
                                                     ": file is larger than the limit of 1048576 "
                                                     "bytes"))
      << streamed.error().message;
  EXPECT_TRUE(StoredFiles().empty());
}

// A server that does not answer is kUnavailable (worth retrying) naming the URL.
TEST_F(AssetCacheTest, UnreachableServerIsUnavailable) {
  const std::string url = "http://127.0.0.1:" + std::to_string(testutil::FreePort()) + "/vmlinuz";
  auto path = MakeCache()->Ensure(Spec(url));
  ASSERT_FALSE(path);
  EXPECT_EQ(path.error().code, ErrorCode::kUnavailable);
  EXPECT_TRUE(Contains(path.error().message, "GET " + url + ": cannot connect"))
      << path.error().message;
}

// A partial download is resumed with a Range request for the rest; only the
// rest is transferred and the result verifies.
TEST_F(AssetCacheTest, ResumesPartialDownload) {
  Nginx nginx;
  ServeKernel(nginx);
  auto cache = MakeCache();
  const std::size_t half = content_.size() / 2;
  testutil::WriteFile(cache->PartialPathFor(sha512_), content_.substr(0, half));
  auto path = cache->Ensure(Spec(nginx.Url("/files/vmlinuz")));
  ASSERT_TRUE(path) << path.error().message;
  EXPECT_EQ(testutil::ReadFile(*path), content_);
  const std::string log = nginx.AccessLog(1);
  EXPECT_TRUE(Contains(log, "GET /files/vmlinuz HTTP/1.1 206 " +
                                std::to_string(content_.size() - half) +
                                " range=bytes=" + std::to_string(half) + "-"))
      << log;
  EXPECT_EQ(cache->metrics().download_bytes.Value(), static_cast<double>(content_.size() - half));
  EXPECT_EQ(StoredFiles(), std::vector<std::string>{sha512_});
}

// A resumed file whose kept bytes are wrong fails the final hash: the partial
// is discarded, the failure counted, and the file downloaded again from zero.
TEST_F(AssetCacheTest, CorruptPartialDiscardedAndRedownloaded) {
  Nginx nginx;
  ServeKernel(nginx);
  auto cache = MakeCache();
  const std::size_t half = content_.size() / 2;
  testutil::WriteFile(cache->PartialPathFor(sha512_), RandomBytes(half, 7));
  auto path = cache->Ensure(Spec(nginx.Url("/files/vmlinuz")));
  ASSERT_TRUE(path) << path.error().message;
  EXPECT_EQ(testutil::ReadFile(*path), content_);
  EXPECT_EQ(cache->metrics().verify_failures.Value(), 1);
  const std::string log = nginx.AccessLog(2);
  EXPECT_TRUE(Contains(log, "HTTP/1.1 206 " + std::to_string(content_.size() - half))) << log;
  EXPECT_TRUE(Contains(log, "HTTP/1.1 200 " + std::to_string(content_.size()) + " range=-\n"))
      << log;
  EXPECT_EQ(StoredFiles(), std::vector<std::string>{sha512_});
}

// A server that ignores Range (answers 200) makes the download restart from
// zero cleanly instead of appending the whole file to the partial.
TEST_F(AssetCacheTest, ServerIgnoringRangeRestartsCleanly) {
  Nginx nginx;
  ServeKernel(nginx);
  auto cache = MakeCache();
  testutil::WriteFile(cache->PartialPathFor(sha512_), content_.substr(0, 1000));
  auto path = cache->Ensure(Spec(nginx.Url("/norange/vmlinuz")));
  ASSERT_TRUE(path) << path.error().message;
  EXPECT_EQ(testutil::ReadFile(*path), content_);
  EXPECT_EQ(cache->metrics().verify_failures.Value(), 0);
}

// A partial longer than the file (416 Range Not Satisfiable) restarts from zero.
TEST_F(AssetCacheTest, OversizedPartialRestarts) {
  Nginx nginx;
  ServeKernel(nginx);
  auto cache = MakeCache();
  testutil::WriteFile(cache->PartialPathFor(sha512_), content_ + "trailing junk");
  auto path = cache->Ensure(Spec(nginx.Url("/files/vmlinuz")));
  ASSERT_TRUE(path) << path.error().message;
  EXPECT_EQ(testutil::ReadFile(*path), content_);
  EXPECT_TRUE(Contains(nginx.AccessLog(2), " 416 ")) << nginx.AccessLog();
}

// A complete, correct partial (crash between download and rename) is moved
// into place without any request.
TEST_F(AssetCacheTest, CompletePartialNeedsNoNetwork) {
  auto cache = MakeCache();
  testutil::WriteFile(cache->PartialPathFor(sha512_), content_);
  auto path = cache->Ensure(Spec("http://127.0.0.1:1/unreachable"));
  ASSERT_TRUE(path) << path.error().message;
  EXPECT_EQ(testutil::ReadFile(*path), content_);
}

// A 302 redirect is followed; a redirect to file:// is refused.
TEST_F(AssetCacheTest, RedirectFollowedButNotToFile) {
  Nginx nginx;
  ServeKernel(nginx);
  auto cache = MakeCache();
  auto path = cache->Ensure(Spec(nginx.Url("/redirect/vmlinuz")));
  ASSERT_TRUE(path) << path.error().message;
  EXPECT_EQ(testutil::ReadFile(*path), content_);
  const std::string log = nginx.AccessLog(2);
  EXPECT_TRUE(Contains(log, "GET /redirect/vmlinuz HTTP/1.1 302")) << log;
  EXPECT_TRUE(Contains(log, "GET /files/vmlinuz HTTP/1.1 200")) << log;

  AssetSpec to_file = Spec(nginx.Url("/redirect/file"));
  to_file.sha512 = std::string(128, '0');
  auto refused = cache->Ensure(to_file);
  ASSERT_FALSE(refused);
  EXPECT_TRUE(Contains(refused.error().message, "redirected to file:///etc/hostname"))
      << refused.error().message;
}

// A transfer slower than the low-speed limit is aborted as kUnavailable and
// keeps its partial; the next Ensure (here from a fast URL) resumes from it.
TEST_F(AssetCacheTest, TooSlowAbortsThenResumes) {
  Nginx nginx;
  ServeKernel(nginx);
  AssetCacheOptions options;
  options.low_speed_bytes_per_second = 1 << 20;
  options.low_speed_time = std::chrono::seconds(1);
  auto cache = MakeCache(options);
  auto slow = cache->Ensure(Spec(nginx.Url("/slow/vmlinuz")));
  ASSERT_FALSE(slow);
  EXPECT_EQ(slow.error().code, ErrorCode::kUnavailable);
  EXPECT_TRUE(Contains(slow.error().message, "timed out or too slow")) << slow.error().message;
  const auto kept = fs::file_size(cache->PartialPathFor(sha512_));
  EXPECT_GT(kept, 0u);

  auto fast = cache->Ensure(Spec(nginx.Url("/files/vmlinuz")));
  ASSERT_TRUE(fast) << fast.error().message;
  EXPECT_EQ(testutil::ReadFile(*fast), content_);
  EXPECT_TRUE(Contains(nginx.AccessLog(2), "range=bytes=" + std::to_string(kept) + "-"))
      << nginx.AccessLog();
}

// Concurrent Ensure calls for the same hash download it once and all get the
// same verified file.
TEST_F(AssetCacheTest, ConcurrentEnsureDownloadsOnce) {
  Nginx nginx;
  ServeKernel(nginx);
  auto cache = MakeCache();
  std::vector<Result<fs::path>> results(4, Fail(ErrorCode::kInternal, "not run"));
  std::vector<std::thread> threads;
  for (auto& result : results) {
    threads.emplace_back([&] { result = cache->Ensure(Spec(nginx.Url("/files/vmlinuz"))); });
  }
  for (auto& thread : threads) {
    thread.join();
  }
  for (const auto& result : results) {
    ASSERT_TRUE(result) << result.error().message;
    EXPECT_EQ(*result, cache->PathFor(sha512_));
  }
  EXPECT_EQ(testutil::ReadFile(cache->PathFor(sha512_)), content_);
  EXPECT_EQ(CountOf(nginx.AccessLog(1), "GET /files/vmlinuz"), 1u) << nginx.AccessLog();
}

// Long downloads log progress lines with the asset, bytes, total and rate.
TEST_F(AssetCacheTest, LogsProgress) {
  testutil::WriteFile(files_ / "vmlinuz-amd64", content_);
  std::ostringstream captured;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(captured);
  auto logger = Logger("assets");
  logger->sinks().push_back(sink);
  AssetCacheOptions options;
  options.progress_min_bytes = 0;
  auto path = MakeCache(options)->Ensure(Spec("file://" + (files_ / "vmlinuz-amd64").string()));
  logger->sinks().pop_back();
  ASSERT_TRUE(path) << path.error().message;
  const std::string log = captured.str();
  EXPECT_TRUE(Contains(log, "asset download progress asset=\"talos v1.11.3 amd64 kernel\" bytes="))
      << log;
  EXPECT_TRUE(Contains(log, "total=" + std::to_string(content_.size()) + " rate=")) << log;
  EXPECT_GE(CountOf(log, "asset download progress"), 1u);
  EXPECT_LE(CountOf(log, "asset download progress"), 11u);
}

// HTTPS verifies the server's certificate: an untrusted one is kUnavailable
// naming the URL, and the download works once its CA is configured.
TEST_F(AssetCacheTest, HttpsVerifiesCertificate) {
  Nginx nginx(/*tls=*/true);
  ServeKernel(nginx);
  auto untrusted = MakeCache()->Ensure(Spec(nginx.TlsUrl("/files/vmlinuz")));
  ASSERT_FALSE(untrusted);
  EXPECT_EQ(untrusted.error().code, ErrorCode::kUnavailable);
  EXPECT_TRUE(Contains(untrusted.error().message,
                       "GET " + nginx.TlsUrl("/files/vmlinuz") + ": TLS certificate not trusted"))
      << untrusted.error().message;

  AssetCacheOptions options;
  options.ca_file = nginx.ca_file();
  auto path = MakeCache(options)->Ensure(Spec(nginx.TlsUrl("/files/vmlinuz")));
  ASSERT_TRUE(path) << path.error().message;
  EXPECT_EQ(testutil::ReadFile(*path), content_);
}

// The proxy comes from the environment (http_proxy), as libcurl does by default.
TEST_F(AssetCacheTest, UsesProxyFromEnvironment) {
  Nginx proxy;  // nginx serves absolute-form requests by path: a stand-in proxy
  ServeKernel(proxy);
  ::setenv("http_proxy", proxy.Url("").c_str(), 1);
  auto path = MakeCache()->Ensure(Spec("http://mirror.ironboot.invalid/files/vmlinuz"));
  ::unsetenv("http_proxy");
  ASSERT_TRUE(path) << path.error().message;
  EXPECT_EQ(testutil::ReadFile(*path), content_);
  EXPECT_TRUE(Contains(proxy.AccessLog(1), "GET http://mirror.ironboot.invalid/files/vmlinuz"))
      << proxy.AccessLog();
}

// RedactUrl hides passwords and query strings and leaves the rest readable.
TEST(RedactUrlTest, HidesSecrets) {
  EXPECT_EQ(RedactUrl("https://host/a/b"), "https://host/a/b");
  EXPECT_EQ(RedactUrl("https://u:p@host:8/a?x=1#f"), "https://u:***@host:8/a?***#f");
  EXPECT_EQ(RedactUrl("https://user@host/a"), "https://user@host/a");
  EXPECT_EQ(RedactUrl("file:///srv/a"), "file:///srv/a");
}

}  // namespace
}  // namespace ironboot::reconcilers
