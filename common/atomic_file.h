#pragma once
// common/: durable file replacement for state that must survive kill -9 and
// power loss: write a temp file, fsync it, rename it over the target, fsync
// the directory. Readers see the old bytes or the new ones, never a mix.

#include <filesystem>
#include <string_view>

#include "common/error.h"

namespace ironboot {

// Creates the parent directories. `mode` applies to a newly created file.
Result<void> WriteFileAtomically(const std::filesystem::path& file, std::string_view bytes,
                                 int mode = 0600);

}  // namespace ironboot
