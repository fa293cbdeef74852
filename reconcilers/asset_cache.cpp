#include "reconcilers/asset_cache.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>
#include <mutex>
#include <system_error>
#include <utility>

#include <fmt/format.h>

#include "common/log.h"
#include "reconcilers/sha512.h"

namespace ironboot::reconcilers {

namespace fs = std::filesystem;

namespace {

constexpr std::int64_t kMaxSumsBytes = 1 << 20;

std::string Errno(const std::string& what, const fs::path& path) {
  return what + " " + path.string() + ": " + std::strerror(errno);
}

// A file descriptor closed on destruction.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { Reset(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  bool ok() const { return fd_ >= 0; }
  void Reset(int fd = -1) {
    if (fd_ >= 0) {
      ::close(fd_);
    }
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

// Holds an exclusive flock(2) on a lock file for its lifetime.
Result<std::unique_ptr<Fd>> LockFile(const fs::path& path) {
  auto fd = std::make_unique<Fd>(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (!fd->ok()) {
    return Fail(ErrorCode::kInternal, Errno("open lock file", path));
  }
  while (::flock(fd->get(), LOCK_EX) != 0) {
    if (errno != EINTR) {
      return Fail(ErrorCode::kInternal, Errno("lock", path));
    }
  }
  return fd;
}

bool WriteAll(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return false;
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

bool FsyncDir(const fs::path& dir) {
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  return fd.ok() && ::fsync(fd.get()) == 0;
}

// Writes `content` to `path` via a unique temporary file and an atomic rename.
Result<void> WriteFileAtomic(const fs::path& path, std::string_view content) {
  std::string tmpl = path.string() + ".XXXXXX";
  Fd fd(::mkstemp(tmpl.data()));
  if (!fd.ok()) {
    return Fail(ErrorCode::kInternal, Errno("create", tmpl));
  }
  if (!WriteAll(fd.get(), content) || ::fsync(fd.get()) != 0 ||
      ::rename(tmpl.c_str(), path.c_str()) != 0) {
    Error error{ErrorCode::kInternal, Errno("write", path)};
    ::unlink(tmpl.c_str());
    return std::unexpected(error);
  }
  return {};
}

std::string HumanBytes(double bytes) {
  if (bytes >= 1024.0 * 1024.0) {
    return fmt::format("{:.1f}MiB", bytes / (1024.0 * 1024.0));
  }
  if (bytes >= 1024.0) {
    return fmt::format("{:.1f}KiB", bytes / 1024.0);
  }
  return fmt::format("{:.0f}B", bytes);
}

void CurlGlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// One libcurl transfer: a GET of `url` (from byte `resume_from`), its body
// handed to `sink`, progress to `progress`.
struct Transfer {
  std::string url;
  std::int64_t resume_from = 0;
  std::int64_t max_bytes = 0;
  // Returns false to abort the transfer (a local write failure).
  std::function<bool(std::string_view)> sink;
  // (bytes received in this transfer, bytes expected in this transfer or 0).
  std::function<void(std::int64_t, std::int64_t)> progress;

  // Results.
  CURLcode code = CURLE_OK;
  long status = 0;  // final HTTP status; 0 for file://
  std::string effective_url;
  std::string curl_error;
  bool sink_failed = false;
};

std::size_t WriteCallback(char* data, std::size_t size, std::size_t count, void* user) {
  auto* transfer = static_cast<Transfer*>(user);
  const std::size_t n = size * count;
  if (!transfer->sink(std::string_view(data, n))) {
    transfer->sink_failed = true;
    return 0;
  }
  return n;
}

int ProgressCallback(void* user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t, curl_off_t) {
  auto* transfer = static_cast<Transfer*>(user);
  if (transfer->progress) {
    transfer->progress(dlnow, dltotal);
  }
  return 0;
}

void Perform(Transfer& transfer, const AssetCacheOptions& options) {
  CurlGlobalInit();
  CURL* curl = curl_easy_init();
  if (curl == nullptr) {
    transfer.code = CURLE_FAILED_INIT;
    transfer.curl_error = "curl_easy_init failed";
    return;
  }
  std::array<char, CURL_ERROR_SIZE> error_buffer{};
  curl_easy_setopt(curl, CURLOPT_URL, transfer.url.c_str());
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error_buffer.data());
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "ironboot");
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https,file");
  // A redirect must not turn a remote URL into a local file read.
  curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(curl, CURLOPT_MAXREDIRS, options.max_redirects);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(options.connect_timeout.count()));
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, options.low_speed_bytes_per_second);
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, static_cast<long>(options.low_speed_time.count()));
  if (!options.ca_file.empty()) {
    curl_easy_setopt(curl, CURLOPT_CAINFO, options.ca_file.c_str());
  }
  // 4xx/5xx bodies are never handed to the sink.
  curl_easy_setopt(curl, CURLOPT_FAILONERROR, 1L);
  if (transfer.max_bytes > 0) {
    curl_easy_setopt(curl, CURLOPT_MAXFILESIZE_LARGE,
                     static_cast<curl_off_t>(transfer.max_bytes - transfer.resume_from));
  }
  if (transfer.resume_from > 0) {
    curl_easy_setopt(curl, CURLOPT_RESUME_FROM_LARGE,
                     static_cast<curl_off_t>(transfer.resume_from));
  }
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &WriteCallback);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &transfer);
  curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, &ProgressCallback);
  curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &transfer);
  curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
  // Proxies come from http_proxy/https_proxy/no_proxy, libcurl's default.

  transfer.code = curl_easy_perform(curl);
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &transfer.status);
  char* effective = nullptr;
  if (curl_easy_getinfo(curl, CURLINFO_EFFECTIVE_URL, &effective) == CURLE_OK &&
      effective != nullptr) {
    transfer.effective_url = effective;
  }
  transfer.curl_error = error_buffer[0] != '\0' ? std::string(error_buffer.data())
                                                : curl_easy_strerror(transfer.code);
  curl_easy_cleanup(curl);
}

ErrorCode CodeForStatus(long status) {
  if (status == 404 || status == 410) {
    return ErrorCode::kNotFound;
  }
  if (status == 401 || status == 403 || status == 407) {
    return ErrorCode::kUnauthorized;
  }
  if (status == 408 || status == 429 || status >= 500) {
    return ErrorCode::kUnavailable;
  }
  return ErrorCode::kInvalid;
}

// Turns a failed transfer into an Error that names `what` and the URL.
Error TransferError(const std::string& what, const Transfer& transfer) {
  std::string prefix = what + ": GET " + RedactUrl(transfer.url);
  if (!transfer.effective_url.empty() && transfer.effective_url != transfer.url) {
    prefix += " (redirected to " + RedactUrl(transfer.effective_url) + ")";
  }
  switch (transfer.code) {
    case CURLE_HTTP_RETURNED_ERROR:
      return Error{CodeForStatus(transfer.status),
                   prefix + ": HTTP " + std::to_string(transfer.status)};
    case CURLE_FILE_COULDNT_READ_FILE:
      return Error{ErrorCode::kNotFound,
                   prefix + ": cannot read file (" + transfer.curl_error + ")"};
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
      return Error{ErrorCode::kInvalid, prefix + ": bad URL, want http://, https:// or file:// (" +
                                            transfer.curl_error + ")"};
    case CURLE_FILESIZE_EXCEEDED:
      return Error{ErrorCode::kInvalid,
                   prefix + ": file is larger than the limit (" + transfer.curl_error + ")"};
    case CURLE_TOO_MANY_REDIRECTS:
      return Error{ErrorCode::kUnavailable, prefix + ": too many redirects"};
    case CURLE_OPERATION_TIMEDOUT:
      return Error{ErrorCode::kUnavailable,
                   prefix + ": timed out or too slow (" + transfer.curl_error + ")"};
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
      return Error{ErrorCode::kUnavailable,
                   prefix + ": TLS certificate not trusted (" + transfer.curl_error + ")"};
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
      return Error{ErrorCode::kUnavailable,
                   prefix + ": cannot connect (" + transfer.curl_error + ")"};
    default:
      return Error{ErrorCode::kUnavailable, prefix + ": " + transfer.curl_error};
  }
}

std::string LastPathSegment(const std::string& url) {
  std::string path = url.substr(0, url.find_first_of("?#"));
  const std::size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string Lower(std::string text) {
  for (char& c : text) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return text;
}

// Logs a long transfer's progress every 10% and at least every interval.
class ProgressLog {
 public:
  ProgressLog(std::string name, std::int64_t offset, const AssetCacheOptions& options,
              ClockPtr clock)
      : name_(std::move(name)),
        offset_(offset),
        options_(options),
        clock_(std::move(clock)),
        start_(clock_->Monotonic()),
        last_log_(start_) {}

  void Update(std::int64_t now_bytes, std::int64_t expected_bytes) {
    const std::int64_t total = expected_bytes > 0 ? offset_ + expected_bytes : 0;
    const std::int64_t have = offset_ + now_bytes;
    if (std::max(total, have) < options_.progress_min_bytes) {
      return;
    }
    const auto now = clock_->Monotonic();
    const int decile = total > 0 ? static_cast<int>(have * 10 / total) : 0;
    if (decile > last_decile_ || now - last_log_ >= options_.progress_interval) {
      last_decile_ = std::max(decile, last_decile_);
      last_log_ = now;
      Logger("assets")->info("asset download progress asset=\"{}\" bytes={} total={} rate={}/s",
                             name_, have, total > 0 ? std::to_string(total) : "unknown",
                             HumanBytes(Rate(now_bytes, now)));
    }
  }

  double Rate(std::int64_t bytes, std::chrono::steady_clock::time_point now) const {
    const double seconds = std::chrono::duration<double>(now - start_).count();
    return seconds > 0 ? static_cast<double>(bytes) / seconds : 0.0;
  }
  double Seconds() const {
    return std::chrono::duration<double>(clock_->Monotonic() - start_).count();
  }

 private:
  const std::string name_;
  const std::int64_t offset_;
  const AssetCacheOptions& options_;
  const ClockPtr clock_;
  const std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_log_;
  int last_decile_ = 0;
};

}  // namespace

std::string RedactUrl(const std::string& url) {
  std::string out = url;
  const std::size_t query = out.find('?');
  if (query != std::string::npos) {
    const std::size_t fragment = out.find('#', query);
    out = out.substr(0, query) + "?***" +
          (fragment == std::string::npos ? std::string() : out.substr(fragment));
  }
  const std::size_t scheme = out.find("://");
  if (scheme != std::string::npos) {
    const std::size_t authority = scheme + 3;
    const std::size_t end = out.find_first_of("/?#", authority);
    const std::size_t at = out.rfind('@', end == std::string::npos ? out.size() : end);
    if (at != std::string::npos && at >= authority) {
      const std::size_t colon = out.find(':', authority);
      if (colon != std::string::npos && colon < at) {
        out = out.substr(0, colon + 1) + "***" + out.substr(at);
      }
    }
  }
  return out;
}

AssetMetrics::AssetMetrics(prometheus::Registry& registry)
    : download_bytes(prometheus::BuildCounter()
                         .Name("ironboot_asset_download_bytes_total")
                         .Help("Bytes received while downloading boot assets.")
                         .Register(registry)
                         .Add({})),
      verify_failures(prometheus::BuildCounter()
                          .Name("ironboot_asset_verify_failures_total")
                          .Help("Asset downloads whose SHA-512 did not match.")
                          .Register(registry)
                          .Add({})) {}

AssetCache::AssetCache(fs::path state_dir, std::shared_ptr<prometheus::Registry> registry,
                       ClockPtr clock, AssetCacheOptions options)
    : state_dir_(std::move(state_dir)),
      registry_(std::move(registry)),
      clock_(std::move(clock)),
      options_(options),
      metrics_(*registry_) {}

AssetCache::~AssetCache() = default;

fs::path AssetCache::PathFor(const std::string& sha512) const {
  return state_dir_ / "assets" / "sha512" / sha512;
}

fs::path AssetCache::PartialPathFor(const std::string& sha512) const {
  return state_dir_ / "assets" / "sha512" / (sha512 + ".partial");
}

Result<fs::path> AssetCache::Ensure(const AssetSpec& spec) {
  if (spec.url.empty()) {
    return Fail(ErrorCode::kInvalid, spec.name + ": no URL");
  }
  if (const std::string lower = Lower(spec.url.substr(0, 8)); !lower.starts_with("http://") &&
                                                              !lower.starts_with("https://") &&
                                                              !lower.starts_with("file://")) {
    return Fail(ErrorCode::kInvalid, spec.name + ": URL " + RedactUrl(spec.url) +
                                         " is not http://, https:// or file://");
  }
  auto expected = ResolveSha512(spec);
  if (!expected) {
    return std::unexpected(expected.error());
  }
  std::error_code ec;
  const fs::path final_path = PathFor(expected->sha512);
  if (fs::is_regular_file(final_path, ec)) {
    return final_path;
  }
  auto path = Download(spec, expected->sha512);
  if (!path && path.error().code == ErrorCode::kInvalid && !expected->sums_cache_file.empty()) {
    // The cached sha512sum.txt may be stale (a re-published release): fetch
    // it again next time.
    fs::remove(expected->sums_cache_file, ec);
  }
  return path;
}

Result<AssetCache::ExpectedHash> AssetCache::ResolveSha512(const AssetSpec& spec) {
  if (!spec.sha512.empty()) {
    if (!IsSha512Hex(spec.sha512)) {
      return Fail(ErrorCode::kInvalid,
                  fmt::format("{}: sha512 \"{}\" is not a SHA-512 (want 128 hex digits, got {} "
                              "characters)",
                              spec.name, spec.sha512.substr(0, 140), spec.sha512.size()));
    }
    return ExpectedHash{Lower(spec.sha512), {}};
  }
  if (spec.sha512sum_url.empty()) {
    return Fail(ErrorCode::kInvalid,
                spec.name + ": no sha512 and no sha512sum.txt URL; refusing to download " +
                    RedactUrl(spec.url) + " without a checksum");
  }
  const std::string file_name =
      spec.file_name_in_sums.empty() ? LastPathSegment(spec.url) : spec.file_name_in_sums;

  const fs::path sums_dir = state_dir_ / "assets" / "sums";
  std::error_code ec;
  fs::create_directories(sums_dir, ec);
  if (ec) {
    return Fail(ErrorCode::kInternal, "create " + sums_dir.string() + ": " + ec.message());
  }
  const fs::path cache_file = sums_dir / (Sha512Hex(spec.sha512sum_url).substr(0, 32) + ".txt");
  const std::string source = RedactUrl(spec.sha512sum_url);

  std::string text;
  bool from_cache = false;
  if (fs::is_regular_file(cache_file, ec)) {
    std::ifstream in(cache_file, std::ios::binary);
    if (in) {
      text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
      from_cache = true;
    }
  }
  if (!from_cache) {
    auto fetched = FetchSmall(spec, spec.sha512sum_url);
    if (!fetched) {
      return std::unexpected(fetched.error());
    }
    text = std::move(*fetched);
  }
  auto sums = ParseSha512Sums(text, source);
  if (!sums) {
    if (from_cache) {
      fs::remove(cache_file, ec);
    }
    return std::unexpected(sums.error().Wrap(spec.name));
  }
  if (!from_cache) {
    if (auto written = WriteFileAtomic(cache_file, text); !written) {
      Logger("assets")->warn("cannot cache sha512sum.txt url={} error=\"{}\"", source,
                             written.error().message);
    }
  }
  auto it = sums->find(file_name);
  if (it == sums->end()) {
    std::string listed;
    for (const auto& [name, hex] : *sums) {
      listed += (listed.empty() ? "" : ", ") + name;
    }
    return Fail(ErrorCode::kNotFound,
                fmt::format("{}: {} has no line for \"{}\" (it lists: {})", spec.name, source,
                            file_name, listed.empty() ? "nothing" : listed));
  }
  return ExpectedHash{it->second, cache_file};
}

Result<std::string> AssetCache::FetchSmall(const AssetSpec& spec, const std::string& url) {
  std::string body;
  Transfer transfer;
  transfer.url = url;
  transfer.max_bytes = kMaxSumsBytes;
  transfer.sink = [&body](std::string_view bytes) {
    if (body.size() + bytes.size() > static_cast<std::size_t>(kMaxSumsBytes)) {
      return false;
    }
    body.append(bytes);
    return true;
  };
  Perform(transfer, options_);
  if (transfer.sink_failed) {
    return Fail(ErrorCode::kInvalid, fmt::format("{}: GET {}: larger than {} bytes", spec.name,
                                                 RedactUrl(url), kMaxSumsBytes));
  }
  if (transfer.code != CURLE_OK) {
    return std::unexpected(TransferError(spec.name, transfer));
  }
  return body;
}

Result<fs::path> AssetCache::Download(const AssetSpec& spec, const std::string& sha512) {
  auto log = Logger("assets");
  const fs::path dir = PathFor(sha512).parent_path();
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    return Fail(ErrorCode::kInternal, "create " + dir.string() + ": " + ec.message());
  }
  auto lock = LockFile(dir / (sha512 + ".lock"));
  if (!lock) {
    return std::unexpected(lock.error().Wrap(spec.name));
  }
  const fs::path final_path = PathFor(sha512);
  if (fs::is_regular_file(final_path, ec)) {
    return final_path;  // another caller finished it while we waited
  }
  const fs::path partial = PartialPathFor(sha512);
  const std::string url = RedactUrl(spec.url);

  Fd fd(::open(partial.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  if (!fd.ok()) {
    return Fail(ErrorCode::kInternal, spec.name + ": " + Errno("open", partial));
  }
  // Hash what an earlier attempt left, so the stream's hash covers the whole file.
  Sha512 hasher;
  std::int64_t offset = 0;
  {
    std::array<char, 64 * 1024> buffer{};
    ssize_t n = 0;
    while ((n = ::pread(fd.get(), buffer.data(), buffer.size(), offset)) > 0) {
      hasher.Update(std::string_view(buffer.data(), static_cast<std::size_t>(n)));
      offset += n;
    }
    if (n < 0) {
      return Fail(ErrorCode::kInternal, spec.name + ": " + Errno("read", partial));
    }
  }

  auto restart = [&]() -> Result<void> {
    if (::ftruncate(fd.get(), 0) != 0) {
      return Fail(ErrorCode::kInternal, spec.name + ": " + Errno("truncate", partial));
    }
    hasher.Reset();
    offset = 0;
    return {};
  };

  bool may_restart = true;  // one fresh restart per Ensure after a failed resume
  while (true) {
    const std::int64_t resumed_from = offset;
    std::string actual = hasher.HexDigest();
    if (actual != sha512) {
      if (resumed_from > 0) {
        log->info("resuming asset download asset=\"{}\" url={} from_bytes={}", spec.name, url,
                  resumed_from);
      } else {
        log->info("downloading asset asset=\"{}\" url={}", spec.name, url);
      }
      ProgressLog progress(spec.name, resumed_from, options_, clock_);
      std::int64_t received = 0;
      Transfer transfer;
      transfer.url = spec.url;
      transfer.resume_from = resumed_from;
      transfer.max_bytes = options_.max_bytes;
      bool too_large = false;
      transfer.sink = [&](std::string_view bytes) {
        // libcurl checks max_bytes against Content-Length only; a body
        // without one is stopped here.
        if (offset + static_cast<std::int64_t>(bytes.size()) > options_.max_bytes) {
          too_large = true;
          return false;
        }
        if (!WriteAll(fd.get(), bytes)) {
          return false;
        }
        hasher.Update(bytes);
        received += static_cast<std::int64_t>(bytes.size());
        offset += static_cast<std::int64_t>(bytes.size());
        metrics_.download_bytes.Increment(static_cast<double>(bytes.size()));
        return true;
      };
      transfer.progress = [&](std::int64_t now, std::int64_t total) {
        progress.Update(now, total);
      };
      Perform(transfer, options_);

      if (too_large) {
        fd.Reset();
        fs::remove(partial, ec);
        Error error{ErrorCode::kInvalid,
                    fmt::format("{}: GET {}: file is larger than the limit of {} bytes", spec.name,
                                url, options_.max_bytes)};
        log->warn("asset download refused asset=\"{}\" url={} error=\"{}\"", spec.name, url,
                  error.message);
        return std::unexpected(error);
      }
      if (transfer.sink_failed) {
        return Fail(ErrorCode::kInternal, spec.name + ": " + Errno("write", partial));
      }
      const bool range_refused =
          transfer.code == CURLE_RANGE_ERROR || transfer.code == CURLE_BAD_DOWNLOAD_RESUME ||
          (transfer.code == CURLE_HTTP_RETURNED_ERROR && transfer.status == 416);
      if (resumed_from > 0 && range_refused && may_restart) {
        log->warn(
            "server did not resume asset download, restarting from zero asset=\"{}\" url={} "
            "from_bytes={} error=\"{}\"",
            spec.name, url, resumed_from, transfer.curl_error);
        may_restart = false;
        if (auto r = restart(); !r) {
          return std::unexpected(r.error());
        }
        continue;
      }
      if (transfer.code != CURLE_OK) {
        Error error = TransferError(spec.name, transfer);
        if (offset == 0) {
          fd.Reset();
          fs::remove(partial, ec);
        }
        log->warn("asset download failed asset=\"{}\" url={} kept_partial_bytes={} error=\"{}\"",
                  spec.name, url, offset, error.message);
        return std::unexpected(error);
      }
      const double seconds = progress.Seconds();
      log->info(
          "downloaded asset asset=\"{}\" url={} bytes={} received={} seconds={:.3f} rate={}/s",
          spec.name, url, offset, received, seconds,
          HumanBytes(seconds > 0 ? static_cast<double>(received) / seconds : 0.0));
      actual = hasher.HexDigest();
    }

    if (actual != sha512) {
      metrics_.verify_failures.Increment();
      const std::string message =
          fmt::format("{}: GET {}: SHA-512 mismatch: expected {}..., got {}... ({} bytes)",
                      spec.name, url, sha512.substr(0, 16), actual.substr(0, 16), offset);
      if (resumed_from > 0 && may_restart) {
        // The bytes kept from an earlier attempt may be what is wrong.
        log->warn("resumed asset failed verification, downloading again from zero {}", message);
        may_restart = false;
        if (auto r = restart(); !r) {
          return std::unexpected(r.error());
        }
        continue;
      }
      fd.Reset();
      fs::remove(partial, ec);
      log->error("asset verification failed {}", message);
      return Fail(ErrorCode::kInvalid, message + "; nothing stored");
    }

    if (::fsync(fd.get()) != 0) {
      return Fail(ErrorCode::kInternal, spec.name + ": " + Errno("fsync", partial));
    }
    fd.Reset();
    if (::rename(partial.c_str(), final_path.c_str()) != 0) {
      return Fail(ErrorCode::kInternal, spec.name + ": " + Errno("rename", partial));
    }
    FsyncDir(dir);
    log->info("asset verified and stored asset=\"{}\" sha512={}... bytes={} path={}", spec.name,
              sha512.substr(0, 16), offset, final_path.string());
    return final_path;
  }
}

}  // namespace ironboot::reconcilers
