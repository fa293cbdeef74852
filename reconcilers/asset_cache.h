#pragma once
// reconcilers/: the assets reconciler's core: a content-addressed cache of
// Talos kernels and initramfs images, downloaded with libcurl and verified with
// SHA-512 before anything can serve them.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include "common/clock.h"
#include "common/error.h"

namespace ironboot::reconcilers {

// One file to fetch, e.g. a release's kernel.
struct AssetSpec {
  // For messages and logs: "talos v1.11.3 amd64 kernel".
  std::string name;
  // http://, https:// or file://. Redirects may go to http(s) only.
  std::string url;
  // The expected SHA-512, 128 hex digits (either case). When empty, the hash is
  // looked up in `sha512sum_url` under `file_name_in_sums`.
  std::string sha512;
  // The release's sha512sum.txt ("<hex>  <name>" lines); used only when
  // `sha512` is empty.
  std::string sha512sum_url;
  // The file's name in sha512sum.txt, e.g. "vmlinuz-amd64"; when empty, the
  // last path segment of `url`.
  std::string file_name_in_sums;
};

// Network behaviour. The defaults suit a release download over the internet.
struct AssetCacheOptions {
  std::chrono::milliseconds connect_timeout{std::chrono::seconds(15)};
  // A transfer slower than `low_speed_bytes_per_second` for `low_speed_time`
  // is aborted (kUnavailable); the partial file is kept for the next attempt.
  long low_speed_bytes_per_second = 1024;
  std::chrono::seconds low_speed_time{60};
  long max_redirects = 10;
  // Refuse bodies larger than this (a wrong URL must not fill the disk).
  std::int64_t max_bytes = std::int64_t{4} << 30;
  // Progress is logged at info every 10% of the size, and at least this often
  // when the size is unknown or the transfer is slow.
  std::chrono::seconds progress_interval{5};
  // Transfers smaller than this (or of unknown size below it) log no progress.
  std::int64_t progress_min_bytes = std::int64_t{16} << 20;
  // PEM bundle of CAs trusted for https:// (e.g. a private mirror's CA); empty
  // means the system's trust store. Certificates and host names are always
  // verified.
  std::filesystem::path ca_file;
};

// The cache's metrics, registered on the injected registry.
struct AssetMetrics {
  explicit AssetMetrics(prometheus::Registry& registry);
  // ironboot_asset_download_bytes_total: bytes received for assets (all
  // transfers, including those that later failed verification).
  prometheus::Counter& download_bytes;
  // ironboot_asset_verify_failures_total: downloads whose SHA-512 did not match.
  prometheus::Counter& verify_failures;
};

// A content-addressed store of verified files under `<state_dir>/assets/`:
//   sha512/<hex>           a verified file, named by its lowercase SHA-512;
//   sha512/<hex>.partial   an interrupted download, resumed with a Range request;
//   sha512/<hex>.lock      flock(2) lock serialising downloads of one hash;
//   sums/<key>.txt         cached sha512sum.txt files, keyed by URL hash.
// Invariant: a file appears under sha512/<hex> only by an atomic rename after its
// bytes hashed to <hex> and were fsync'd, so its presence is its verification:
// Ensure does not re-hash it. Never write into that directory by other means.
//
// Thread safety: Ensure may be called from any number of threads, and by several
// processes sharing one state_dir. Calls for the same hash are serialised by an
// exclusive flock on sha512/<hex>.lock (flock conflicts between separate opens,
// so this also covers threads of one process); the second caller waits for the
// first and then finds the verified file. Calls for different hashes run in
// parallel. Ensure blocks for the whole download: call it from a worker thread.
class AssetCache {
 public:
  AssetCache(std::filesystem::path state_dir, std::shared_ptr<prometheus::Registry> registry,
             ClockPtr clock, AssetCacheOptions options = {});
  ~AssetCache();
  AssetCache(const AssetCache&) = delete;
  AssetCache& operator=(const AssetCache&) = delete;

  // Returns the path of the verified file for `spec`, downloading it first when
  // it is not cached. When the file is cached and the hash is known (from
  // `spec.sha512` or a cached sha512sum.txt), no network access happens.
  // A partial download left by an earlier attempt is resumed; if the server
  // ignores the range the download restarts from zero, and if a resumed file
  // fails verification it is discarded and downloaded once more from zero.
  // Errors name the asset and the URL (credentials and query redacted):
  //   kInvalid      bad spec, bad sha512sum.txt, or SHA-512 mismatch (message
  //                 has the first 16 hex of the expected and actual hash);
  //                 nothing is stored, ironboot_asset_verify_failures_total +1.
  //   kNotFound     HTTP 404/410, missing file:// file, or no line for the file
  //                 in sha512sum.txt.
  //   kUnauthorized HTTP 401/403.
  //   kUnavailable  connection refused, DNS, timeout, too slow, 5xx, untrusted TLS
  //                 certificate: retry later (or fix ca_file).
  //   kInternal     local disk errors.
  Result<std::filesystem::path> Ensure(const AssetSpec& spec);

  // Where a verified file for `sha512` (lowercase hex) lives, present or not.
  std::filesystem::path PathFor(const std::string& sha512) const;
  // Where an interrupted download of `sha512` is kept.
  std::filesystem::path PartialPathFor(const std::string& sha512) const;

  const AssetMetrics& metrics() const { return metrics_; }

 private:
  struct ExpectedHash {
    std::string sha512;                     // lowercase hex
    std::filesystem::path sums_cache_file;  // empty when the spec carried the hash
  };
  Result<ExpectedHash> ResolveSha512(const AssetSpec& spec);
  Result<std::string> FetchSmall(const AssetSpec& spec, const std::string& url);
  // Downloads under the hash's lock; kInvalid only for a SHA-512 mismatch.
  Result<std::filesystem::path> Download(const AssetSpec& spec, const std::string& sha512);

  // Constant after construction.
  const std::filesystem::path state_dir_;
  const std::shared_ptr<prometheus::Registry> registry_;
  const ClockPtr clock_;
  const AssetCacheOptions options_;
  AssetMetrics metrics_;
};

// `url` with any password and the query string replaced by "***", for messages
// and logs: "https://user:***@host/path?***".
std::string RedactUrl(const std::string& url);

}  // namespace ironboot::reconcilers
