#pragma once
// manifests/: Render(), a validated DesiredState to the BootPlan the boot
// server serves. Pure and deterministic: the same state gives byte-identical
// output (no clock, no environment, no hash-order iteration).

#include <expected>
#include <map>
#include <string>

#include "manifests/base_configs.h"
#include "manifests/boot_plan.h"
#include "manifests/diagnostics.h"
#include "manifests/types.h"

namespace ironboot::manifests {

// Talos's required kernel args for metal PXE (FACTS.md), after the
// "initrd=initramfs.xz" that EFI-stub kernels need to find iPXE's initrd.
inline constexpr const char* kRequiredKernelArgs[] = {"initrd=initramfs.xz", "talos.platform=metal",
                                                      "slab_nomerge", "pti=on"};
inline constexpr size_t kMaxKernelCommandLine = 4096;

// Errors (a patch that does not apply, a base config that is not a Talos
// config, a kernel command line over 4096 bytes) name the machine and the
// document field they come from.
std::expected<BootPlan, Diagnostics> Render(const DesiredState& state,
                                            const BaseConfigSource& base_configs);

// Machine configs already rendered, by machine, role and release. Valid only
// for one DesiredState and base-config source (the caller clears it when
// either changes): a rollout re-renders one commit with different releases
// pinned, and only the machines whose release moved need a new config.
struct RenderMemo {
  std::map<std::string, std::string> configs;
};
std::expected<BootPlan, Diagnostics> Render(const DesiredState& state,
                                            const BaseConfigSource& base_configs, RenderMemo* memo);
// Same, with the base configs from the repo.
std::expected<BootPlan, Diagnostics> Render(const DesiredState& state);

// The served path of a release's files: "talos/1.11.3/amd64/vmlinuz" (the
// seed's layout: version without "v").
std::string KernelServedPath(const TalosRelease& release);
std::string InitramfsServedPath(const TalosRelease& release);

}  // namespace ironboot::manifests
