#pragma once
// reconcilers/: SHA-512 helpers for the asset cache: a streaming hasher, hex
// validation, and the parser for a release's sha512sum.txt.

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "common/error.h"

namespace ironboot::reconcilers {

// Length of a SHA-512 digest in lowercase hex.
inline constexpr std::size_t kSha512HexLength = 128;

// A streaming SHA-512 (OpenSSL EVP). Not thread-safe; one per download.
class Sha512 {
 public:
  Sha512();
  ~Sha512();
  Sha512(const Sha512&) = delete;
  Sha512& operator=(const Sha512&) = delete;

  void Update(std::string_view bytes);
  // Starts over, as if freshly constructed.
  void Reset();
  // The digest of everything passed to Update since construction or Reset, as
  // 128 lowercase hex characters. Does not change the state: Update may continue.
  std::string HexDigest() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// The SHA-512 of a string, in lowercase hex.
std::string Sha512Hex(std::string_view bytes);

// The SHA-512 of a file's content. kNotFound when it does not exist, kInternal
// on a read error; messages name the path.
Result<std::string> Sha512OfFile(const std::filesystem::path& path);

// True when `text` is exactly 128 hex digits (either case).
bool IsSha512Hex(std::string_view text);

// Parses the content of a sha512sum.txt as written by `sha512sum`: one
// "<128 hex>  <name>" (text mode) or "<128 hex> *<name>" (binary mode) per line.
// Blank lines are skipped, CRLF is accepted, a leading "./" on a name is dropped,
// and hashes are returned lowercase. Errors are kInvalid and name `source` (the
// file or URL) and the 1-based line, e.g.
//   https://host/sha512sum.txt:3: want "<128 hex digits>  <file name>", got "abc vmlinuz"
// A name listed twice with different hashes is an error; the same line twice is not.
Result<std::map<std::string, std::string>> ParseSha512Sums(std::string_view text,
                                                           std::string_view source);

}  // namespace ironboot::reconcilers
