#pragma once
// controller/: the Source seam. A source produces snapshots of the cluster
// repository: a revision and the files under the configured path.

#include <map>
#include <memory>
#include <string>

#include "common/error.h"

namespace ironboot::controller {

// One revision of the cluster repository, read straight from git objects.
struct Snapshot {
  std::string revision;  // "<ref>@sha1:<40 hex>", e.g. "main@sha1:3f2a..."
  std::string commit;    // 40 hex
  // Paths relative to the configured subdirectory ("machines/cp1.yaml") -> bytes.
  std::map<std::string, std::string> files;
};

class Source {
 public:
  virtual ~Source() = default;
  // Fetches the remote and returns the snapshot at the configured ref.
  // Errors: kUnavailable (remote unreachable), kUnauthorized (credentials
  // refused; the message names the URL and where the credential came from,
  // never the secret), kNotFound (ref gone), kInvalid (bad path/ref).
  virtual Result<Snapshot> Fetch() = 0;
  // A description for logs and /status, e.g. "git://127.0.0.1:9418/cluster main".
  virtual std::string Describe() const = 0;
};
using SourcePtr = std::unique_ptr<Source>;

}  // namespace ironboot::controller
