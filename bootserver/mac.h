#pragma once
// bootserver/: MAC address parsing, as Matchbox (Go's net.ParseMAC) accepts it.

#include <optional>
#include <string>
#include <string_view>

namespace ironboot::bootserver {

// Parses a hardware address in any notation Matchbox accepts (colons
// "52:54:00:ab:cd:ef", hyphens "52-54-00-AB-CD-EF", dots "5254.00ab.cdef"; 6, 8
// or 20 octets) and returns it lowercase with colons. nullopt when it does not parse.
std::optional<std::string> NormalizeMac(std::string_view text);

}  // namespace ironboot::bootserver
