#pragma once
// manifests/: diagnostics, what loading, validating and rendering a cluster
// repo report. Every diagnostic names the file, line and column, the field
// path, the bad value and what was expected, so a person can act on it:
//   machines/cp1.yaml:4:8: spec.mac: "00:23:24:e7:29" is not a MAC address (want 6 octets)

#include <string>
#include <vector>

namespace ironboot::manifests {

// A place in a repo file. `line` and `column` are 1-based; 0 means "the whole
// file" (e.g. a file that is missing or not UTF-8).
struct Position {
  std::string file;  // relative to the repo root, "/" separated
  int line = 0;
  int column = 0;

  bool operator==(const Position&) const = default;
};

enum class Severity { kError, kWarning };

struct Diagnostic {
  Severity severity = Severity::kError;
  Position position;
  std::string field;    // e.g. "spec.macs[1]"; empty when not about one field
  std::string message;  // bad value and what was expected

  // "file:line:col: [warning: ]field: message"
  std::string ToString() const;
};

// An ordered list of diagnostics (in the order found: files sorted by path,
// then document order, then cross-document checks).
class Diagnostics {
 public:
  void Error(Position position, std::string field, std::string message);
  void Warning(Position position, std::string field, std::string message);
  void Add(Diagnostic d) { items_.push_back(std::move(d)); }
  void Append(const Diagnostics& other);

  bool HasErrors() const;
  size_t ErrorCount() const;
  size_t WarningCount() const;
  const std::vector<Diagnostic>& items() const { return items_; }
  bool empty() const { return items_.empty(); }
  // One diagnostic per line.
  std::string ToString() const;

 private:
  std::vector<Diagnostic> items_;
};

}  // namespace ironboot::manifests
