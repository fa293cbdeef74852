#include "reconcilers/sha512.h"

#include <openssl/evp.h>

#include <array>
#include <cctype>
#include <fstream>

namespace ironboot::reconcilers {

struct Sha512::State {
  EVP_MD_CTX* ctx = nullptr;
};

Sha512::Sha512() : state_(std::make_unique<State>()) {
  state_->ctx = EVP_MD_CTX_new();
  Reset();
}

Sha512::~Sha512() {
  EVP_MD_CTX_free(state_->ctx);
}

void Sha512::Reset() {
  EVP_DigestInit_ex(state_->ctx, EVP_sha512(), nullptr);
}

void Sha512::Update(std::string_view bytes) {
  EVP_DigestUpdate(state_->ctx, bytes.data(), bytes.size());
}

std::string Sha512::HexDigest() const {
  // Finalize a copy so the running state stays usable.
  EVP_MD_CTX* copy = EVP_MD_CTX_new();
  EVP_MD_CTX_copy_ex(copy, state_->ctx);
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  EVP_DigestFinal_ex(copy, digest.data(), &length);
  EVP_MD_CTX_free(copy);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(length * 2);
  for (unsigned int i = 0; i < length; ++i) {
    hex.push_back(kHex[digest[i] >> 4]);
    hex.push_back(kHex[digest[i] & 0xf]);
  }
  return hex;
}

std::string Sha512Hex(std::string_view bytes) {
  Sha512 hasher;
  hasher.Update(bytes);
  return hasher.HexDigest();
}

Result<std::string> Sha512OfFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) {
      return Fail(ErrorCode::kNotFound, path.string() + ": no such file");
    }
    return Fail(ErrorCode::kInternal, path.string() + ": cannot open for reading");
  }
  Sha512 hasher;
  std::array<char, 64 * 1024> buffer{};
  while (in) {
    in.read(buffer.data(), buffer.size());
    hasher.Update(std::string_view(buffer.data(), static_cast<std::size_t>(in.gcount())));
  }
  if (in.bad()) {
    return Fail(ErrorCode::kInternal, path.string() + ": read error");
  }
  return hasher.HexDigest();
}

bool IsSha512Hex(std::string_view text) {
  if (text.size() != kSha512HexLength) {
    return false;
  }
  for (char c : text) {
    if (!std::isxdigit(static_cast<unsigned char>(c))) {
      return false;
    }
  }
  return true;
}

namespace {

std::string Lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

// Quotes a line for an error message, shortened so a binary file pasted as
// sha512sum.txt does not flood the log.
std::string Quote(std::string_view line) {
  constexpr std::size_t kMax = 80;
  std::string out = "\"";
  for (char c : line.substr(0, kMax)) {
    out.push_back(std::isprint(static_cast<unsigned char>(c)) ? c : '?');
  }
  if (line.size() > kMax) {
    out += "...";
  }
  return out + "\"";
}

}  // namespace

Result<std::map<std::string, std::string>> ParseSha512Sums(std::string_view text,
                                                           std::string_view source) {
  std::map<std::string, std::string> sums;
  std::size_t line_number = 0;
  while (!text.empty()) {
    ++line_number;
    const std::size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view{} : text.substr(end + 1);
    if (!line.empty() && line.back() == '\r') {
      line.remove_suffix(1);
    }
    if (line.find_first_not_of(" \t") == std::string_view::npos) {
      continue;
    }
    const std::string where = std::string(source) + ":" + std::to_string(line_number) + ": ";
    // "<hex>" then one space, then ' ' (text) or '*' (binary), then the name.
    if (line.size() < kSha512HexLength + 3 || !IsSha512Hex(line.substr(0, kSha512HexLength)) ||
        line[kSha512HexLength] != ' ' ||
        (line[kSha512HexLength + 1] != ' ' && line[kSha512HexLength + 1] != '*')) {
      return Fail(ErrorCode::kInvalid,
                  where +
                      "want \"<128 hex digits>  <file name>\" or \"<128 hex digits> *<file "
                      "name>\", got " +
                      Quote(line));
    }
    std::string name(line.substr(kSha512HexLength + 2));
    if (name.starts_with("./")) {
      name.erase(0, 2);
    }
    if (name.empty()) {
      return Fail(ErrorCode::kInvalid, where + "empty file name in " + Quote(line));
    }
    std::string hex = Lower(line.substr(0, kSha512HexLength));
    auto [it, inserted] = sums.emplace(name, hex);
    if (!inserted && it->second != hex) {
      return Fail(ErrorCode::kInvalid,
                  where + "\"" + name + "\" is listed again with a different hash (" +
                      hex.substr(0, 16) + "... here, " + it->second.substr(0, 16) + "... before)");
    }
  }
  return sums;
}

}  // namespace ironboot::reconcilers
