#include "talos/age.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>

#include <array>
#include <cstdint>
#include <memory>
#include <optional>

namespace ironboot::talos {

namespace {

using Bytes = std::string;  // binary bytes; std::string keeps the code short

constexpr std::string_view kVersionLine = "age-encryption.org/v1";
constexpr std::string_view kX25519Label = "age-encryption.org/v1/X25519";
constexpr std::string_view kRecipientHrp = "age";
constexpr std::string_view kIdentityHrp = "age-secret-key-";
constexpr std::string_view kArmorBegin = "-----BEGIN AGE ENCRYPTED FILE-----";
constexpr std::string_view kArmorEnd = "-----END AGE ENCRYPTED FILE-----";
constexpr size_t kChunkSize = 64 * 1024;
constexpr size_t kTagSize = 16;
constexpr size_t kFileKeySize = 16;
constexpr size_t kStanzaColumns = 64;

// Wipes a secret buffer when it goes out of scope.
struct Wipe {
  Bytes& b;
  ~Wipe() {
    if (!b.empty()) {
      OPENSSL_cleanse(b.data(), b.size());
    }
  }
};

const unsigned char* U(const Bytes& b) {
  return reinterpret_cast<const unsigned char*>(b.data());
}
const unsigned char* U(std::string_view b) {
  return reinterpret_cast<const unsigned char*>(b.data());
}

// ---- Bech32 (BIP 173 checksum; no 90-character limit, as age does) ----

constexpr std::string_view kBech32Charset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";

uint32_t Bech32Polymod(const std::vector<uint8_t>& values) {
  constexpr std::array<uint32_t, 5> kGen = {0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd,
                                            0x2a1462b3};
  uint32_t chk = 1;
  for (uint8_t v : values) {
    uint32_t top = chk >> 25;
    chk = ((chk & 0x1ffffff) << 5) ^ v;
    for (int i = 0; i < 5; ++i) {
      if ((top >> i) & 1) {
        chk ^= kGen[i];
      }
    }
  }
  return chk;
}

std::vector<uint8_t> HrpExpand(std::string_view hrp) {
  std::vector<uint8_t> out;
  for (char c : hrp) {
    out.push_back(static_cast<uint8_t>(c) >> 5);
  }
  out.push_back(0);
  for (char c : hrp) {
    out.push_back(static_cast<uint8_t>(c) & 31);
  }
  return out;
}

// Lower-case Bech32 of `data` (8-bit bytes) under `hrp`.
std::string Bech32Encode(std::string_view hrp, const Bytes& data) {
  std::vector<uint8_t> five;
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char b : data) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      five.push_back((acc >> bits) & 31);
    }
  }
  if (bits > 0) {
    five.push_back((acc << (5 - bits)) & 31);
  }
  std::vector<uint8_t> values = HrpExpand(hrp);
  values.insert(values.end(), five.begin(), five.end());
  values.insert(values.end(), 6, 0);
  uint32_t mod = Bech32Polymod(values) ^ 1;
  std::string out(hrp);
  out.push_back('1');
  for (uint8_t v : five) {
    out.push_back(kBech32Charset[v]);
  }
  for (int i = 0; i < 6; ++i) {
    out.push_back(kBech32Charset[(mod >> (5 * (5 - i))) & 31]);
  }
  return out;
}

struct Bech32Decoded {
  std::string hrp;  // lower case
  Bytes data;
};

// Decodes Bech32 (all lower or all upper case). Errors say what is wrong,
// never echo the input (it may be a secret key).
Result<Bech32Decoded> Bech32Decode(std::string_view s) {
  bool lower = false;
  bool upper = false;
  for (char c : s) {
    if (c < 33 || c > 126) {
      return Fail(ErrorCode::kInvalid, "invalid character in Bech32 string");
    }
    lower |= (c >= 'a' && c <= 'z');
    upper |= (c >= 'A' && c <= 'Z');
  }
  if (lower && upper) {
    return Fail(ErrorCode::kInvalid, "mixed upper and lower case in Bech32 string");
  }
  std::string str(s);
  for (char& c : str) {
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c - 'A' + 'a');
    }
  }
  size_t sep = str.rfind('1');
  if (sep == std::string::npos || sep == 0 || sep + 7 > str.size()) {
    return Fail(ErrorCode::kInvalid, "not a Bech32 string (separator '1' or checksum missing)");
  }
  std::vector<uint8_t> five;
  for (size_t i = sep + 1; i < str.size(); ++i) {
    size_t v = kBech32Charset.find(str[i]);
    if (v == std::string_view::npos) {
      return Fail(ErrorCode::kInvalid, "invalid Bech32 data character");
    }
    five.push_back(static_cast<uint8_t>(v));
  }
  Bech32Decoded out;
  out.hrp = str.substr(0, sep);
  std::vector<uint8_t> values = HrpExpand(out.hrp);
  values.insert(values.end(), five.begin(), five.end());
  if (Bech32Polymod(values) != 1) {
    return Fail(ErrorCode::kInvalid, "invalid Bech32 checksum");
  }
  five.resize(five.size() - 6);
  uint32_t acc = 0;
  int bits = 0;
  for (uint8_t v : five) {
    acc = (acc << 5) | v;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.data.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  if (bits >= 5 || (acc & ((1u << bits) - 1)) != 0) {
    return Fail(ErrorCode::kInvalid, "invalid Bech32 padding");
  }
  return out;
}

// ---- base64 ----

constexpr std::string_view kB64 =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string B64Encode(const Bytes& in, bool pad) {
  std::string out;
  size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    uint32_t n = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    out += kB64[(n >> 18) & 63];
    out += kB64[(n >> 12) & 63];
    out += kB64[(n >> 6) & 63];
    out += kB64[n & 63];
  }
  size_t rest = in.size() - i;
  if (rest == 1) {
    uint32_t n = uint8_t(in[i]) << 16;
    out += kB64[(n >> 18) & 63];
    out += kB64[(n >> 12) & 63];
    if (pad) {
      out += "==";
    }
  } else if (rest == 2) {
    uint32_t n = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    out += kB64[(n >> 18) & 63];
    out += kB64[(n >> 12) & 63];
    out += kB64[(n >> 6) & 63];
    if (pad) {
      out += "=";
    }
  }
  return out;
}

// Decodes canonical base64; `padded` says whether '=' padding is required
// (armor) or forbidden (header). nullopt on any invalid input.
std::optional<Bytes> B64Decode(std::string_view in, bool padded) {
  if (padded) {
    if (in.size() % 4 != 0) {
      return std::nullopt;
    }
    size_t eq = 0;
    while (eq < 2 && eq < in.size() && in[in.size() - 1 - eq] == '=') {
      ++eq;
    }
    in.remove_suffix(eq);
  }
  if (in.size() % 4 == 1) {
    return std::nullopt;
  }
  Bytes out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    size_t v = kB64.find(c);
    if (v == std::string_view::npos) {
      return std::nullopt;
    }
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  if ((acc & ((1u << bits) - 1)) != 0) {  // non-canonical trailing bits
    return std::nullopt;
  }
  return out;
}

// ---- OpenSSL primitives ----

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct PkeyCtxFree {
  void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
};
struct CipherCtxFree {
  void operator()(EVP_CIPHER_CTX* p) const { EVP_CIPHER_CTX_free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree>;
using CipherCtxPtr = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxFree>;

Result<Bytes> Random(size_t n) {
  Bytes out(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) {
    return Fail(ErrorCode::kInternal, "age: random number generator failed");
  }
  return out;
}

// X25519 public key of a 32-byte scalar.
Result<Bytes> X25519Public(const Bytes& secret) {
  PkeyPtr key(EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nullptr, U(secret), secret.size()));
  Bytes pub(32, '\0');
  size_t len = pub.size();
  if (!key ||
      EVP_PKEY_get_raw_public_key(key.get(), reinterpret_cast<unsigned char*>(pub.data()), &len) !=
          1 ||
      len != 32) {
    return Fail(ErrorCode::kInternal, "age: X25519 public key derivation failed");
  }
  return pub;
}

// X25519(secret, peer); fails if the result is all zeros (a low-order peer).
Result<Bytes> X25519(const Bytes& secret, const Bytes& peer) {
  PkeyPtr key(EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nullptr, U(secret), secret.size()));
  PkeyPtr peer_key(EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, nullptr, U(peer), peer.size()));
  if (!key || !peer_key) {
    return Fail(ErrorCode::kInvalid, "age: invalid X25519 key");
  }
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new(key.get(), nullptr));
  Bytes shared(32, '\0');
  size_t len = shared.size();
  // OpenSSL itself refuses an all-zero shared secret, so a failure here is the
  // low-order-point case age requires us to reject.
  if (!ctx || EVP_PKEY_derive_init(ctx.get()) != 1 ||
      EVP_PKEY_derive_set_peer(ctx.get(), peer_key.get()) != 1 ||
      EVP_PKEY_derive(ctx.get(), reinterpret_cast<unsigned char*>(shared.data()), &len) != 1 ||
      len != 32) {
    return Fail(ErrorCode::kInvalid, "age: X25519 key agreement failed (low-order point?)");
  }
  unsigned char zero = 0;
  for (char c : shared) {
    zero |= static_cast<unsigned char>(c);
  }
  if (zero == 0) {
    return Fail(ErrorCode::kInvalid, "age: X25519 shared secret is all zeros");
  }
  return shared;
}

Result<Bytes> Hkdf(const Bytes& ikm, const Bytes& salt, std::string_view info, size_t n) {
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, nullptr));
  Bytes out(n, '\0');
  size_t len = n;
  bool ok = ctx && EVP_PKEY_derive_init(ctx.get()) == 1 &&
            EVP_PKEY_CTX_set_hkdf_md(ctx.get(), EVP_sha256()) == 1 &&
            EVP_PKEY_CTX_set1_hkdf_key(ctx.get(), U(ikm), static_cast<int>(ikm.size())) == 1 &&
            EVP_PKEY_CTX_add1_hkdf_info(ctx.get(), U(info), static_cast<int>(info.size())) == 1;
  // An empty salt is HKDF's default (HashLen zero bytes), so leave it unset.
  if (ok && !salt.empty()) {
    ok = EVP_PKEY_CTX_set1_hkdf_salt(ctx.get(), U(salt), static_cast<int>(salt.size())) == 1;
  }
  if (!ok || EVP_PKEY_derive(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), &len) != 1 ||
      len != n) {
    return Fail(ErrorCode::kInternal, "age: HKDF-SHA256 failed");
  }
  return out;
}

// ChaCha20-Poly1305 seal: ciphertext || tag.
Result<Bytes> Seal(const Bytes& key, const Bytes& nonce, std::string_view plaintext) {
  CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  Bytes out(plaintext.size() + kTagSize, '\0');
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  int len = 0;
  int fin = 0;
  if (!ctx ||
      EVP_EncryptInit_ex(ctx.get(), EVP_chacha20_poly1305(), nullptr, U(key), U(nonce)) != 1 ||
      EVP_EncryptUpdate(ctx.get(), o, &len, U(plaintext), static_cast<int>(plaintext.size())) !=
          1 ||
      EVP_EncryptFinal_ex(ctx.get(), o + len, &fin) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_GET_TAG, kTagSize, o + plaintext.size()) != 1) {
    return Fail(ErrorCode::kInternal, "age: ChaCha20-Poly1305 encryption failed");
  }
  return out;
}

// ChaCha20-Poly1305 open; nullopt when authentication fails.
std::optional<Bytes> Open(const Bytes& key, const Bytes& nonce, std::string_view sealed) {
  if (sealed.size() < kTagSize) {
    return std::nullopt;
  }
  size_t n = sealed.size() - kTagSize;
  CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  Bytes out(n, '\0');
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  Bytes tag(sealed.substr(n));
  int len = 0;
  int fin = 0;
  if (!ctx ||
      EVP_DecryptInit_ex(ctx.get(), EVP_chacha20_poly1305(), nullptr, U(key), U(nonce)) != 1 ||
      EVP_DecryptUpdate(ctx.get(), o, &len, U(sealed), static_cast<int>(n)) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_SET_TAG, kTagSize, tag.data()) != 1 ||
      EVP_DecryptFinal_ex(ctx.get(), o + len, &fin) != 1) {
    OPENSSL_cleanse(out.data(), out.size());
    return std::nullopt;
  }
  return out;
}

Result<Bytes> HeaderMac(const Bytes& file_key, std::string_view header_up_to_dashes) {
  auto key = Hkdf(file_key, "", "header", 32);
  if (!key) {
    return std::unexpected(key.error());
  }
  Wipe wipe{*key};
  Bytes mac(32, '\0');
  unsigned int len = 32;
  if (HMAC(EVP_sha256(), key->data(), static_cast<int>(key->size()), U(header_up_to_dashes),
           header_up_to_dashes.size(), reinterpret_cast<unsigned char*>(mac.data()),
           &len) == nullptr) {
    return Fail(ErrorCode::kInternal, "age: HMAC-SHA256 failed");
  }
  return mac;
}

Bytes ChunkNonce(uint64_t counter, bool last) {
  Bytes nonce(12, '\0');
  for (int i = 0; i < 8; ++i) {
    nonce[10 - i] = static_cast<char>((counter >> (8 * i)) & 0xff);
  }
  nonce[11] = last ? 1 : 0;
  return nonce;
}

// ---- keys ----

Result<Bytes> ParseRecipient(std::string_view recipient) {
  auto decoded = Bech32Decode(recipient);
  if (!decoded) {
    return std::unexpected(decoded.error());
  }
  if (decoded->hrp != kRecipientHrp) {
    return Fail(ErrorCode::kInvalid, "not an X25519 recipient (want an \"age1...\" string)");
  }
  if (decoded->data.size() != 32) {
    return Fail(ErrorCode::kInvalid,
                "X25519 recipient is " + std::to_string(decoded->data.size()) + " bytes (want 32)");
  }
  return decoded->data;
}

Result<Bytes> ParseSecretKey(std::string_view key) {
  auto decoded = Bech32Decode(key);
  if (!decoded) {
    return std::unexpected(decoded.error());
  }
  Wipe wipe{decoded->data};
  if (decoded->hrp != kIdentityHrp) {
    return Fail(ErrorCode::kInvalid, "not an X25519 identity (want \"AGE-SECRET-KEY-1...\")");
  }
  if (decoded->data.size() != 32) {
    return Fail(ErrorCode::kInvalid, "X25519 identity has the wrong length (want 32 bytes)");
  }
  return std::exchange(decoded->data, Bytes());
}

std::string Upper(std::string s) {
  for (char& c : s) {
    if (c >= 'a' && c <= 'z') {
      c = static_cast<char>(c - 'a' + 'A');
    }
  }
  return s;
}

struct Identity {
  Bytes secret;
  Bytes public_key;
};

Result<std::vector<Identity>> ParseIdentityFile(std::string_view text) {
  std::vector<Identity> out;
  size_t line_no = 0;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    ++line_no;
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) {
      line.remove_suffix(1);
    }
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) {
      line.remove_prefix(1);
    }
    if (line.empty() || line.front() == '#') {
      continue;
    }
    auto secret = ParseSecretKey(line);
    if (!secret) {
      return std::unexpected(
          secret.error().Wrap("age: identity file line " + std::to_string(line_no)));
    }
    auto pub = X25519Public(*secret);
    if (!pub) {
      OPENSSL_cleanse(secret->data(), secret->size());
      return std::unexpected(pub.error());
    }
    out.push_back(Identity{std::move(*secret), std::move(*pub)});
  }
  if (out.empty()) {
    return Fail(ErrorCode::kInvalid, "age: identity file holds no AGE-SECRET-KEY-1... line");
  }
  return out;
}

// ---- header ----

struct Stanza {
  std::string type;
  std::vector<std::string> args;
  Bytes body;
};

struct Header {
  std::vector<Stanza> stanzas;
  std::string_view mac_input;  // header bytes up to and including "---"
  Bytes mac;
  std::string_view payload;  // everything after the header's final newline
};

Result<Header> ParseHeader(std::string_view file) {
  auto bad = [](std::string what) {
    return Fail(ErrorCode::kInvalid, "age: malformed header: " + std::move(what));
  };
  size_t pos = 0;
  auto next_line = [&]() -> std::optional<std::string_view> {
    size_t nl = file.find('\n', pos);
    if (nl == std::string_view::npos) {
      return std::nullopt;
    }
    std::string_view line = file.substr(pos, nl - pos);
    pos = nl + 1;
    return line;
  };
  auto version = next_line();
  if (!version || *version != kVersionLine) {
    return bad("not an age file (first line is not \"" + std::string(kVersionLine) + "\")");
  }
  Header header;
  while (true) {
    size_t line_start = pos;
    auto line = next_line();
    if (!line) {
      return bad("truncated (no \"---\" line)");
    }
    if (line->starts_with("---")) {
      if (!line->starts_with("--- ")) {
        return bad("MAC line must be \"--- <base64 MAC>\"");
      }
      header.mac_input = file.substr(0, line_start + 3);
      auto mac = B64Decode(line->substr(4), false);
      if (!mac || mac->size() != 32) {
        return bad("MAC is not 32 bytes of base64");
      }
      header.mac = *mac;
      header.payload = file.substr(pos);
      return header;
    }
    if (!line->starts_with("-> ")) {
      return bad("line " + std::to_string(header.stanzas.size() + 2) +
                 ": want a stanza (\"-> \") or the MAC line (\"--- \")");
    }
    Stanza stanza;
    std::string_view rest = line->substr(3);
    while (true) {
      size_t sp = rest.find(' ');
      std::string_view arg = rest.substr(0, sp);
      if (arg.empty()) {
        return bad("empty stanza argument");
      }
      stanza.args.emplace_back(arg);
      if (sp == std::string_view::npos) {
        break;
      }
      rest = rest.substr(sp + 1);
    }
    stanza.type = stanza.args.front();
    stanza.args.erase(stanza.args.begin());
    // Body: base64 lines of 64 columns, ended by the first shorter line.
    while (true) {
      auto body_line = next_line();
      if (!body_line) {
        return bad("truncated stanza body");
      }
      if (body_line->size() > kStanzaColumns) {
        return bad("stanza body line longer than 64 columns");
      }
      auto decoded = B64Decode(*body_line, false);
      if (!decoded) {
        return bad("stanza body is not valid unpadded base64");
      }
      stanza.body += *decoded;
      if (body_line->size() < kStanzaColumns) {
        break;
      }
    }
    header.stanzas.push_back(std::move(stanza));
  }
}

// The binary form of an armored file; `text` passes through when not armored.
Result<std::string> Dearmor(std::string_view text) {
  std::string_view t = text;
  while (!t.empty() &&
         (t.front() == ' ' || t.front() == '\t' || t.front() == '\r' || t.front() == '\n')) {
    t.remove_prefix(1);
  }
  if (!t.starts_with(kArmorBegin)) {
    return std::string(text);
  }
  while (!t.empty() &&
         (t.back() == ' ' || t.back() == '\t' || t.back() == '\r' || t.back() == '\n')) {
    t.remove_suffix(1);
  }
  if (!t.ends_with(kArmorEnd)) {
    return Fail(ErrorCode::kInvalid,
                "age: armored file has no \"" + std::string(kArmorEnd) + "\" line (truncated?)");
  }
  t = t.substr(kArmorBegin.size(), t.size() - kArmorBegin.size() - kArmorEnd.size());
  std::string b64;
  for (char c : t) {
    if (c != '\n' && c != '\r') {
      b64.push_back(c);
    }
  }
  auto decoded = B64Decode(b64, true);
  if (!decoded) {
    return Fail(ErrorCode::kInvalid, "age: armored file body is not valid base64");
  }
  return *decoded;
}

Result<Bytes> UnwrapFileKey(const Stanza& stanza, const Identity& identity) {
  auto share = B64Decode(stanza.args[0], false);
  Bytes salt = *share + identity.public_key;
  auto shared = X25519(identity.secret, *share);
  if (!shared) {
    return std::unexpected(shared.error());
  }
  Wipe wipe_shared{*shared};
  auto wrap_key = Hkdf(*shared, salt, kX25519Label, 32);
  if (!wrap_key) {
    return std::unexpected(wrap_key.error());
  }
  Wipe wipe_wrap{*wrap_key};
  auto file_key = Open(*wrap_key, Bytes(12, '\0'), stanza.body);
  if (!file_key) {
    return Fail(ErrorCode::kUnauthorized, "not this identity");
  }
  return *file_key;
}

}  // namespace

Result<AgeIdentity> AgeGenerateIdentity() {
  auto secret = Random(32);
  if (!secret) {
    return std::unexpected(secret.error());
  }
  Wipe wipe{*secret};
  auto pub = X25519Public(*secret);
  if (!pub) {
    return std::unexpected(pub.error());
  }
  return AgeIdentity{Upper(Bech32Encode(kIdentityHrp, *secret)), Bech32Encode(kRecipientHrp, *pub)};
}

Result<std::string> AgeRecipientOf(std::string_view secret_key) {
  auto secret = ParseSecretKey(secret_key);
  if (!secret) {
    return std::unexpected(secret.error().Wrap("age: secret key"));
  }
  Wipe wipe{*secret};
  auto pub = X25519Public(*secret);
  if (!pub) {
    return std::unexpected(pub.error());
  }
  return Bech32Encode(kRecipientHrp, *pub);
}

Result<std::string> AgeEncrypt(std::string_view plaintext,
                               const std::vector<std::string>& recipients) {
  if (recipients.empty()) {
    return Fail(ErrorCode::kInvalid, "age: no recipients");
  }
  std::vector<Bytes> keys;
  for (size_t i = 0; i < recipients.size(); ++i) {
    auto key = ParseRecipient(recipients[i]);
    if (!key) {
      // Echo only strings shaped like public recipients: a secret key pasted
      // here by mistake must not end up in a message.
      std::string shown =
          recipients[i].starts_with("age1") ? " \"" + recipients[i] + "\"" : std::string();
      return std::unexpected(key.error().Wrap("age: recipient " + std::to_string(i + 1) + shown));
    }
    keys.push_back(*key);
  }
  auto file_key = Random(kFileKeySize);
  if (!file_key) {
    return std::unexpected(file_key.error());
  }
  Wipe wipe_file_key{*file_key};

  std::string out = std::string(kVersionLine) + "\n";
  for (const Bytes& recipient : keys) {
    auto ephemeral = Random(32);
    if (!ephemeral) {
      return std::unexpected(ephemeral.error());
    }
    Wipe wipe_ephemeral{*ephemeral};
    auto share = X25519Public(*ephemeral);
    if (!share) {
      return std::unexpected(share.error());
    }
    auto shared = X25519(*ephemeral, recipient);
    if (!shared) {
      return std::unexpected(shared.error().Wrap("age: recipient"));
    }
    Wipe wipe_shared{*shared};
    auto wrap_key = Hkdf(*shared, *share + recipient, kX25519Label, 32);
    if (!wrap_key) {
      return std::unexpected(wrap_key.error());
    }
    Wipe wipe_wrap{*wrap_key};
    auto body = Seal(*wrap_key, Bytes(12, '\0'), *file_key);
    if (!body) {
      return std::unexpected(body.error());
    }
    // 32-byte body = 43 base64 columns: one line, shorter than 64.
    out += "-> X25519 " + B64Encode(*share, false) + "\n" + B64Encode(*body, false) + "\n";
  }
  out += "---";
  auto mac = HeaderMac(*file_key, out);
  if (!mac) {
    return std::unexpected(mac.error());
  }
  out += " " + B64Encode(*mac, false) + "\n";

  auto nonce = Random(16);
  if (!nonce) {
    return std::unexpected(nonce.error());
  }
  auto payload_key = Hkdf(*file_key, *nonce, "payload", 32);
  if (!payload_key) {
    return std::unexpected(payload_key.error());
  }
  Wipe wipe_payload{*payload_key};
  out += *nonce;
  uint64_t counter = 0;
  size_t offset = 0;
  do {
    size_t n = std::min(kChunkSize, plaintext.size() - offset);
    bool last = offset + n == plaintext.size();
    auto chunk = Seal(*payload_key, ChunkNonce(counter, last), plaintext.substr(offset, n));
    if (!chunk) {
      return std::unexpected(chunk.error());
    }
    out += *chunk;
    offset += n;
    ++counter;
  } while (offset < plaintext.size());
  return out;
}

Result<std::string> AgeDecrypt(std::string_view ciphertext, std::string_view identity_file_text) {
  auto identities = ParseIdentityFile(identity_file_text);
  if (!identities) {
    return std::unexpected(identities.error());
  }
  struct WipeIdentities {
    std::vector<Identity>& ids;
    ~WipeIdentities() {
      for (auto& id : ids) {
        OPENSSL_cleanse(id.secret.data(), id.secret.size());
      }
    }
  } wipe_ids{*identities};

  auto binary = Dearmor(ciphertext);
  if (!binary) {
    return std::unexpected(binary.error());
  }
  auto header = ParseHeader(*binary);
  if (!header) {
    return std::unexpected(header.error());
  }

  std::optional<Bytes> file_key;
  size_t x25519_stanzas = 0;
  for (const Stanza& stanza : header->stanzas) {
    if (stanza.type != "X25519") {
      continue;
    }
    ++x25519_stanzas;
    auto share = stanza.args.size() == 1 ? B64Decode(stanza.args[0], false) : std::nullopt;
    if (!share || share->size() != 32 || stanza.body.size() != kFileKeySize + kTagSize) {
      return Fail(ErrorCode::kInvalid,
                  "age: malformed header: X25519 stanza wants one 32-byte share and a 32-byte "
                  "body");
    }
    for (const Identity& identity : *identities) {
      auto key = UnwrapFileKey(stanza, identity);
      if (key) {
        file_key = std::move(*key);
        break;
      }
      if (key.error().code != ErrorCode::kUnauthorized) {
        return std::unexpected(key.error());
      }
    }
    if (file_key) {
      break;
    }
  }
  if (!file_key) {
    return Fail(ErrorCode::kUnauthorized,
                "age: no identity matched any of the file's recipients (" +
                    std::to_string(identities->size()) + " identities tried against " +
                    std::to_string(x25519_stanzas) + " X25519 stanzas, " +
                    std::to_string(header->stanzas.size() - x25519_stanzas) +
                    " other stanzas skipped)");
  }
  Wipe wipe_file_key{*file_key};

  auto mac = HeaderMac(*file_key, header->mac_input);
  if (!mac) {
    return std::unexpected(mac.error());
  }
  if (CRYPTO_memcmp(mac->data(), header->mac.data(), 32) != 0) {
    return Fail(ErrorCode::kInvalid,
                "age: header MAC mismatch: the header was tampered with or corrupted");
  }

  std::string_view payload = header->payload;
  if (payload.size() < 16) {
    return Fail(ErrorCode::kInvalid, "age: payload truncated (no nonce)");
  }
  auto payload_key = Hkdf(*file_key, Bytes(payload.substr(0, 16)), "payload", 32);
  if (!payload_key) {
    return std::unexpected(payload_key.error());
  }
  Wipe wipe_payload{*payload_key};
  payload.remove_prefix(16);
  if (payload.empty()) {
    return Fail(ErrorCode::kInvalid, "age: payload truncated (no chunks)");
  }
  std::string plaintext;
  plaintext.reserve(payload.size());
  constexpr size_t kSealedChunk = kChunkSize + kTagSize;
  uint64_t counter = 0;
  while (!payload.empty()) {
    size_t n = std::min(kSealedChunk, payload.size());
    bool last = n == payload.size();
    auto chunk = Open(*payload_key, ChunkNonce(counter, last), payload.substr(0, n));
    if (!chunk) {
      OPENSSL_cleanse(plaintext.data(), plaintext.size());
      return Fail(ErrorCode::kInvalid, "age: payload chunk " + std::to_string(counter) +
                                           " failed authentication (tampered with, "
                                           "truncated or corrupted)");
    }
    if (last && chunk->empty() && counter > 0) {
      OPENSSL_cleanse(plaintext.data(), plaintext.size());
      return Fail(ErrorCode::kInvalid, "age: payload ends with an empty chunk");
    }
    plaintext += *chunk;
    OPENSSL_cleanse(chunk->data(), chunk->size());
    payload.remove_prefix(n);
    ++counter;
  }
  return plaintext;
}

}  // namespace ironboot::talos
