#include "talos/strategic_merge.h"

#include <algorithm>
#include <unordered_map>
#include <utility>

namespace ironboot::talos {

namespace {

constexpr std::string_view kV1Alpha1Id = "/v1alpha1";

std::string At(std::string_view source, int line) {
  std::string out(source);
  if (line > 0) {
    out += ":" + std::to_string(line);
  }
  return out;
}

bool IsItemSegment(std::string_view seg) {
  return !seg.empty() && seg.front() == '[';
}

}  // namespace

std::string DeleteSelector::PathString() const {
  std::string out;
  for (const auto& seg : path) {
    if (!out.empty()) {
      out += '.';
    }
    out += seg;
  }
  return out;
}

Result<std::string> DocumentId(const Value& doc, std::string_view source) {
  if (!doc.IsMap()) {
    return Fail(ErrorCode::kInvalid,
                At(source, doc.line) + ": a machine config document must be a map");
  }
  const Value* api_version = doc.Find("apiVersion");
  const Value* kind = doc.Find("kind");
  std::string av = api_version != nullptr && api_version->IsScalar() ? api_version->scalar : "";
  std::string k = kind != nullptr && kind->IsScalar() ? kind->scalar : "";
  if (av.empty() && k.empty()) {
    return std::string(kV1Alpha1Id);
  }
  if (av.empty() || k.empty()) {
    return Fail(ErrorCode::kInvalid,
                At(source, doc.line) + ": a document needs both apiVersion and kind (has " +
                    (av.empty() ? "kind \"" + k : "apiVersion \"" + av) + "\" only)");
  }
  std::string id = av + "/" + k;
  if (const Value* name = doc.Find("name");
      name != nullptr && name->IsScalar() && !name->IsNull()) {
    id += "/" + name->scalar;
  }
  return id;
}

// ---- stripping `$patch: delete` ----

namespace {

bool IsDeleteDirective(const MapEntry& e) {
  return e.key == "$patch" && e.value.IsScalar() && e.value.scalar == "delete";
}

class DeleteStripper {
 public:
  DeleteStripper(std::string_view source, std::string doc_id, std::vector<DeleteSelector>& out)
      : source_(source), doc_id_(std::move(doc_id)), out_(out) {}

  // Strips deletes under `node` (reached by `path_`); returns whether `node`
  // itself must go from the patch (a delete directive, or emptied by deletes).
  Result<bool> Process(Value& node, bool parent_is_sequence) {
    if (node.IsMap()) {
      for (const auto& e : node.entries) {
        if (e.key == "$patch") {
          if (!IsDeleteDirective(e)) {
            return Fail(ErrorCode::kInvalid, At(source_, e.value.line) + ": at '" + PathString() +
                                                 "': unsupported \"$patch: " + e.value.scalar +
                                                 "\" (only \"$patch: delete\" is)");
          }
          return Record(node, parent_is_sequence, e.value.line);
        }
      }
      bool removed = false;
      for (size_t i = 0; i < node.entries.size(); ++i) {
        path_.push_back(node.entries[i].key);
        auto gone = Process(node.entries[i].value, false);
        path_.pop_back();
        if (!gone) {
          return std::unexpected(gone.error());
        }
        if (*gone) {
          node.entries[i].key.clear();
          node.entries[i].value.kind = ValueKind::kNull;
          node.entries[i].value.line = -1;  // marks the entry for removal
          removed = true;
        }
      }
      if (removed) {
        std::erase_if(node.entries, [](const MapEntry& e) { return e.value.line == -1; });
        return node.entries.empty();
      }
      return false;
    }
    if (node.IsSequence()) {
      bool removed = false;
      std::vector<bool> gone_items(node.items.size(), false);
      for (size_t i = 0; i < node.items.size(); ++i) {
        path_.push_back("[" + std::to_string(i) + "]");
        auto gone = Process(node.items[i], true);
        path_.pop_back();
        if (!gone) {
          return std::unexpected(gone.error());
        }
        gone_items[i] = *gone;
        removed = removed || *gone;
      }
      if (removed) {
        std::vector<Value> kept;
        kept.reserve(node.items.size());
        for (size_t i = 0; i < node.items.size(); ++i) {
          if (!gone_items[i]) {
            kept.push_back(std::move(node.items[i]));
          }
        }
        node.items = std::move(kept);
        return node.items.empty();
      }
      return false;
    }
    return false;
  }

 private:
  std::string PathString() const {
    DeleteSelector s;
    s.path = path_;
    return s.PathString();
  }

  Result<bool> Record(const Value& node, bool parent_is_sequence, int line) {
    DeleteSelector sel;
    sel.doc_id = doc_id_;
    sel.path = path_;
    sel.line = line;
    // Talos finds list items only in a list reached through map keys.
    size_t list_segments = std::count_if(path_.begin(), path_.end(),
                                         [](const std::string& s) { return IsItemSegment(s); });
    if (list_segments > (parent_is_sequence ? 1u : 0u)) {
      return Fail(ErrorCode::kInvalid,
                  At(source_, line) + ": $patch: delete at '" + sel.PathString() +
                      "': deleting inside a list item is not supported (Talos rejects it too)");
    }
    if (parent_is_sequence) {
      for (const auto& e : node.entries) {
        if (IsDeleteDirective(e)) {
          continue;
        }
        if (!e.value.IsScalar() || e.value.IsNull()) {
          break;
        }
        sel.item_key = e.key;
        sel.item_value = e.value.scalar;
        break;
      }
      if (sel.item_key.empty()) {
        return Fail(ErrorCode::kInvalid,
                    At(source_, line) + ": $patch: delete at '" + sel.PathString() +
                        "': a list item to delete needs a key: value that selects it "
                        "(e.g. interface: eth0) before other fields");
      }
    }
    out_.push_back(std::move(sel));
    return true;
  }

  std::string_view source_;
  std::string doc_id_;
  std::vector<DeleteSelector>& out_;
  std::vector<std::string> path_;
};

bool OnlyIdentityKeys(const Value& doc) {
  for (const auto& e : doc.entries) {
    if (!e.value.IsScalar() || (e.key != "version" && e.key != "kind" && e.key != "name")) {
      return false;
    }
  }
  return true;
}

}  // namespace

Result<std::vector<PatchStep>> StripDeletes(std::vector<Value> patch_docs,
                                            std::string_view source) {
  std::vector<PatchStep> steps;
  steps.reserve(patch_docs.size());
  for (auto& doc : patch_docs) {
    auto id = DocumentId(doc, source);
    if (!id) {
      return std::unexpected(id.error());
    }
    PatchStep step;
    step.doc_id = *id;
    DeleteStripper stripper(source, *id, step.deletes);
    auto gone = stripper.Process(doc, false);
    if (!gone) {
      return std::unexpected(gone.error());
    }
    if (!*gone && !OnlyIdentityKeys(doc)) {
      step.doc = std::move(doc);
    }
    steps.push_back(std::move(step));
  }
  return steps;
}

// ---- merging ----

namespace {

enum class Rule { kDefault, kReplace, kKeyed };

struct ListKey {
  Rule rule = Rule::kDefault;
  std::string_view key;          // for kKeyed
  bool device_selector = false;  // interfaces also match by equal deviceSelector
};

// Where Talos's typed config deviates from "lists concatenate": paths use
// "[]" for "any item of the list".
ListKey RuleFor(bool v1alpha1, std::string_view doc_kind, std::string_view path) {
  if (v1alpha1) {
    if (path == "machine.network.interfaces") {
      return {Rule::kKeyed, "interface", true};
    }
    if (path == "machine.network.interfaces[].vlans") {
      return {Rule::kKeyed, "vlanId", false};
    }
    if (path == "cluster.apiServer.admissionControl") {
      return {Rule::kKeyed, "name", false};
    }
    if (path == "cluster.network.podSubnets" || path == "cluster.network.serviceSubnets" ||
        path == "cluster.apiServer.auditPolicy" ||
        path == "cluster.apiServer.admissionControl[].configuration") {
      return {Rule::kReplace, {}, false};
    }
  } else if (doc_kind == "ExtensionServiceConfig" && path == "configFiles") {
    return {Rule::kKeyed, "mountPath", false};
  }
  return {};
}

const char* KindName(const Value& v) {
  switch (v.kind) {
    case ValueKind::kMap:
      return "a map";
    case ValueKind::kSequence:
      return "a list";
    default:
      return "a scalar";
  }
}

// A list item's identity under a key: the key's scalar, numbers normalized.
std::string ItemKey(const Value& item, std::string_view key) {
  if (!item.IsMap()) {
    return {};
  }
  const Value* k = item.Find(key);
  if (k == nullptr || !k->IsScalar() || k->IsZeroScalar()) {
    return {};
  }
  if (k->kind == ValueKind::kInt) {
    long long n = 0;
    try {
      n = std::stoll(k->scalar, nullptr, 0);
      return "#" + std::to_string(n);
    } catch (...) {
    }
  }
  return k->scalar;
}

class Merger {
 public:
  Merger(std::string_view source, std::string_view doc_id, const Value& doc)
      : source_(source), doc_id_(doc_id), v1alpha1_(doc_id == kV1Alpha1Id) {
    if (const Value* kind = doc.Find("kind"); kind != nullptr && kind->IsScalar()) {
      kind_ = kind->scalar;
    }
  }

  Result<void> Merge(Value& left, const Value& right) {
    if (right.IsNull()) {
      return {};
    }
    if (left.IsNull()) {
      left = right;
      return {};
    }
    ListKey rule = RuleFor(v1alpha1_, kind_, path_);
    if (rule.rule == Rule::kReplace) {
      if (right.IsMap() && right.entries.empty()) {
        return {};
      }
      left = right;
      return {};
    }
    if (right.IsScalar()) {
      if (!left.IsScalar()) {
        return Mismatch(left, right);
      }
      if (right.kind != ValueKind::kBool && right.IsZeroScalar()) {
        return {};
      }
      left = right;
      return {};
    }
    if (left.kind != right.kind) {
      return Mismatch(left, right);
    }
    if (right.IsMap()) {
      for (const auto& e : right.entries) {
        Value* l = left.Find(e.key);
        if (l == nullptr) {
          left.entries.push_back(e);
          continue;
        }
        size_t mark = path_.size();
        if (!path_.empty()) {
          path_ += '.';
        }
        path_ += e.key;
        auto r = Merge(*l, e.value);
        path_.resize(mark);
        if (!r) {
          return r;
        }
      }
      return {};
    }
    if (rule.rule == Rule::kKeyed) {
      return MergeKeyed(left, right, rule);
    }
    left.items.insert(left.items.end(), right.items.begin(), right.items.end());
    return {};
  }

 private:
  Result<void> MergeKeyed(Value& left, const Value& right, const ListKey& rule) {
    std::unordered_map<std::string, size_t> index;
    for (size_t i = 0; i < left.items.size(); ++i) {
      std::string k = ItemKey(left.items[i], rule.key);
      if (!k.empty()) {
        index.emplace(std::move(k), i);
      }
    }
    for (const auto& item : right.items) {
      std::optional<size_t> match;
      std::string k = ItemKey(item, rule.key);
      if (!k.empty()) {
        if (auto it = index.find(k); it != index.end()) {
          match = it->second;
        }
      } else if (rule.device_selector && item.IsMap()) {
        const Value* selector = item.Find("deviceSelector");
        if (selector != nullptr && !selector->IsNull()) {
          for (size_t i = 0; i < left.items.size() && !match; ++i) {
            const Value* other =
                left.items[i].IsMap() ? left.items[i].Find("deviceSelector") : nullptr;
            if (other != nullptr && Equal(*other, *selector)) {
              match = i;
            }
          }
        }
      }
      if (!match) {
        if (!k.empty()) {
          index.emplace(k, left.items.size());
        }
        left.items.push_back(item);
        continue;
      }
      size_t mark = path_.size();
      path_ += "[]";
      auto r = Merge(left.items[*match], item);
      path_.resize(mark);
      if (!r) {
        return r;
      }
    }
    return {};
  }

  Result<void> Mismatch(const Value& left, const Value& right) {
    return Fail(ErrorCode::kInvalid,
                At(source_, right.line) + ": document '" + std::string(doc_id_) +
                    "': " + (path_.empty() ? std::string("(root)") : path_) + ": cannot merge " +
                    KindName(right) + " into " + KindName(left));
  }

  std::string_view source_;
  std::string_view doc_id_;
  bool v1alpha1_;
  std::string kind_;
  std::string path_;
};

Result<void> ApplyDelete(std::vector<Value>& config, size_t doc_index, const DeleteSelector& sel,
                         std::string_view source, bool& delete_document) {
  auto fail = [&](const std::string& why) {
    return Fail(ErrorCode::kInvalid, At(source, sel.line) + ": patch delete: path '" +
                                         sel.PathString() + "' in document '" + sel.doc_id +
                                         "': " + why);
  };
  if (sel.path.empty()) {
    if (sel.doc_id == kV1Alpha1Id) {
      return fail("can't delete the root of the legacy (v1alpha1) document");
    }
    delete_document = true;
    return {};
  }
  bool item = IsItemSegment(sel.path.back());
  size_t walk = sel.path.size() - 1;  // keys to walk before the last step
  Value* cur = &config[doc_index];
  for (size_t i = 0; i < walk; ++i) {
    Value* next = cur->IsMap() ? cur->Find(sel.path[i]) : nullptr;
    if (next == nullptr || next->IsNull()) {
      return fail("lookup failed: '" + sel.path[i] + "' does not exist");
    }
    cur = next;
  }
  if (!item) {
    if (!cur->IsMap()) {
      return fail("lookup failed: not a map");
    }
    cur->Erase(sel.path.back());  // an absent key is already deleted
    return {};
  }
  if (!cur->IsSequence()) {
    return fail("lookup failed: not a list");
  }
  // Talos removes only the first match; we remove every item that matches, so
  // a selector cannot leave a duplicate behind.
  size_t before = cur->items.size();
  std::erase_if(cur->items, [&](const Value& v) {
    const Value* k = v.IsMap() ? v.Find(sel.item_key) : nullptr;
    return k != nullptr && k->IsScalar() && k->scalar == sel.item_value;
  });
  if (cur->items.size() == before) {
    return fail("lookup failed: no item with " + sel.item_key + ": " + sel.item_value);
  }
  return {};
}

}  // namespace

Result<void> StrategicMerge(std::vector<Value>& config, std::vector<Value> patch_docs,
                            std::string_view source) {
  auto steps = StripDeletes(std::move(patch_docs), source);
  if (!steps) {
    return std::unexpected(steps.error());
  }
  std::unordered_map<std::string, size_t> index;
  auto reindex = [&]() -> Result<void> {
    index.clear();
    for (size_t i = 0; i < config.size(); ++i) {
      auto id = DocumentId(config[i], "machine config");
      if (!id) {
        return std::unexpected(id.error());
      }
      if (!index.emplace(*id, i).second) {
        return Fail(ErrorCode::kInvalid, "machine config: document '" + *id + "' appears twice");
      }
    }
    return {};
  };
  if (auto r = reindex(); !r) {
    return r;
  }
  for (auto& step : *steps) {
    auto it = index.find(step.doc_id);
    if (it != index.end()) {
      for (const auto& sel : step.deletes) {
        bool delete_document = false;
        if (auto r = ApplyDelete(config, it->second, sel, source, delete_document); !r) {
          return r;
        }
        if (delete_document) {
          config.erase(config.begin() + static_cast<std::ptrdiff_t>(it->second));
          if (auto r = reindex(); !r) {
            return r;
          }
          it = index.end();
          break;
        }
      }
    }
    if (!step.doc) {
      continue;
    }
    if (it == index.end()) {
      index.emplace(step.doc_id, config.size());
      config.push_back(std::move(*step.doc));
      continue;
    }
    Merger merger(source, step.doc_id, config[it->second]);
    if (auto r = merger.Merge(config[it->second], *step.doc); !r) {
      return r;
    }
  }
  return {};
}

}  // namespace ironboot::talos
