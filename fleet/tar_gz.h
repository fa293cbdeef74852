#pragma once
// fleet/: a .tar.gz holding one regular file (what Talos streams for
// Kubeconfig), written with our own ustar header and zlib's gzip.

#include <string>
#include <string_view>

#include "common/error.h"

namespace ironboot::fleet {

// kInvalid when `name` does not fit a ustar name (100 bytes); kInternal when
// zlib fails.
Result<std::string> SingleFileTarGz(std::string_view name, std::string_view content, long mtime);

}  // namespace ironboot::fleet
