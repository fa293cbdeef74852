#pragma once
// controller/: GitSource, the Source backed by a git remote (libgit2).
//
// Each Fetch() fetches the remote into a bare mirror under
// <state_dir>/git/<hash of url> (explicit refspecs for branches and tags,
// pruned), resolves the configured ref, and reads the tree at that commit
// straight from the object database (no working tree) into a Snapshot. The
// URL fetched is exactly the configured one: git config `url.*.insteadOf`
// rules are not applied (see MirrorRemote in git_source.cpp for why).
//
// Transports: local paths and file://, git://, http(s) (smart protocol), ssh.
// Credentials are read from files at each fetch, never taken on a command line
// and never logged; an authentication failure names the URL and the file the
// credential came from. Network I/O has connect and read/write timeouts
// (libgit2 1.5 has no option for them, so GitSource registers its own socket
// stream with libgit2; see SetGitNetworkTimeouts).

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "common/error.h"
#include "controller/source.h"

namespace ironboot::controller {

struct GitCredentials {
  // https: a file holding a token (the whole file, whitespace trimmed), sent as
  // the password of HTTP basic auth with the user named in the URL, else
  // `username`, else "x-access-token" (GitHub, Gitea and GitLab accept it).
  std::filesystem::path token_file;
  // https: a file holding "username:password" (one line).
  std::filesystem::path basic_auth_file;
  // The user when the URL names none (https token, ssh; default for ssh: "git").
  std::string username;
  // ssh: a private key file (unencrypted) and the known_hosts file the
  // server's host key must be in. ssh URLs require known_hosts.
  std::filesystem::path ssh_key_file;
  std::filesystem::path ssh_known_hosts_file;
};

struct GitSourceOptions {
  std::string url;  // /abs/path, file://, git://, http://, https://, ssh://, user@host:path
  // Branch ("main", "refs/heads/main"), tag ("v1.2", "refs/tags/v1.2") or a
  // 40-hex commit id. Empty: the remote HEAD's branch, or "main" if the remote
  // does not say.
  std::string ref;
  std::string path;                 // subdirectory of the repository to read; "" = the root
  std::filesystem::path state_dir;  // the mirror lives in <state_dir>/git/
  GitCredentials credentials;
  // https: a PEM bundle of the CAs to trust instead of the system bundle, for
  // a server with a private CA. Process-wide (libgit2 keeps one trust store):
  // once set, every https GitSource in the process uses it, so include every
  // CA needed.
  std::filesystem::path ca_file;
  // Larger files are skipped with a warning (a cluster repo holds YAML).
  std::size_t max_file_bytes = 4 * 1024 * 1024;
  // Network timeouts (process-wide, see SetGitNetworkTimeouts).
  std::chrono::milliseconds connect_timeout{std::chrono::seconds(10)};
  std::chrono::milliseconds io_timeout{std::chrono::seconds(60)};
  // The whole network part of one Fetch(); past it, its connections are shut
  // down and the fetch fails with kUnavailable. Per source. It is what bounds
  // ssh, whose reads libssh2 waits for without a timeout.
  std::chrono::milliseconds fetch_timeout{std::chrono::minutes(10)};
};

class GitSource final : public Source {
 public:
  // Checks the options (URL form, ref form, path without "..", credential
  // files configured for the right transport) and prepares the mirror
  // directory. Does not touch the network. kInvalid with the field named.
  static Result<std::unique_ptr<GitSource>> Create(GitSourceOptions options);
  ~GitSource() override;

  // Source. Thread-safe: fetches into one mirror are serialized, also across
  // GitSource objects for the same URL and state_dir in this process.
  Result<Snapshot> Fetch() override;
  std::string Describe() const override;

  // The mirror's path (for tests and `ironboot status`).
  const std::filesystem::path& mirror_dir() const { return mirror_dir_; }

 private:
  explicit GitSource(GitSourceOptions options, std::filesystem::path mirror_dir);

  // Constant after construction.
  const GitSourceOptions options_;
  const std::filesystem::path mirror_dir_;

  // Serializes fetches into this mirror, shared by every GitSource in the
  // process with the same mirror directory.
  const std::shared_ptr<std::mutex> mirror_mu_;
};

// Sets libgit2's network timeouts for every GitSource in the process: TCP
// connect, and each read/write on an open connection. A remote that stops
// answering fails the fetch with kUnavailable after at most the I/O timeout.
void SetGitNetworkTimeouts(std::chrono::milliseconds connect, std::chrono::milliseconds io);

// The verdict of a known_hosts lookup for an ssh server's host key.
enum class KnownHostsResult { kMatch, kMismatch, kUnknownHost, kRevoked };
// Looks `host` (with `port`, 22 = plain name, else "[host]:port") up in the
// text of an OpenSSH known_hosts file (plain and hashed "|1|" entries,
// @revoked markers; wildcard patterns are not supported) and compares the key
// blob (the raw SSH wire-format key, as base64-decoded from the file).
KnownHostsResult CheckKnownHosts(std::string_view known_hosts, std::string_view host, int port,
                                 std::string_view key_blob);

// "https://user:pw@host/x" -> "https://user@host/x"; other URLs unchanged.
std::string RedactUrl(std::string_view url);

}  // namespace ironboot::controller
