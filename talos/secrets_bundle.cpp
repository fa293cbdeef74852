#include "talos/secrets_bundle.h"

#include <fstream>
#include <sstream>
#include <vector>

#include "talos/yaml_value.h"

namespace ironboot::talos {

namespace {

constexpr auto kCaValidity = std::chrono::hours(24 * 365 * 10);

bool IsToken(std::string_view s) {
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (s.size() != 23 || s[6] != '.') {
    return false;
  }
  for (size_t i = 0; i < s.size(); ++i) {
    if (i != 6 && !alnum(s[i])) {
      return false;
    }
  }
  return true;
}

Result<std::string> RandomToken() {
  constexpr std::string_view kAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::string out;
  while (out.size() < 23) {
    auto bytes = RandomBytes(32);
    if (!bytes) {
      return std::unexpected(bytes.error());
    }
    for (unsigned char b : *bytes) {
      if (out.size() == 6) {
        out.push_back('.');
      }
      // 252 = 7 * 36: reject the rest so every character is equally likely.
      if (b < 252 && out.size() < 23) {
        out.push_back(kAlphabet[b % 36]);
      }
    }
  }
  return out;
}

Result<std::string> RandomBase64(size_t n, bool url) {
  auto bytes = RandomBytes(n);
  if (!bytes) {
    return std::unexpected(bytes.error());
  }
  std::string s = Base64Encode(*bytes);
  if (url) {
    for (char& c : s) {
      c = c == '+' ? '-' : (c == '/' ? '_' : c);
    }
  }
  return s;
}

// Collects every problem of a bundle, so one load reports them all.
class Checker {
 public:
  explicit Checker(const Value& root) : root_(root) {}

  // The scalar at a dotted path, or "" with a "missing" problem.
  std::string Scalar(const std::string& path) {
    const Value* v = &root_;
    size_t start = 0;
    while (start <= path.size()) {
      size_t dot = path.find('.', start);
      std::string key =
          path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
      v = v->IsMap() ? v->Find(key) : nullptr;
      if (v == nullptr) {
        Problem(path, "missing");
        return "";
      }
      if (dot == std::string::npos) {
        break;
      }
      start = dot + 1;
    }
    if (!v->IsScalar() || v->IsNull() || v->scalar.empty()) {
      Problem(path, v->IsScalar() ? "empty" : "not a string");
      return "";
    }
    return v->scalar;
  }

  void Problem(const std::string& path, const std::string& what) {
    problems_.push_back(path + ": " + what);
  }

  std::string RandomSecret(const std::string& path) {
    std::string s = Scalar(path);
    if (!s.empty()) {
      auto raw = Base64Decode(s);
      if (!raw) {
        Problem(path, "not base64 (want base64 of 32 random bytes)");
      } else if (raw->size() != 32) {
        Problem(path, "decodes to " + std::to_string(raw->size()) +
                          " bytes (want base64 of 32 random bytes)");
      }
    }
    return s;
  }

  std::string Token(const std::string& path) {
    std::string s = Scalar(path);
    if (!s.empty() && !IsToken(s)) {
      Problem(path, "not a token (want 6 and 16 characters of [a-z0-9] joined by \".\")");
    }
    return s;
  }

  // A base64 PEM field, decoded; checks it parses as `kind` ("certificate" or "key").
  std::string Pem(const std::string& path, bool certificate, std::initializer_list<KeyType> types) {
    std::string s = Scalar(path);
    if (s.empty()) {
      return "";
    }
    auto pem = Base64Decode(s);
    if (!pem) {
      Problem(path, "not base64 (want base64 of a PEM " +
                        std::string(certificate ? "certificate" : "private key") + ")");
      return "";
    }
    auto type = certificate ? CertificateKeyType(*pem, path) : PrivateKeyType(*pem, path);
    if (!type) {
      problems_.push_back(type.error().message);
      return "";
    }
    bool ok = false;
    std::string want;
    for (KeyType t : types) {
      ok = ok || t == *type;
      want += (want.empty() ? "" : " or ") + std::string(KeyTypeName(t));
    }
    if (!ok) {
      Problem(path, std::string("is ") + KeyTypeName(*type) + " (want " + want + ")");
      return "";
    }
    return *pem;
  }

  CertAndKey Ca(const std::string& path, KeyType type) {
    CertAndKey ca{Pem(path + ".crt", true, {type}), Pem(path + ".key", false, {type})};
    if (!ca.crt.empty() && !ca.key.empty()) {
      auto match = CertificateMatchesKey(ca.crt, ca.key, path);
      if (match && !*match) {
        Problem(path, "the key does not belong to the certificate");
      }
    }
    return ca;
  }

  const std::vector<std::string>& problems() const { return problems_; }

 private:
  const Value& root_;
  std::vector<std::string> problems_;
};

Value Str(const std::string& s) {
  return Value::String(s);
}

Value PemPair(const CertAndKey& pair, bool with_crt = true) {
  Value m = Value::Map();
  if (with_crt) {
    m.Set("crt", Str(Base64Encode(pair.crt)));
  }
  m.Set("key", Str(Base64Encode(pair.key)));
  return m;
}

}  // namespace

Result<SecretsBundle> LoadSecretsBundle(std::string_view yaml, std::string_view source) {
  auto docs = ParseYamlDocuments(yaml, source);
  if (!docs) {
    return std::unexpected(docs.error());
  }
  if (docs->size() != 1 || !(*docs)[0].IsMap()) {
    return Fail(ErrorCode::kInvalid,
                std::string(source) +
                    ": not a secrets bundle (want one YAML map as `talosctl gen secrets` writes)");
  }
  Checker c((*docs)[0]);
  SecretsBundle b;
  b.cluster_id = c.RandomSecret("cluster.id");
  b.cluster_secret = c.RandomSecret("cluster.secret");
  b.bootstrap_token = c.Token("secrets.bootstraptoken");
  b.secretbox_encryption_secret = c.RandomSecret("secrets.secretboxencryptionsecret");
  b.trustd_token = c.Token("trustdinfo.token");
  b.etcd = c.Ca("certs.etcd", KeyType::kEcdsaP256);
  b.k8s = c.Ca("certs.k8s", KeyType::kEcdsaP256);
  b.k8s_aggregator = c.Ca("certs.k8saggregator", KeyType::kEcdsaP256);
  b.k8s_service_account_key =
      c.Pem("certs.k8sserviceaccount.key", false, {KeyType::kRsa, KeyType::kEcdsaP256});
  b.os = c.Ca("certs.os", KeyType::kEd25519);
  if (!c.problems().empty()) {
    std::string message = std::string(source) + ": invalid secrets bundle:";
    for (const auto& p : c.problems()) {
      message += "\n  " + p;
    }
    return Fail(ErrorCode::kInvalid, message);
  }
  return b;
}

Result<SecretsBundle> LoadSecretsBundleFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Fail(ErrorCode::kNotFound, "cannot read secrets bundle " + path);
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return LoadSecretsBundle(ss.str(), path);
}

std::string SaveSecretsBundle(const SecretsBundle& b) {
  Value root = Value::Map();
  Value cluster = Value::Map();
  cluster.Set("id", Str(b.cluster_id));
  cluster.Set("secret", Str(b.cluster_secret));
  root.Set("cluster", cluster);
  Value secrets = Value::Map();
  secrets.Set("bootstraptoken", Str(b.bootstrap_token));
  secrets.Set("secretboxencryptionsecret", Str(b.secretbox_encryption_secret));
  root.Set("secrets", secrets);
  Value trustd = Value::Map();
  trustd.Set("token", Str(b.trustd_token));
  root.Set("trustdinfo", trustd);
  Value certs = Value::Map();
  certs.Set("etcd", PemPair(b.etcd));
  certs.Set("k8s", PemPair(b.k8s));
  certs.Set("k8saggregator", PemPair(b.k8s_aggregator));
  certs.Set("k8sserviceaccount", PemPair(CertAndKey{"", b.k8s_service_account_key}, false));
  certs.Set("os", PemPair(b.os));
  root.Set("certs", certs);
  return EmitYaml(root);
}

Result<SecretsBundle> GenerateSecrets(const Clock& clock) {
  SecretsBundle b;
  auto fill = [](std::string& out, Result<std::string> r) -> Result<void> {
    if (!r) {
      return std::unexpected(r.error());
    }
    out = std::move(*r);
    return {};
  };
  auto ca = [&](CertAndKey& out, KeyType type, const std::string& org) -> Result<void> {
    CertOptions opts;
    opts.organization = org;
    opts.validity = kCaValidity;
    opts.server_auth = true;
    opts.client_auth = true;
    auto r = GenerateCa(type, opts, clock);
    if (!r) {
      return std::unexpected(
          r.error().Wrap("generate " + (org.empty() ? "aggregator" : org) + " CA"));
    }
    out = std::move(*r);
    return {};
  };
  for (auto r :
       {fill(b.cluster_id, RandomBase64(32, true)), fill(b.cluster_secret, RandomBase64(32, false)),
        fill(b.bootstrap_token, RandomToken()),
        fill(b.secretbox_encryption_secret, RandomBase64(32, false)),
        fill(b.trustd_token, RandomToken()), ca(b.etcd, KeyType::kEcdsaP256, "etcd"),
        ca(b.k8s, KeyType::kEcdsaP256, "kubernetes"), ca(b.k8s_aggregator, KeyType::kEcdsaP256, ""),
        fill(b.k8s_service_account_key, GenerateKey(KeyType::kRsa, 4096)),
        ca(b.os, KeyType::kEd25519, "talos")}) {
    if (!r) {
      return std::unexpected(r.error());
    }
  }
  return b;
}

std::vector<std::string> SecretStrings(const SecretsBundle& b) {
  std::vector<std::string> out = {b.cluster_id, b.cluster_secret, b.bootstrap_token,
                                  b.secretbox_encryption_secret, b.trustd_token};
  for (const std::string* key :
       {&b.etcd.key, &b.k8s.key, &b.k8s_aggregator.key, &b.k8s_service_account_key, &b.os.key}) {
    out.push_back(*key);
    out.push_back(Base64Encode(*key));
  }
  return out;
}

}  // namespace ironboot::talos
