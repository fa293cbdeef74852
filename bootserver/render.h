#pragma once
// bootserver/: the text Matchbox answers with, rendered from a profile or a
// group. Pure functions; byte-for-byte what Matchbox v0.11 sends.

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "bootserver/labels.h"
#include "bootserver/model.h"
#include "common/error.h"

namespace ironboot::bootserver {

// /boot.ipxe and /boot.ipxe.0: chainloads /ipxe with the machine's labels.
extern const std::string_view kChainloadScript;

// /ipxe: "#!ipxe\nkernel <kernel> <args...>\ninitrd <each>\nboot\n". Args are
// not templated: "${...}" is left for iPXE to expand.
std::string IpxeScript(const Profile& profile);

// /grub: a GRUB2 config with an EFI and a BIOS entry.
std::string GrubConfig(const Profile& profile);

// The variables /metadata and /generic see: the group's metadata, its
// selectors (keys lowercased), and "request": {"query": labels, "raw_query"}.
nlohmann::json CollectVariables(const Group& group, const Labels& labels,
                                std::string_view raw_query);

// /metadata: variables flattened to KEY=value lines (nested keys joined with
// "_", uppercased). Strings, numbers and booleans only, as Matchbox; sorted by
// key (Matchbox's order is random).
std::string MetadataEnv(const nlohmann::json& variables);

// /generic: renders a Go-template subset: "{{.key}}", nested "{{.a.b}}",
// "{{ .key }}" and trim markers "{{-"/"-}}". A missing key is an error
// (Matchbox uses missingkey=error and answers 404); so is any other action.
Result<std::string> RenderTemplate(std::string_view tmpl, const nlohmann::json& variables);

}  // namespace ironboot::bootserver
