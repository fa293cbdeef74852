#pragma once
// controller/: push-webhook verification for /hooks/git. Pure functions: the
// caller passes the request's headers, body and the secret (read from a file);
// nothing here touches the network or logs.
//
// Providers:
//   GitHub  X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>
//   Gitea   X-Hub-Signature-256 (as GitHub) or X-Gitea-Signature: <hex>
//   GitLab  X-Gitlab-Token: <secret>   (a shared token, not an HMAC)
// Comparisons are constant-time. Results and reasons never contain the secret
// or the received signature.

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "common/error.h"

namespace ironboot::controller {

enum class WebhookProvider { kUnknown, kGitHub, kGitea, kGitLab };
std::string_view ProviderName(WebhookProvider provider);

enum class WebhookVerdict {
  kAccepted,
  kMissingSignature,  // a known provider, but no signature/token header
  kBadSignature,      // signature malformed or not matching the secret
  kUnknownProvider,   // no header of any supported provider
  kNoSecret,          // the configured secret is empty: nothing is accepted
};

struct WebhookCheck {
  WebhookVerdict verdict = WebhookVerdict::kUnknownProvider;
  WebhookProvider provider = WebhookProvider::kUnknown;
  // For logs and the HTTP response, e.g. "github: signature does not match the
  // configured secret". Never contains secret material.
  std::string reason;
  bool accepted() const { return verdict == WebhookVerdict::kAccepted; }
};

// `headers` must have lowercase names (as the bootserver's request map has).
WebhookCheck VerifyWebhook(const std::map<std::string, std::string>& headers, std::string_view body,
                           std::string_view secret);

// The ref a push event names ("refs/heads/main"), from the JSON body's
// top-level "ref" (same field for GitHub, Gitea and GitLab). kInvalid when the
// body is not JSON or has no string "ref" (e.g. a "ping" event).
Result<std::string> PushedRef(std::string_view body);

// True when a pushed ref ("refs/heads/main", "refs/tags/v1") is the one a
// source follows (`ref` as configured: "main", "refs/heads/main", "v1", or a
// commit id, which no push names, so false).
bool PushMatchesRef(std::string_view pushed_ref, std::string_view ref);

// Lowercase hex of HMAC-SHA256(key, data); exposed for tests and clients.
std::string HmacSha256Hex(std::string_view key, std::string_view data);

}  // namespace ironboot::controller
