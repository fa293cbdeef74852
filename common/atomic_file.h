#pragma once
// common/: durable file replacement for state that must survive kill -9 and
// power loss, and for files holding secrets: write a temp file (created with
// `mode`), fsync it, rename it over the target, fsync the directory. Readers
// see the old bytes or the new ones, never a mix; a failed write leaves no
// temp file behind.

#include <filesystem>
#include <string_view>

#include "common/error.h"

namespace ironboot {

struct AtomicWriteOptions {
  int mode = 0600;             // of a newly created file
  bool create_parents = true;  // false: a missing directory is an error
};

// Errors read "cannot write <file>: <reason>".
Result<void> WriteFileAtomically(const std::filesystem::path& file, std::string_view bytes,
                                 AtomicWriteOptions options = {});

}  // namespace ironboot
