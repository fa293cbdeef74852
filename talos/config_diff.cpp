#include "talos/config_diff.h"

#include <algorithm>
#include <exception>
#include <utility>

namespace ironboot::talos {

namespace {

std::string ScalarOf(const Value* v) {
  return v != nullptr && v->IsScalar() && !v->IsNull() ? v->scalar : "";
}

bool IsPlainKey(std::string_view key) {
  if (key.empty()) {
    return false;
  }
  for (char c : key) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '/' || c == '$';
    if (!ok) {
      return false;
    }
  }
  return true;
}

std::string JoinKey(const std::string& prefix, std::string_view key) {
  if (IsPlainKey(key)) {
    return prefix.empty() ? std::string(key) : prefix + "." + std::string(key);
  }
  std::string quoted = "[\"";
  for (char c : key) {
    if (c == '"' || c == '\\') {
      quoted += '\\';
    }
    quoted += c;
  }
  quoted += "\"]";
  return prefix + quoted;
}

std::string JoinIndex(const std::string& prefix, size_t i) {
  return prefix + "[" + std::to_string(i) + "]";
}

void Diff(const Value& running, const Value& desired, const std::string& path,
          std::vector<FieldChange>& out) {
  if (running.IsMap() && desired.IsMap()) {
    for (const auto& e : desired.entries) {
      std::string child = JoinKey(path, e.key);
      if (const Value* r = running.Find(e.key)) {
        Diff(*r, e.value, child, out);
      } else {
        out.push_back({std::move(child), ChangeKind::kAdded});
      }
    }
    for (const auto& e : running.entries) {
      if (desired.Find(e.key) == nullptr) {
        out.push_back({JoinKey(path, e.key), ChangeKind::kRemoved});
      }
    }
    return;
  }
  if (running.IsSequence() && desired.IsSequence()) {
    size_t common = std::min(running.items.size(), desired.items.size());
    for (size_t i = 0; i < common; ++i) {
      Diff(running.items[i], desired.items[i], JoinIndex(path, i), out);
    }
    for (size_t i = common; i < desired.items.size(); ++i) {
      out.push_back({JoinIndex(path, i), ChangeKind::kAdded});
    }
    for (size_t i = common; i < running.items.size(); ++i) {
      out.push_back({JoinIndex(path, i), ChangeKind::kRemoved});
    }
    return;
  }
  if (!Equal(running, desired)) {
    out.push_back({path, ChangeKind::kChanged});
  }
}

Result<std::vector<Value>> ParseDocuments(std::string_view text, std::string_view which) {
  // libyaml is C and the JSON branch parses without exceptions; this catch is
  // the adapter's last resort (allocation failures), so nothing escapes.
  try {
    return ParseYamlDocuments(text, which);
  } catch (const std::exception& e) {
    return Fail(ErrorCode::kInternal, std::string(which) + ": cannot parse: " + e.what());
  }
}

}  // namespace

std::string DocumentKey::String() const {
  if (IsV1Alpha1()) {
    return "v1alpha1";
  }
  std::string out = api_version == "v1alpha1" ? kind : api_version + "/" + kind;
  if (!name.empty()) {
    out += "/" + name;
  }
  return out;
}

const Value* MachineConfigDocuments::Find(const DocumentKey& key) const {
  for (const auto& d : documents) {
    if (d.key == key) {
      return &d.body;
    }
  }
  return nullptr;
}

Result<MachineConfigDocuments> ParseMachineConfig(std::string_view text, std::string_view which) {
  auto docs = ParseDocuments(text, which);
  if (!docs) {
    return std::unexpected(docs.error());
  }
  MachineConfigDocuments out;
  for (size_t i = 0; i < docs->size(); ++i) {
    Value& doc = (*docs)[i];
    std::string where =
        std::string(which) + ":" + std::to_string(doc.line) + ": document " + std::to_string(i + 1);
    if (!doc.IsMap()) {
      return Fail(ErrorCode::kInvalid, where + " is not a map (want a machine config document)");
    }
    DocumentKey key{ScalarOf(doc.Find("apiVersion")), ScalarOf(doc.Find("kind")), ""};
    if (key.api_version.empty() != key.kind.empty()) {
      return Fail(ErrorCode::kInvalid, where + " has " +
                                           (key.kind.empty() ? "apiVersion" : "kind") + " but no " +
                                           (key.kind.empty() ? "kind" : "apiVersion") +
                                           " (want both, or neither for the v1alpha1 document)");
    }
    if (!key.kind.empty()) {
      key.name = ScalarOf(doc.Find("name"));
    }
    if (out.Find(key) != nullptr) {
      return Fail(ErrorCode::kInvalid,
                  where + ": duplicate document " + key.String() + " (Talos refuses it too)");
    }
    out.documents.push_back({std::move(key), std::move(doc)});
  }
  return out;
}

std::string_view ChangeKindName(ChangeKind kind) {
  switch (kind) {
    case ChangeKind::kAdded:
      return "added";
    case ChangeKind::kRemoved:
      return "removed";
    case ChangeKind::kChanged:
      return "changed";
  }
  return "changed";
}

std::vector<FieldChange> DiffDocument(const Value& running, const Value& desired) {
  std::vector<FieldChange> out;
  Diff(running, desired, "", out);
  return out;
}

std::vector<std::string> ConfigDiff::Lines() const {
  std::vector<std::string> out;
  for (const auto& d : documents) {
    if (d.kind != ChangeKind::kChanged) {
      out.push_back(d.key.String() + " " + std::string(ChangeKindName(d.kind)));
      continue;
    }
    for (const auto& f : d.fields) {
      out.push_back(d.key.String() + ": " + f.path + " " + std::string(ChangeKindName(f.kind)));
    }
  }
  return out;
}

ConfigDiff DiffConfigs(const MachineConfigDocuments& running,
                       const MachineConfigDocuments& desired) {
  ConfigDiff out;
  for (const auto& d : desired.documents) {
    const Value* r = running.Find(d.key);
    if (r == nullptr) {
      out.documents.push_back({d.key, ChangeKind::kAdded, {}});
      continue;
    }
    auto fields = DiffDocument(*r, d.body);
    if (!fields.empty()) {
      out.documents.push_back({d.key, ChangeKind::kChanged, std::move(fields)});
    }
  }
  for (const auto& r : running.documents) {
    if (desired.Find(r.key) == nullptr) {
      out.documents.push_back({r.key, ChangeKind::kRemoved, {}});
    }
  }
  return out;
}

Result<ConfigDiff> DiffConfigs(std::string_view running, std::string_view desired) {
  auto r = ParseMachineConfig(running, "running config");
  if (!r) {
    return std::unexpected(r.error());
  }
  auto d = ParseMachineConfig(desired, "desired config");
  if (!d) {
    return std::unexpected(d.error());
  }
  return DiffConfigs(*r, *d);
}

}  // namespace ironboot::talos
