#include "talos/json_patch.h"

#include <charconv>
#include <utility>

namespace ironboot::talos {

namespace {

std::string At(std::string_view source, int line) {
  std::string out(source);
  if (line > 0) {
    out += ":" + std::to_string(line);
  }
  return out;
}

// Splits a JSON Pointer into unescaped reference tokens.
Result<std::vector<std::string>> ParsePointer(std::string_view pointer) {
  std::vector<std::string> tokens;
  if (pointer.empty()) {
    return tokens;
  }
  if (pointer.front() != '/') {
    return Fail(ErrorCode::kInvalid,
                "\"" + std::string(pointer) + "\" is not a JSON Pointer (must start with /)");
  }
  size_t start = 1;
  while (true) {
    size_t end = pointer.find('/', start);
    std::string_view raw =
        pointer.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    std::string token;
    token.reserve(raw.size());
    for (size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] == '~') {
        if (i + 1 < raw.size() && (raw[i + 1] == '0' || raw[i + 1] == '1')) {
          token += raw[i + 1] == '0' ? '~' : '/';
          ++i;
        } else {
          return Fail(ErrorCode::kInvalid,
                      "\"" + std::string(pointer) + "\" has a ~ not followed by 0 or 1");
        }
      } else {
        token += raw[i];
      }
    }
    tokens.push_back(std::move(token));
    if (end == std::string_view::npos) {
      break;
    }
    start = end + 1;
  }
  return tokens;
}

// An array index token: digits without leading zeros.
bool ParseIndex(std::string_view token, size_t* out) {
  if (token.empty() || (token.size() > 1 && token[0] == '0')) {
    return false;
  }
  auto [p, ec] = std::from_chars(token.data(), token.data() + token.size(), *out);
  return ec == std::errc() && p == token.data() + token.size();
}

std::string Prefix(const std::vector<std::string>& tokens, size_t n) {
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    out += '/';
    for (char c : tokens[i]) {
      if (c == '~') {
        out += "~0";
      } else if (c == '/') {
        out += "~1";
      } else {
        out += c;
      }
    }
  }
  return out;
}

// Resolves all tokens; nullptr with `why` set when the target does not exist.
Value* Resolve(Value& doc, const std::vector<std::string>& tokens, size_t count, std::string* why) {
  Value* cur = &doc;
  for (size_t i = 0; i < count; ++i) {
    const std::string& t = tokens[i];
    if (cur->IsMap()) {
      Value* next = cur->Find(t);
      if (next == nullptr) {
        *why = Prefix(tokens, i + 1) + " does not exist";
        return nullptr;
      }
      cur = next;
    } else if (cur->IsSequence()) {
      size_t idx = 0;
      if (!ParseIndex(t, &idx)) {
        *why = Prefix(tokens, i + 1) + ": \"" + t + "\" is not a list index";
        return nullptr;
      }
      if (idx >= cur->items.size()) {
        *why = Prefix(tokens, i + 1) + ": index " + t + " is out of range (list has " +
               std::to_string(cur->items.size()) + " items)";
        return nullptr;
      }
      cur = &cur->items[idx];
    } else {
      *why = Prefix(tokens, i) + " is a scalar, not a map or list";
      return nullptr;
    }
  }
  return cur;
}

class Applier {
 public:
  Applier(Value& doc, std::string_view source) : doc_(doc), source_(source) {}

  Result<void> Apply(const JsonPatchOp& op, size_t n) {
    context_ = At(source_, op.line) + ": operation " + std::to_string(n + 1) + " (" + op.op + " " +
               op.path + ")";
    auto path = ParsePointer(op.path);
    if (!path) {
      return Fail(ErrorCode::kInvalid, context_ + ": path " + path.error().message);
    }
    if (op.op == "add") {
      return Add(*path, op.value);
    }
    if (op.op == "remove") {
      return Remove(*path, nullptr);
    }
    if (op.op == "replace") {
      std::string why;
      Value* target = Resolve(doc_, *path, path->size(), &why);
      if (target == nullptr) {
        return Error("path " + why);
      }
      *target = op.value;
      return {};
    }
    if (op.op == "test") {
      std::string why;
      Value* target = Resolve(doc_, *path, path->size(), &why);
      if (target == nullptr) {
        return Error("test failed: path " + why);
      }
      if (!Equal(*target, op.value)) {
        return Error("test failed: the value at " + op.path + " is not the expected value");
      }
      return {};
    }
    // move and copy
    auto from = ParsePointer(op.from);
    if (!from) {
      return Fail(ErrorCode::kInvalid, context_ + ": from " + from.error().message);
    }
    if (op.op == "move") {
      if (op.path.size() > op.from.size() && op.path.starts_with(op.from) &&
          op.path[op.from.size()] == '/') {
        return Error("cannot move " + op.from + " into its own child");
      }
      if (op.path == op.from) {
        std::string why;
        return Resolve(doc_, *from, from->size(), &why) != nullptr ? Result<void>{}
                                                                   : Error("from " + why);
      }
      Value moved;
      if (auto r = Remove(*from, &moved); !r) {
        return r;
      }
      return Add(*path, std::move(moved));
    }
    std::string why;
    Value* source = Resolve(doc_, *from, from->size(), &why);
    if (source == nullptr) {
      return Error("from " + why);
    }
    Value copy = *source;
    return Add(*path, std::move(copy));
  }

 private:
  std::unexpected<ironboot::Error> Error(const std::string& what) {
    return Fail(ErrorCode::kInvalid, context_ + ": " + what);
  }

  Result<void> Add(const std::vector<std::string>& path, Value value) {
    if (path.empty()) {
      doc_ = std::move(value);
      return {};
    }
    std::string why;
    Value* parent = Resolve(doc_, path, path.size() - 1, &why);
    if (parent == nullptr) {
      return Error("path " + why);
    }
    const std::string& last = path.back();
    if (parent->IsMap()) {
      parent->Set(last, std::move(value));
      return {};
    }
    if (parent->IsSequence()) {
      if (last == "-") {
        parent->items.push_back(std::move(value));
        return {};
      }
      size_t idx = 0;
      if (!ParseIndex(last, &idx)) {
        return Error("path " + Prefix(path, path.size()) + ": \"" + last +
                     "\" is not a list index");
      }
      if (idx > parent->items.size()) {
        return Error("path " + Prefix(path, path.size()) + ": index " + last +
                     " is out of range (list has " + std::to_string(parent->items.size()) +
                     " items)");
      }
      parent->items.insert(parent->items.begin() + static_cast<std::ptrdiff_t>(idx),
                           std::move(value));
      return {};
    }
    if (parent->IsNull()) {
      return Error("path " + Prefix(path, path.size() - 1) + " does not exist");
    }
    return Error("path " + Prefix(path, path.size() - 1) + " is a scalar, not a map or list");
  }

  Result<void> Remove(const std::vector<std::string>& path, Value* removed) {
    if (path.empty()) {
      return Error("cannot remove the whole document");
    }
    std::string why;
    Value* parent = Resolve(doc_, path, path.size() - 1, &why);
    if (parent == nullptr) {
      return Error("path " + why);
    }
    const std::string& last = path.back();
    if (parent->IsMap()) {
      Value* target = parent->Find(last);
      if (target == nullptr) {
        return Error("path " + Prefix(path, path.size()) + " does not exist");
      }
      if (removed != nullptr) {
        *removed = std::move(*target);
      }
      parent->Erase(last);
      return {};
    }
    if (parent->IsSequence()) {
      size_t idx = 0;
      if (!ParseIndex(last, &idx) || idx >= parent->items.size()) {
        return Error("path " + Prefix(path, path.size()) + " does not exist (list has " +
                     std::to_string(parent->items.size()) + " items)");
      }
      if (removed != nullptr) {
        *removed = std::move(parent->items[idx]);
      }
      parent->items.erase(parent->items.begin() + static_cast<std::ptrdiff_t>(idx));
      return {};
    }
    return Error("path " + Prefix(path, path.size()) + " does not exist");
  }

  Value& doc_;
  std::string_view source_;
  std::string context_;
};

}  // namespace

Result<std::vector<JsonPatchOp>> ParseJsonPatch(const Value& list, std::string_view source) {
  std::vector<JsonPatchOp> ops;
  if (!list.IsSequence()) {
    return Fail(ErrorCode::kInvalid,
                At(source, list.line) + ": a JSON patch must be a list of operations");
  }
  ops.reserve(list.items.size());
  for (size_t i = 0; i < list.items.size(); ++i) {
    const Value& item = list.items[i];
    std::string where = At(source, item.line) + ": operation " + std::to_string(i + 1);
    if (!item.IsMap()) {
      return Fail(ErrorCode::kInvalid, where + ": must be a map with op and path");
    }
    JsonPatchOp op;
    op.line = item.line;
    auto text = [&](std::string_view key, std::string* out, bool required) -> Result<void> {
      const Value* v = item.Find(key);
      if (v == nullptr) {
        if (required) {
          return Fail(ErrorCode::kInvalid, where + ": missing \"" + std::string(key) + "\"");
        }
        return {};
      }
      if (v->kind != ValueKind::kString && !(v->IsNull() && key != "op")) {
        return Fail(ErrorCode::kInvalid, where + ": \"" + std::string(key) + "\" must be a string");
      }
      *out = v->scalar;
      return {};
    };
    if (auto r = text("op", &op.op, true); !r) {
      return std::unexpected(r.error());
    }
    if (op.op != "add" && op.op != "remove" && op.op != "replace" && op.op != "move" &&
        op.op != "copy" && op.op != "test") {
      return Fail(ErrorCode::kInvalid, where + ": unknown op \"" + op.op +
                                           "\" (want add, remove, replace, move, copy or test)");
    }
    if (auto r = text("path", &op.path, true); !r) {
      return std::unexpected(r.error());
    }
    if (op.op == "move" || op.op == "copy") {
      if (auto r = text("from", &op.from, true); !r) {
        return std::unexpected(r.error());
      }
    }
    if (op.op == "add" || op.op == "replace" || op.op == "test") {
      const Value* v = item.Find("value");
      if (v == nullptr) {
        return Fail(ErrorCode::kInvalid,
                    where + " (" + op.op + " " + op.path + "): missing \"value\"");
      }
      op.value = *v;
    }
    ops.push_back(std::move(op));
  }
  return ops;
}

Result<void> ApplyJsonPatch(Value& doc, const std::vector<JsonPatchOp>& ops,
                            std::string_view source) {
  Applier applier(doc, source);
  for (size_t i = 0; i < ops.size(); ++i) {
    if (auto r = applier.Apply(ops[i], i); !r) {
      return r;
    }
  }
  return {};
}

}  // namespace ironboot::talos
