#pragma once
// controller/: the last good published plan on disk, so a restarted server
// serves immediately, before git answers. One JSON file written with fsync
// and an atomic rename, mode 0600 (machine configs hold secrets).

#include <filesystem>

#include "common/error.h"
#include "reconcilers/boot_publish.h"

namespace ironboot::controller {

Result<void> SavePlan(const reconcilers::PublishedPlan& plan, const std::filesystem::path& file);

// kNotFound when there is no file yet; kInvalid (naming the file) when it
// cannot be parsed; assets whose files vanished are an error too.
Result<reconcilers::PublishedPlan> LoadPlan(const std::filesystem::path& file);

}  // namespace ironboot::controller
