#include "controller/webhook.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <array>
#include <nlohmann/json.hpp>

namespace ironboot::controller {
namespace {

std::optional<std::string> Header(const std::map<std::string, std::string>& headers,
                                  const std::string& name) {
  auto it = headers.find(name);
  if (it == headers.end()) {
    return std::nullopt;
  }
  return it->second;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

std::optional<std::string> DecodeHex(std::string_view hex) {
  if (hex.size() % 2 != 0) {
    return std::nullopt;
  }
  std::string out;
  out.reserve(hex.size() / 2);
  for (size_t i = 0; i < hex.size(); i += 2) {
    int hi = HexValue(hex[i]);
    int lo = HexValue(hex[i + 1]);
    if (hi < 0 || lo < 0) {
      return std::nullopt;
    }
    out.push_back(static_cast<char>(hi * 16 + lo));
  }
  return out;
}

std::string HmacSha256(std::string_view key, std::string_view data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac.data(), &len);
  return std::string(reinterpret_cast<const char*>(mac.data()), len);
}

std::string Sha256(std::string_view data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md.data(), &len, EVP_sha256(), nullptr);
  return std::string(reinterpret_cast<const char*>(md.data()), len);
}

// Constant-time for equal lengths; different lengths compare digests so the
// time does not depend on where they differ either.
bool ConstantTimeEqual(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) {
    std::string da = Sha256(a);
    std::string db = Sha256(b);
    (void)CRYPTO_memcmp(da.data(), db.data(), da.size());
    return false;
  }
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return s;
}

WebhookCheck Verdict(WebhookVerdict verdict, WebhookProvider provider, std::string why) {
  WebhookCheck check;
  check.verdict = verdict;
  check.provider = provider;
  check.reason = std::string(ProviderName(provider)) + ": " + why;
  return check;
}

// Checks a hex HMAC-SHA256 `signature` (already stripped of any "sha256=").
WebhookCheck CheckHmac(WebhookProvider provider, std::string_view header_name,
                       std::string_view signature, std::string_view body, std::string_view secret) {
  auto received = DecodeHex(Trim(signature));
  if (!received || received->size() != 32) {
    return Verdict(WebhookVerdict::kBadSignature, provider,
                   std::string(header_name) + " is not a hex HMAC-SHA256 (want 64 hex digits)");
  }
  if (!ConstantTimeEqual(*received, HmacSha256(secret, body))) {
    return Verdict(WebhookVerdict::kBadSignature, provider,
                   std::string(header_name) + " does not match the configured secret");
  }
  return Verdict(WebhookVerdict::kAccepted, provider, "signature verified");
}

}  // namespace

std::string_view ProviderName(WebhookProvider provider) {
  switch (provider) {
    case WebhookProvider::kGitHub:
      return "github";
    case WebhookProvider::kGitea:
      return "gitea";
    case WebhookProvider::kGitLab:
      return "gitlab";
    case WebhookProvider::kUnknown:
      break;
  }
  return "unknown";
}

std::string HmacSha256Hex(std::string_view key, std::string_view data) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string mac = HmacSha256(key, data);
  std::string hex;
  hex.reserve(mac.size() * 2);
  for (unsigned char c : mac) {
    hex.push_back(kDigits[c >> 4]);
    hex.push_back(kDigits[c & 0xf]);
  }
  return hex;
}

WebhookCheck VerifyWebhook(const std::map<std::string, std::string>& headers, std::string_view body,
                           std::string_view secret) {
  auto hub = Header(headers, "x-hub-signature-256");
  auto gitea = Header(headers, "x-gitea-signature");
  auto gitlab = Header(headers, "x-gitlab-token");

  // Gitea also sends X-GitHub-Event for compatibility, so look for it first.
  WebhookProvider provider = WebhookProvider::kUnknown;
  if (gitea || headers.contains("x-gitea-event")) {
    provider = WebhookProvider::kGitea;
  } else if (gitlab || headers.contains("x-gitlab-event")) {
    provider = WebhookProvider::kGitLab;
  } else if (hub || headers.contains("x-github-event")) {
    provider = WebhookProvider::kGitHub;
  }
  if (provider == WebhookProvider::kUnknown) {
    WebhookCheck check;
    check.reason =
        "no X-Hub-Signature-256, X-Gitea-Signature or X-Gitlab-Token header "
        "(supported: github, gitea, gitlab)";
    return check;
  }
  if (secret.empty()) {
    return Verdict(WebhookVerdict::kNoSecret, provider,
                   "no webhook secret is configured, so no push is accepted");
  }

  switch (provider) {
    case WebhookProvider::kGitLab: {
      if (!gitlab) {
        return Verdict(WebhookVerdict::kMissingSignature, provider,
                       "missing X-Gitlab-Token header");
      }
      if (!ConstantTimeEqual(Trim(*gitlab), Trim(secret))) {
        return Verdict(WebhookVerdict::kBadSignature, provider,
                       "X-Gitlab-Token does not match the configured secret");
      }
      return Verdict(WebhookVerdict::kAccepted, provider, "token verified");
    }
    case WebhookProvider::kGitHub:
    case WebhookProvider::kGitea: {
      if (hub) {
        std::string_view value = Trim(*hub);
        constexpr std::string_view kPrefix = "sha256=";
        if (!value.starts_with(kPrefix)) {
          return Verdict(WebhookVerdict::kBadSignature, provider,
                         "X-Hub-Signature-256 does not start with \"sha256=\"");
        }
        value.remove_prefix(kPrefix.size());
        return CheckHmac(provider, "X-Hub-Signature-256", value, body, secret);
      }
      if (provider == WebhookProvider::kGitea && gitea) {
        return CheckHmac(provider, "X-Gitea-Signature", *gitea, body, secret);
      }
      return Verdict(WebhookVerdict::kMissingSignature, provider,
                     provider == WebhookProvider::kGitea
                         ? "missing X-Hub-Signature-256 and X-Gitea-Signature headers"
                         : "missing X-Hub-Signature-256 header");
    }
    case WebhookProvider::kUnknown:
      break;
  }
  return {};
}

Result<std::string> PushedRef(std::string_view body) {
  nlohmann::json doc = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) {
    return Fail(ErrorCode::kInvalid, "webhook body is not JSON");
  }
  if (!doc.is_object() || !doc.contains("ref") || !doc["ref"].is_string()) {
    return Fail(ErrorCode::kInvalid, "webhook body has no string \"ref\" (not a push event?)");
  }
  return doc["ref"].get<std::string>();
}

bool PushMatchesRef(std::string_view pushed_ref, std::string_view ref) {
  if (ref.empty()) {
    return false;
  }
  if (ref.starts_with("refs/")) {
    return pushed_ref == ref;
  }
  for (std::string_view prefix : {"refs/heads/", "refs/tags/"}) {
    if (pushed_ref.starts_with(prefix) && pushed_ref.substr(prefix.size()) == ref) {
      return true;
    }
  }
  return false;
}

}  // namespace ironboot::controller
