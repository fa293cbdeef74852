#pragma once
// talos/: the archive Talos's MachineService.Kubeconfig streams: a .tar.gz
// holding one file, the admin kubeconfig. Unpacked here with zlib and our own
// tar (ustar/GNU/pax header) reader.

#include <string>
#include <string_view>

#include "common/error.h"

namespace ironboot::talos {

// Upper bound of the unpacked archive (a kubeconfig is a few KiB); a larger
// one is refused rather than inflated into memory.
inline constexpr size_t kMaxKubeconfigArchiveBytes = 16 * 1024 * 1024;

// Gunzips `tar_gz` and returns the content of its first regular file.
// kInvalid, prefixed with `what`, when it is not gzip, is truncated or
// corrupt, unpacks past kMaxKubeconfigArchiveBytes, has a bad tar header
// checksum, or holds no regular file.
Result<std::string> ExtractSingleFileTarGz(std::string_view tar_gz, std::string_view what);

// The gzip layer alone (all members concatenated).
Result<std::string> Gunzip(std::string_view gz, std::string_view what,
                           size_t max_bytes = kMaxKubeconfigArchiveBytes);

}  // namespace ironboot::talos
