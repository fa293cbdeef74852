#include "manifests/diagnostics.h"

#include <algorithm>

namespace ironboot::manifests {

std::string Diagnostic::ToString() const {
  std::string out = position.file.empty() ? std::string("<repo>") : position.file;
  if (position.line > 0) {
    out += ":" + std::to_string(position.line) + ":" + std::to_string(position.column);
  }
  out += ": ";
  if (severity == Severity::kWarning) {
    out += "warning: ";
  }
  if (!field.empty()) {
    out += field + ": ";
  }
  out += message;
  return out;
}

void Diagnostics::Error(Position position, std::string field, std::string message) {
  items_.push_back(
      Diagnostic{Severity::kError, std::move(position), std::move(field), std::move(message)});
}

void Diagnostics::Warning(Position position, std::string field, std::string message) {
  items_.push_back(
      Diagnostic{Severity::kWarning, std::move(position), std::move(field), std::move(message)});
}

void Diagnostics::Append(const Diagnostics& other) {
  items_.insert(items_.end(), other.items_.begin(), other.items_.end());
}

bool Diagnostics::HasErrors() const {
  return ErrorCount() > 0;
}

size_t Diagnostics::ErrorCount() const {
  return std::count_if(items_.begin(), items_.end(),
                       [](const Diagnostic& d) { return d.severity == Severity::kError; });
}

size_t Diagnostics::WarningCount() const {
  return items_.size() - ErrorCount();
}

std::string Diagnostics::ToString() const {
  std::string out;
  for (const auto& d : items_) {
    out += d.ToString();
    out += '\n';
  }
  return out;
}

}  // namespace ironboot::manifests
