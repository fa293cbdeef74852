// Tests of push-webhook verification (GitHub, Gitea, GitLab) and of reading
// the pushed ref.

#include "controller/webhook.h"

#include <map>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace ironboot::controller {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

const std::string kSecret = "It's a Secret to Everybody";
const std::string kBody = R"({"ref":"refs/heads/main","after":"3f2a"})";

// Known answer from GitHub's webhook documentation ("Validating webhook deliveries").
TEST(WebhookTest, HmacMatchesGitHubDocumentationExample) {
  EXPECT_EQ(HmacSha256Hex(kSecret, "Hello, World!"),
            "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17");
}

// GitHub: a correct X-Hub-Signature-256 is accepted; a wrong one, a malformed
// one, and a missing one are refused with the reason, never the secret.
TEST(WebhookTest, GitHubSignatures) {
  std::string good = "sha256=" + HmacSha256Hex(kSecret, kBody);
  auto ok =
      VerifyWebhook({{"x-github-event", "push"}, {"x-hub-signature-256", good}}, kBody, kSecret);
  EXPECT_TRUE(ok.accepted()) << ok.reason;
  EXPECT_EQ(ok.provider, WebhookProvider::kGitHub);

  auto tampered = VerifyWebhook({{"x-github-event", "push"}, {"x-hub-signature-256", good}},
                                kBody + " ", kSecret);
  EXPECT_EQ(tampered.verdict, WebhookVerdict::kBadSignature);
  EXPECT_EQ(tampered.reason, "github: X-Hub-Signature-256 does not match the configured secret");

  auto other_secret = VerifyWebhook(
      {{"x-hub-signature-256", "sha256=" + HmacSha256Hex("other", kBody)}}, kBody, kSecret);
  EXPECT_EQ(other_secret.verdict, WebhookVerdict::kBadSignature);
  EXPECT_EQ(other_secret.provider, WebhookProvider::kGitHub);

  auto no_prefix =
      VerifyWebhook({{"x-hub-signature-256", HmacSha256Hex(kSecret, kBody)}}, kBody, kSecret);
  EXPECT_EQ(no_prefix.verdict, WebhookVerdict::kBadSignature);
  EXPECT_THAT(no_prefix.reason, HasSubstr("does not start with \"sha256=\""));

  auto not_hex = VerifyWebhook({{"x-hub-signature-256", "sha256=zz"}}, kBody, kSecret);
  EXPECT_EQ(not_hex.verdict, WebhookVerdict::kBadSignature);
  EXPECT_THAT(not_hex.reason, HasSubstr("want 64 hex digits"));

  auto missing = VerifyWebhook({{"x-github-event", "push"}}, kBody, kSecret);
  EXPECT_EQ(missing.verdict, WebhookVerdict::kMissingSignature);
  EXPECT_EQ(missing.reason, "github: missing X-Hub-Signature-256 header");

  for (const auto& check : {ok, tampered, other_secret, no_prefix, not_hex, missing}) {
    EXPECT_THAT(check.reason, Not(HasSubstr(kSecret)));
    EXPECT_THAT(check.reason, Not(HasSubstr(HmacSha256Hex(kSecret, kBody))));
  }
}

// Gitea: X-Gitea-Signature (bare hex) or X-Hub-Signature-256; its
// X-GitHub-Event compatibility header does not make it GitHub.
TEST(WebhookTest, GiteaSignatures) {
  std::string hex = HmacSha256Hex(kSecret, kBody);
  auto ok = VerifyWebhook(
      {{"x-gitea-event", "push"}, {"x-github-event", "push"}, {"x-gitea-signature", hex}}, kBody,
      kSecret);
  EXPECT_TRUE(ok.accepted()) << ok.reason;
  EXPECT_EQ(ok.provider, WebhookProvider::kGitea);

  auto both = VerifyWebhook({{"x-gitea-signature", hex}, {"x-hub-signature-256", "sha256=" + hex}},
                            kBody, kSecret);
  EXPECT_TRUE(both.accepted()) << both.reason;

  auto bad = VerifyWebhook({{"x-gitea-signature", HmacSha256Hex("nope", kBody)}}, kBody, kSecret);
  EXPECT_EQ(bad.verdict, WebhookVerdict::kBadSignature);
  EXPECT_EQ(bad.reason, "gitea: X-Gitea-Signature does not match the configured secret");

  auto missing = VerifyWebhook({{"x-gitea-event", "push"}}, kBody, kSecret);
  EXPECT_EQ(missing.verdict, WebhookVerdict::kMissingSignature);
  EXPECT_EQ(missing.reason, "gitea: missing X-Hub-Signature-256 and X-Gitea-Signature headers");
}

// GitLab: X-Gitlab-Token is compared with the secret itself.
TEST(WebhookTest, GitLabToken) {
  auto ok =
      VerifyWebhook({{"x-gitlab-event", "Push Hook"}, {"x-gitlab-token", kSecret}}, kBody, kSecret);
  EXPECT_TRUE(ok.accepted()) << ok.reason;
  EXPECT_EQ(ok.provider, WebhookProvider::kGitLab);

  for (std::string wrong : std::vector<std::string>{"", "x", kSecret + "x", kSecret.substr(1)}) {
    auto bad = VerifyWebhook({{"x-gitlab-token", wrong}}, kBody, kSecret);
    EXPECT_EQ(bad.verdict, WebhookVerdict::kBadSignature) << wrong;
    EXPECT_EQ(bad.reason, "gitlab: X-Gitlab-Token does not match the configured secret");
  }
  auto missing = VerifyWebhook({{"x-gitlab-event", "Push Hook"}}, kBody, kSecret);
  EXPECT_EQ(missing.verdict, WebhookVerdict::kMissingSignature);
  EXPECT_EQ(missing.reason, "gitlab: missing X-Gitlab-Token header");
}

// No provider header at all, or no configured secret: refused.
TEST(WebhookTest, UnknownProviderAndEmptySecret) {
  auto unknown = VerifyWebhook({{"content-type", "application/json"}}, kBody, kSecret);
  EXPECT_EQ(unknown.verdict, WebhookVerdict::kUnknownProvider);
  EXPECT_THAT(unknown.reason, HasSubstr("supported: github, gitea, gitlab"));

  // An empty secret must not accept an empty token or an HMAC keyed with "".
  auto gitlab = VerifyWebhook({{"x-gitlab-token", ""}}, kBody, "");
  EXPECT_EQ(gitlab.verdict, WebhookVerdict::kNoSecret);
  auto github =
      VerifyWebhook({{"x-hub-signature-256", "sha256=" + HmacSha256Hex("", kBody)}}, kBody, "");
  EXPECT_EQ(github.verdict, WebhookVerdict::kNoSecret);
  EXPECT_THAT(github.reason, HasSubstr("no webhook secret is configured"));
}

// The pushed ref is read from the body; non-push bodies are kInvalid.
TEST(WebhookTest, PushedRef) {
  auto ref = PushedRef(kBody);
  ASSERT_TRUE(ref) << ref.error().message;
  EXPECT_EQ(*ref, "refs/heads/main");

  auto ping = PushedRef(R"({"zen":"Keep it logically awesome.","hook_id":1})");
  ASSERT_FALSE(ping);
  EXPECT_EQ(ping.error().code, ErrorCode::kInvalid);
  EXPECT_THAT(ping.error().message, HasSubstr("no string \"ref\""));

  auto garbage = PushedRef("ref=refs/heads/main");
  ASSERT_FALSE(garbage);
  EXPECT_THAT(garbage.error().message, HasSubstr("not JSON"));
}

// A push matches the configured ref by short or full branch/tag name only.
TEST(WebhookTest, PushMatchesRef) {
  EXPECT_TRUE(PushMatchesRef("refs/heads/main", "main"));
  EXPECT_TRUE(PushMatchesRef("refs/heads/main", "refs/heads/main"));
  EXPECT_TRUE(PushMatchesRef("refs/tags/v1.0", "v1.0"));
  EXPECT_FALSE(PushMatchesRef("refs/heads/feature", "main"));
  EXPECT_FALSE(PushMatchesRef("refs/heads/main-old", "main"));
  EXPECT_FALSE(PushMatchesRef("refs/heads/main", "refs/tags/main"));
  EXPECT_FALSE(PushMatchesRef("refs/heads/main", ""));
}

}  // namespace
}  // namespace ironboot::controller
