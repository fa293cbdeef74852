#pragma once
// bootserver/: request labels, Matchbox's way: every query parameter is a
// label (first value of a repeated key; keys case-sensitive); a key equal to
// "mac" in any case is parsed as a MAC and normalised, or dropped if invalid.

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace ironboot::bootserver {

using Labels = std::map<std::string, std::string>;

// Decodes %XX and '+' (as space) like Go's url.QueryUnescape. Invalid escapes
// are kept literally.
std::string QueryUnescape(std::string_view s);

// Splits a raw query ("a=1&b=2") into decoded key/value pairs in order.
std::vector<std::pair<std::string, std::string>> ParseQuery(std::string_view raw_query);

struct LabelParse {
  Labels labels;
  // Raw values of "mac" keys that did not parse (for a warning; never a metric label).
  std::vector<std::string> dropped_macs;
};
LabelParse LabelsFromQuery(std::string_view raw_query);

}  // namespace ironboot::bootserver
