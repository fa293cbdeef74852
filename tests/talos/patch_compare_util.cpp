#include "tests/talos/patch_compare.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

namespace ironboot::talos::testing {

std::string ReadTestdata(const std::string& rel) {
  std::string path = std::string(IRONBOOT_SHARED_DIR) + "/talos/testdata/" + rel;
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot open " << path;
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

namespace {

bool IsEmpty(const Value& v) {
  switch (v.kind) {
    case ValueKind::kNull:
      return true;
    case ValueKind::kString:
      return v.scalar.empty();
    case ValueKind::kSequence:
      return v.items.empty();
    case ValueKind::kMap:
      return v.entries.empty();
    default:
      return false;
  }
}

}  // namespace

Value Normalize(const Value& v) {
  Value out = v;
  if (v.IsMap()) {
    out.entries.clear();
    for (const auto& e : v.entries) {
      Value child = Normalize(e.value);
      if (!IsEmpty(child)) {
        out.entries.push_back(MapEntry{e.key, std::move(child)});
      }
    }
  } else if (v.IsSequence()) {
    out.items.clear();
    for (const auto& item : v.items) {
      out.items.push_back(Normalize(item));
    }
  }
  return out;
}

size_t CountLeaves(const Value& v) {
  if (v.IsMap()) {
    size_t n = 0;
    for (const auto& e : v.entries) {
      n += CountLeaves(e.value);
    }
    return n;
  }
  if (v.IsSequence()) {
    size_t n = 0;
    for (const auto& item : v.items) {
      n += CountLeaves(item);
    }
    return n;
  }
  return IsEmpty(v) ? 0 : 1;
}

::testing::AssertionResult SemanticallyEqual(const std::string& actual_yaml,
                                             const std::string& expected_yaml) {
  auto actual = ParseYamlDocuments(actual_yaml, "actual");
  if (!actual) {
    return ::testing::AssertionFailure()
           << "actual output is not valid YAML: " << actual.error().message << "\n"
           << actual_yaml;
  }
  auto expected = ParseYamlDocuments(expected_yaml, "expected");
  if (!expected) {
    return ::testing::AssertionFailure()
           << "expected is not valid YAML: " << expected.error().message;
  }
  if (actual->size() != expected->size()) {
    return ::testing::AssertionFailure()
           << "actual has " << actual->size() << " documents, expected " << expected->size() << "\n"
           << actual_yaml;
  }
  for (size_t i = 0; i < actual->size(); ++i) {
    Value a = Normalize((*actual)[i]);
    Value e = Normalize((*expected)[i]);
    if (!Equal(a, e)) {
      return ::testing::AssertionFailure()
             << "document " << i << " differs after dropping empty values\n--- actual:\n"
             << EmitYaml(a) << "--- expected:\n"
             << EmitYaml(e);
    }
  }
  return ::testing::AssertionSuccess();
}

Value Doc(const std::string& yaml, size_t index) {
  auto docs = ParseYamlDocuments(yaml, "doc");
  EXPECT_TRUE(docs.has_value()) << (docs ? "" : docs.error().message);
  if (!docs || index >= docs->size()) {
    ADD_FAILURE() << "no document " << index << " in:\n" << yaml;
    return Value{};
  }
  return (*docs)[index];
}

const Value* Get(const Value& root, const std::string& path) {
  const Value* cur = &root;
  size_t start = 0;
  while (start <= path.size() && cur != nullptr) {
    size_t end = path.find('.', start);
    std::string seg =
        path.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (seg.empty()) {
      break;
    }
    if (cur->IsSequence()) {
      size_t idx = std::stoul(seg);
      cur = idx < cur->items.size() ? &cur->items[idx] : nullptr;
    } else if (cur->IsMap()) {
      cur = cur->Find(seg);
    } else {
      cur = nullptr;
    }
    if (end == std::string::npos) {
      break;
    }
    start = end + 1;
  }
  return cur;
}

std::string Scalar(const Value& root, const std::string& path) {
  const Value* v = Get(root, path);
  if (v == nullptr) {
    return "<missing>";
  }
  if (!v->IsScalar()) {
    return "<not a scalar>";
  }
  return v->scalar;
}

size_t Size(const Value& root, const std::string& path) {
  const Value* v = Get(root, path);
  if (v == nullptr) {
    return 0;
  }
  return v->IsMap() ? v->entries.size() : v->items.size();
}

}  // namespace ironboot::talos::testing
