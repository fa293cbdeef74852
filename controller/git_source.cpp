#include "controller/git_source.h"

#include <fcntl.h>
#include <git2.h>
#include <git2/sys/stream.h>
#include <netdb.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <system_error>
#include <thread>
#include <vector>

#include "common/log.h"

namespace ironboot::controller {
namespace {

namespace fs = std::filesystem;

// ---------------------------------------------------------------------------
// libgit2 handles as unique_ptrs.
template <class T, void (*Free)(T*)>
struct GitDeleter {
  void operator()(T* p) const {
    if (p != nullptr) {
      Free(p);
    }
  }
};
template <class T, void (*Free)(T*)>
using GitPtr = std::unique_ptr<T, GitDeleter<T, Free>>;
using RepoPtr = GitPtr<git_repository, git_repository_free>;
using RemotePtr = GitPtr<git_remote, git_remote_free>;
using RefPtr = GitPtr<git_reference, git_reference_free>;
using ObjectPtr = GitPtr<git_object, git_object_free>;
using CommitPtr = GitPtr<git_commit, git_commit_free>;
using TreePtr = GitPtr<git_tree, git_tree_free>;
using EntryPtr = GitPtr<git_tree_entry, git_tree_entry_free>;
using BlobPtr = GitPtr<git_blob, git_blob_free>;
using OdbPtr = GitPtr<git_odb, git_odb_free>;

std::string LastGitError() {
  const git_error* e = git_error_last();
  if (e == nullptr || e->message == nullptr) {
    return "unknown libgit2 error";
  }
  return e->message;
}

std::string OidHex(const git_oid& oid) {
  std::array<char, GIT_OID_HEXSZ + 1> buf{};
  git_oid_tostr(buf.data(), buf.size(), &oid);
  return buf.data();
}

// ---------------------------------------------------------------------------
// A socket stream with connect and I/O timeouts, registered as libgit2's
// standard stream (used by git://, http, and under TLS and ssh). The first
// members mirror libgit2's own socket stream, whose `s` the ssh transport reads.
std::atomic<int> g_connect_timeout_ms{10000};
std::atomic<int> g_io_timeout_ms{60000};

// The deadline of one Fetch(): when it passes, every socket the fetch opened
// is shut down, which also ends waits inside libssh2 (it polls the socket
// itself, so per-read timeouts do not bound ssh).
struct FetchWatch {
  std::mutex mu;
  std::vector<int> fds;  // guarded by mu
  bool expired = false;  // guarded by mu
};
// The watch of the Fetch() running on this thread (libgit2 creates streams on
// the thread that called git_remote_fetch).
thread_local std::shared_ptr<FetchWatch> t_watch;

struct TimeoutStream {
  git_stream parent;
  char* host;
  char* port;
  int s;
  // Beyond libgit2's layout.
  std::shared_ptr<FetchWatch> watch;
};

std::string Endpoint(const TimeoutStream* st) {
  return std::string(st->host) + ":" + st->port;
}

int SetNetError(const std::string& message) {
  git_error_set_str(GIT_ERROR_NET, message.c_str());
  return -1;
}

// Connects `fd` to `addr` within `timeout_ms`; returns 0 or an errno value.
int ConnectWithTimeout(int fd, const addrinfo* addr, int timeout_ms) {
  int flags = fcntl(fd, F_GETFL, 0);
  fcntl(fd, F_SETFL, flags | O_NONBLOCK);
  int rc = connect(fd, addr->ai_addr, addr->ai_addrlen);
  if (rc != 0 && errno != EINPROGRESS) {
    return errno;
  }
  if (rc != 0) {
    pollfd pfd{fd, POLLOUT, 0};
    do {
      rc = poll(&pfd, 1, timeout_ms);
    } while (rc < 0 && errno == EINTR);
    if (rc == 0) {
      return ETIMEDOUT;
    }
    if (rc < 0) {
      return errno;
    }
    int so_error = 0;
    socklen_t len = sizeof(so_error);
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len);
    if (so_error != 0) {
      return so_error;
    }
  }
  fcntl(fd, F_SETFL, flags);
  int io_ms = g_io_timeout_ms.load();
  timeval tv{io_ms / 1000, (io_ms % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  return 0;
}

int StreamConnect(git_stream* stream) {
  auto* st = reinterpret_cast<TimeoutStream*>(stream);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* addrs = nullptr;
  if (int rc = getaddrinfo(st->host, st->port, &hints, &addrs); rc != 0) {
    return SetNetError("failed to resolve " + Endpoint(st) + ": " + gai_strerror(rc));
  }
  int timeout_ms = g_connect_timeout_ms.load();
  int last_errno = 0;
  for (addrinfo* a = addrs; a != nullptr; a = a->ai_next) {
    int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) {
      last_errno = errno;
      continue;
    }
    last_errno = ConnectWithTimeout(fd, a, timeout_ms);
    if (last_errno == 0) {
      freeaddrinfo(addrs);
      if (st->watch) {
        std::lock_guard<std::mutex> lock(st->watch->mu);
        if (st->watch->expired) {
          close(fd);
          return SetNetError("connect to " + Endpoint(st) + " after the fetch deadline");
        }
        st->watch->fds.push_back(fd);
      }
      st->s = fd;
      return 0;
    }
    close(fd);
  }
  freeaddrinfo(addrs);
  if (last_errno == ETIMEDOUT) {
    return SetNetError("failed to connect to " + Endpoint(st) + ": timed out after " +
                       std::to_string(timeout_ms) + " ms");
  }
  return SetNetError("failed to connect to " + Endpoint(st) + ": " + std::strerror(last_errno));
}

ssize_t StreamRead(git_stream* stream, void* data, size_t len) {
  auto* st = reinterpret_cast<TimeoutStream*>(stream);
  ssize_t n;
  do {
    n = recv(st->s, data, len, 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      SetNetError("no data from " + Endpoint(st) + " for " +
                  std::to_string(g_io_timeout_ms.load()) + " ms (read timed out)");
    } else {
      SetNetError("read from " + Endpoint(st) + " failed: " + std::strerror(errno));
    }
    return -1;
  }
  return n;
}

ssize_t StreamWrite(git_stream* stream, const char* data, size_t len, int flags) {
  (void)flags;
  auto* st = reinterpret_cast<TimeoutStream*>(stream);
  ssize_t n;
  do {
    n = send(st->s, data, len, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      SetNetError("write to " + Endpoint(st) + " timed out after " +
                  std::to_string(g_io_timeout_ms.load()) + " ms");
    } else {
      SetNetError("write to " + Endpoint(st) + " failed: " + std::strerror(errno));
    }
    return -1;
  }
  return n;
}

int StreamClose(git_stream* stream) {
  auto* st = reinterpret_cast<TimeoutStream*>(stream);
  if (st->s >= 0) {
    if (st->watch) {
      // Unregister before close, so the watchdog never shuts down a reused fd.
      std::lock_guard<std::mutex> lock(st->watch->mu);
      std::erase(st->watch->fds, st->s);
    }
    close(st->s);
    st->s = -1;
  }
  return 0;
}

void StreamFree(git_stream* stream) {
  auto* st = reinterpret_cast<TimeoutStream*>(stream);
  StreamClose(stream);
  std::free(st->host);
  std::free(st->port);
  delete st;
}

int StreamNew(git_stream** out, const char* host, const char* port) {
  auto* st = new TimeoutStream{};
  st->parent.version = GIT_STREAM_VERSION;
  st->parent.connect = StreamConnect;
  st->parent.read = StreamRead;
  st->parent.write = StreamWrite;
  st->parent.close = StreamClose;
  st->parent.free = StreamFree;
  st->host = strdup(host);
  st->port = strdup(port);
  st->s = -1;
  st->watch = t_watch;
  *out = &st->parent;
  return 0;
}

// libgit2's global state, once per process (git_libgit2_init is refcounted and
// thread-safe; call_once keeps the stream registration single too).
void InitLibgit2() {
  static std::once_flag once;
  std::call_once(once, [] {
    git_libgit2_init();
    git_stream_registration registration{};
    registration.version = GIT_STREAM_VERSION;
    registration.init = StreamNew;
    if (git_stream_register(GIT_STREAM_STANDARD, &registration) != 0) {
      Logger("source")->warn("could not register the timeout socket stream: {}", LastGitError());
    }
  });
}

// ---------------------------------------------------------------------------
// Options checks.

bool IsCommitId(std::string_view ref) {
  return ref.size() == GIT_OID_HEXSZ && std::all_of(ref.begin(), ref.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
         });
}

enum class Transport { kLocal, kGit, kHttp, kSsh };

Result<Transport> TransportOf(std::string_view url) {
  if (url.empty()) {
    return Fail(ErrorCode::kInvalid, "git url is empty");
  }
  if (url.starts_with("file://") || url.starts_with("/")) {
    return Transport::kLocal;
  }
  if (url.starts_with("git://")) {
    return Transport::kGit;
  }
  if (url.starts_with("http://") || url.starts_with("https://")) {
    return Transport::kHttp;
  }
  if (url.starts_with("ssh://")) {
    return Transport::kSsh;
  }
  // scp-like "user@host:path" (no scheme, a colon before any slash).
  auto colon = url.find(':');
  auto slash = url.find('/');
  if (url.find("://") == std::string_view::npos && colon != std::string_view::npos &&
      (slash == std::string_view::npos || colon < slash)) {
    return Transport::kSsh;
  }
  return Fail(ErrorCode::kInvalid,
              "git url \"" + RedactUrl(url) +
                  "\" is not supported (want /path, file://, git://, http(s):// or ssh)");
}

bool UrlHasPassword(std::string_view url) {
  auto scheme = url.find("://");
  if (scheme == std::string_view::npos) {
    return false;
  }
  std::string_view rest = url.substr(scheme + 3);
  auto at = rest.find('@');
  auto slash = rest.find('/');
  if (at == std::string_view::npos || (slash != std::string_view::npos && slash < at)) {
    return false;
  }
  return rest.substr(0, at).find(':') != std::string_view::npos;
}

Result<std::string> NormalizePath(std::string_view path) {
  std::string out;
  std::stringstream in{std::string(path)};
  std::string part;
  while (std::getline(in, part, '/')) {
    if (part.empty() || part == ".") {
      continue;
    }
    if (part == "..") {
      return Fail(ErrorCode::kInvalid, "git path \"" + std::string(path) +
                                           "\" must stay inside the repository (no \"..\")");
    }
    if (!out.empty()) {
      out += '/';
    }
    out += part;
  }
  return out;
}

std::string Hex(const unsigned char* data, size_t len) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < len; ++i) {
    out.push_back(kDigits[data[i] >> 4]);
    out.push_back(kDigits[data[i] & 0xf]);
  }
  return out;
}

// "<16 hex of sha256(url)>-<last path component>", stable for one URL.
std::string MirrorName(std::string_view url) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned int len = 0;
  EVP_Digest(url.data(), url.size(), md.data(), &len, EVP_sha256(), nullptr);
  std::string base(url);
  while (!base.empty() && base.back() == '/') {
    base.pop_back();
  }
  base =
      base.substr(base.find_last_of("/:") == std::string::npos ? 0 : base.find_last_of("/:") + 1);
  std::string clean;
  for (char c : base) {
    clean.push_back(
        std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' ? c : '_');
  }
  if (clean.empty() || clean == "." || clean == "..") {
    clean = "repo";
  }
  return Hex(md.data(), 8) + "-" + clean.substr(0, 40);
}

Result<std::string> ReadSecretFile(const fs::path& file, std::string_view what) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    return Fail(ErrorCode::kUnauthorized, "cannot read " + std::string(what) + " file " +
                                              file.string() + ": " + std::strerror(errno));
  }
  std::stringstream buf;
  buf << in.rdbuf();
  std::string s = buf.str();
  while (!s.empty() &&
         (s.back() == '\n' || s.back() == '\r' || s.back() == ' ' || s.back() == '\t')) {
    s.pop_back();
  }
  if (s.empty()) {
    return Fail(ErrorCode::kUnauthorized,
                std::string(what) + " file " + file.string() + " is empty");
  }
  return s;
}

// ---------------------------------------------------------------------------
// Base64 (known_hosts).
std::optional<std::string> Base64Decode(std::string_view in) {
  if (in.empty() || in.size() % 4 != 0) {
    return std::nullopt;
  }
  std::string out(in.size() / 4 * 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  if (n < 0) {
    return std::nullopt;
  }
  size_t pad = 0;
  if (in.ends_with("==")) {
    pad = 2;
  } else if (in.ends_with("=")) {
    pad = 1;
  }
  out.resize(static_cast<size_t>(n) - pad);
  return out;
}

bool HostPatternMatches(std::string_view patterns, const std::string& name) {
  if (patterns.starts_with("|1|")) {
    std::string_view rest = patterns.substr(3);
    auto bar = rest.find('|');
    if (bar == std::string_view::npos) {
      return false;
    }
    auto salt = Base64Decode(rest.substr(0, bar));
    auto hash = Base64Decode(rest.substr(bar + 1));
    if (!salt || !hash) {
      return false;
    }
    std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
    unsigned int len = 0;
    HMAC(EVP_sha1(), salt->data(), static_cast<int>(salt->size()),
         reinterpret_cast<const unsigned char*>(name.data()), name.size(), mac.data(), &len);
    return len == hash->size() && std::memcmp(mac.data(), hash->data(), len) == 0;
  }
  bool matched = false;
  std::stringstream in{std::string(patterns)};
  std::string p;
  while (std::getline(in, p, ',')) {
    if (!p.empty() && p[0] == '!') {
      if (p.substr(1) == name) {
        return false;
      }
      continue;
    }
    if (p == name) {
      matched = true;
    }
  }
  return matched;
}

// ---------------------------------------------------------------------------
// The state of one fetch, passed to libgit2's callbacks.
struct FetchContext {
  const GitSourceOptions* options = nullptr;
  int secret_offers = 0;          // credentials handed to libgit2
  bool refused = false;           // offered credentials were rejected
  bool none_configured = false;   // server asked, nothing configured
  std::optional<Error> error;     // a failure the callbacks diagnosed themselves
  std::string credential_source;  // the file the offered credential came from
};

int CredentialCallback(git_credential** out, const char* url, const char* username_from_url,
                       unsigned int allowed_types, void* payload) {
  (void)url;
  auto* ctx = static_cast<FetchContext*>(payload);
  const GitCredentials& creds = ctx->options->credentials;
  // The URL's user wins: libgit2's ssh transport insists the credential's user
  // matches it.
  std::string user =
      username_from_url != nullptr && *username_from_url ? username_from_url : creds.username;

  if ((allowed_types & GIT_CREDENTIAL_USERNAME) != 0 &&
      (allowed_types & GIT_CREDENTIAL_SSH_KEY) == 0) {
    return git_credential_username_new(out, user.empty() ? "git" : user.c_str());
  }
  if (ctx->secret_offers > 0) {
    // libgit2 asks again only when the server refused what we offered.
    ctx->refused = true;
    return GIT_EAUTH;
  }
  if ((allowed_types & GIT_CREDENTIAL_SSH_KEY) != 0 && !creds.ssh_key_file.empty()) {
    ctx->credential_source = "ssh key file " + creds.ssh_key_file.string();
    if (::access(creds.ssh_key_file.c_str(), R_OK) != 0) {
      ctx->error = Error{
          ErrorCode::kUnauthorized,
          "cannot read ssh key file " + creds.ssh_key_file.string() + ": " + std::strerror(errno)};
      return GIT_EAUTH;
    }
    ++ctx->secret_offers;
    return git_credential_ssh_key_new(out, user.empty() ? "git" : user.c_str(), nullptr,
                                      creds.ssh_key_file.c_str(), nullptr);
  }
  if ((allowed_types & GIT_CREDENTIAL_USERPASS_PLAINTEXT) != 0) {
    std::string password;
    if (!creds.basic_auth_file.empty()) {
      ctx->credential_source = "basic auth file " + creds.basic_auth_file.string();
      auto content = ReadSecretFile(creds.basic_auth_file, "basic auth");
      if (!content) {
        ctx->error = content.error();
        return GIT_EAUTH;
      }
      auto colon = content->find(':');
      if (colon == std::string::npos || colon == 0) {
        ctx->error =
            Error{ErrorCode::kUnauthorized, "basic auth file " + creds.basic_auth_file.string() +
                                                " must hold \"username:password\" on one line"};
        return GIT_EAUTH;
      }
      user = content->substr(0, colon);
      password = content->substr(colon + 1);
    } else if (!creds.token_file.empty()) {
      ctx->credential_source = "token file " + creds.token_file.string();
      auto token = ReadSecretFile(creds.token_file, "token");
      if (!token) {
        ctx->error = token.error();
        return GIT_EAUTH;
      }
      password = *token;
      if (user.empty()) {
        user = "x-access-token";
      }
    } else {
      ctx->none_configured = true;
      return GIT_PASSTHROUGH;
    }
    ++ctx->secret_offers;
    int rc = git_credential_userpass_plaintext_new(out, user.c_str(), password.c_str());
    std::fill(password.begin(), password.end(), '\0');
    return rc;
  }
  ctx->none_configured = true;
  return GIT_PASSTHROUGH;
}

int CertificateCallback(git_cert* cert, int valid, const char* host, void* payload) {
  auto* ctx = static_cast<FetchContext*>(payload);
  if (cert->cert_type != GIT_CERT_HOSTKEY_LIBSSH2) {
    return GIT_PASSTHROUGH;  // TLS: libgit2's own verification (`valid`)
  }
  (void)valid;
  const fs::path& known_hosts = ctx->options->credentials.ssh_known_hosts_file;
  auto* hostkey = reinterpret_cast<git_cert_hostkey*>(cert);
  auto fail = [&](std::string message) {
    ctx->error = Error{ErrorCode::kUnauthorized, std::move(message)};
    return GIT_ECERTIFICATE;
  };
  if ((hostkey->type & GIT_CERT_SSH_RAW) == 0) {
    return fail("ssh server " + std::string(host) + " did not provide its raw host key");
  }
  std::ifstream in(known_hosts);
  if (!in) {
    return fail("cannot read known_hosts file " + known_hosts.string());
  }
  std::stringstream text;
  text << in.rdbuf();
  // libgit2 does not tell the port; take it from the URL when it is ssh://host:port.
  int port = 22;
  const std::string& url = ctx->options->url;
  if (url.starts_with("ssh://")) {
    std::string rest = url.substr(6);
    rest = rest.substr(0, rest.find('/'));
    rest = rest.substr(rest.find('@') == std::string::npos ? 0 : rest.find('@') + 1);
    auto colon = rest.rfind(':');
    if (colon != std::string::npos && rest.find(']') == std::string::npos) {
      port = std::atoi(rest.c_str() + colon + 1);
    } else if (auto close = rest.find("]:"); close != std::string::npos) {
      port = std::atoi(rest.c_str() + close + 2);
    }
  }
  switch (CheckKnownHosts(text.str(), host, port,
                          std::string_view(hostkey->hostkey, hostkey->hostkey_len))) {
    case KnownHostsResult::kMatch:
      return 0;
    case KnownHostsResult::kMismatch:
      return fail("ssh host key of " + std::string(host) + " does not match known_hosts file " +
                  known_hosts.string() + " (changed key or man in the middle)");
    case KnownHostsResult::kRevoked:
      return fail("ssh host key of " + std::string(host) + " is revoked in known_hosts file " +
                  known_hosts.string());
    case KnownHostsResult::kUnknownHost:
      break;
  }
  return fail("ssh host " + std::string(host) + " is not in known_hosts file " +
              known_hosts.string());
}

// Opens the bare mirror, creating it (and re-creating it when unreadable).
Result<RepoPtr> OpenMirror(const fs::path& dir) {
  git_repository* raw = nullptr;
  if (fs::exists(dir / "HEAD") && git_repository_open_bare(&raw, dir.c_str()) == 0) {
    return RepoPtr(raw);
  }
  if (fs::exists(dir)) {
    Logger("source")->warn("mirror={} is not a readable git repository ({}); recreating it",
                           dir.string(), LastGitError());
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  git_repository_init_options init = GIT_REPOSITORY_INIT_OPTIONS_INIT;
  init.flags = GIT_REPOSITORY_INIT_BARE | GIT_REPOSITORY_INIT_MKPATH;
  if (git_repository_init_ext(&raw, dir.c_str(), &init) != 0) {
    return Fail(ErrorCode::kInternal,
                "cannot create git mirror " + dir.string() + ": " + LastGitError());
  }
  return RepoPtr(raw);
}

constexpr const char* kHeadsSpec = "+refs/heads/*:refs/remotes/origin/*";
constexpr const char* kTagsSpec = "+refs/tags/*:refs/tags/*";

// The remote a fetch runs against: an in-memory (anonymous) remote for `url`,
// not one named in the mirror's config. libgit2 1.5 leaks pcre2 match data
// (about 20 KiB) in git_regexp_match for every config entry a regex does not
// match, and a named remote (git_remote_lookup, git_remote_create) matches
// every entry of the repository's config (mirror, ~/.gitconfig, /etc/gitconfig)
// against "url\..*\.insteadof", once per direction: with a lookup per fetch,
// over 100 KB was lost each time (issue 15). With
// GIT_REMOTE_CREATE_SKIP_INSTEADOF nothing reads the config, so the URL fetched
// is exactly the one configured (and named in errors); the refspecs are given
// to each git_remote_fetch, so the remote needs none of its own.
Result<RemotePtr> MirrorRemote(git_repository* repo, const std::string& url) {
  git_remote_create_options create = GIT_REMOTE_CREATE_OPTIONS_INIT;
  create.repository = repo;
  create.flags = GIT_REMOTE_CREATE_SKIP_INSTEADOF | GIT_REMOTE_CREATE_SKIP_DEFAULT_FETCHSPEC;
  git_remote* raw = nullptr;
  if (git_remote_create_with_opts(&raw, url.c_str(), &create) != 0) {
    return Fail(ErrorCode::kInvalid,
                "git url \"" + RedactUrl(url) + "\" is not usable: " + LastGitError());
  }
  return RemotePtr(raw);
}

// The local names a configured ref may have in the mirror, in lookup order.
std::vector<std::string> MirrorRefNames(const std::string& ref) {
  if (ref.starts_with("refs/heads/")) {
    return {"refs/remotes/origin/" + ref.substr(11)};
  }
  if (ref.starts_with("refs/tags/")) {
    return {ref};
  }
  return {"refs/remotes/origin/" + ref, "refs/tags/" + ref};
}

// Resolves `ref` in the mirror to a commit; nullopt when it is not there.
std::optional<git_oid> ResolveInMirror(git_repository* repo, const std::string& ref) {
  if (IsCommitId(ref)) {
    git_oid oid;
    git_commit* commit = nullptr;
    if (git_oid_fromstr(&oid, ref.c_str()) != 0 || git_commit_lookup(&commit, repo, &oid) != 0) {
      return std::nullopt;
    }
    git_commit_free(commit);
    return oid;
  }
  for (const std::string& name : MirrorRefNames(ref)) {
    git_reference* raw = nullptr;
    if (git_reference_lookup(&raw, repo, name.c_str()) != 0) {
      continue;
    }
    RefPtr reference(raw);
    git_object* peeled = nullptr;
    if (git_reference_peel(&peeled, reference.get(), GIT_OBJECT_COMMIT) != 0) {
      continue;
    }
    ObjectPtr object(peeled);
    return *git_object_id(object.get());
  }
  return std::nullopt;
}

struct TreeReader {
  git_repository* repo;
  git_odb* odb;
  std::size_t max_file_bytes;
  const std::string* describe;
  std::map<std::string, std::string>* files;

  Result<void> Read(const git_tree* tree, const std::string& prefix) {
    auto log = Logger("source");
    std::size_t n = git_tree_entrycount(tree);
    for (std::size_t i = 0; i < n; ++i) {
      const git_tree_entry* entry = git_tree_entry_byindex(tree, i);
      std::string path = prefix + git_tree_entry_name(entry);
      switch (git_tree_entry_filemode(entry)) {
        case GIT_FILEMODE_TREE: {
          git_tree* sub = nullptr;
          if (git_tree_lookup(&sub, repo, git_tree_entry_id(entry)) != 0) {
            return Fail(ErrorCode::kInternal,
                        "read tree " + path + " of " + *describe + ": " + LastGitError());
          }
          TreePtr subtree(sub);
          if (auto r = Read(subtree.get(), path + "/"); !r) {
            return r;
          }
          break;
        }
        case GIT_FILEMODE_BLOB:
        case GIT_FILEMODE_BLOB_EXECUTABLE: {
          std::size_t size = 0;
          git_object_t type;
          if (git_odb_read_header(&size, &type, odb, git_tree_entry_id(entry)) != 0) {
            return Fail(ErrorCode::kInternal,
                        "read " + path + " of " + *describe + ": " + LastGitError());
          }
          if (size > max_file_bytes) {
            log->warn("skipping large file source=\"{}\" file={} bytes={} limit={}", *describe,
                      path, size, max_file_bytes);
            break;
          }
          git_blob* raw = nullptr;
          if (git_blob_lookup(&raw, repo, git_tree_entry_id(entry)) != 0) {
            return Fail(ErrorCode::kInternal,
                        "read " + path + " of " + *describe + ": " + LastGitError());
          }
          BlobPtr blob(raw);
          (*files)[path] = std::string(static_cast<const char*>(git_blob_rawcontent(blob.get())),
                                       static_cast<std::size_t>(git_blob_rawsize(blob.get())));
          break;
        }
        case GIT_FILEMODE_LINK:
          log->warn("skipping symlink source=\"{}\" file={}", *describe, path);
          break;
        case GIT_FILEMODE_COMMIT:
          log->warn("skipping submodule source=\"{}\" path={}", *describe, path);
          break;
        default:
          break;
      }
    }
    return {};
  }
};

}  // namespace

// ---------------------------------------------------------------------------

std::string RedactUrl(std::string_view url) {
  auto scheme = url.find("://");
  if (scheme == std::string_view::npos) {
    return std::string(url);
  }
  std::string_view rest = url.substr(scheme + 3);
  auto at = rest.find('@');
  auto slash = rest.find('/');
  if (at == std::string_view::npos || (slash != std::string_view::npos && slash < at)) {
    return std::string(url);
  }
  std::string_view userinfo = rest.substr(0, at);
  auto colon = userinfo.find(':');
  if (colon == std::string_view::npos) {
    return std::string(url);
  }
  return std::string(url.substr(0, scheme + 3)) + std::string(userinfo.substr(0, colon)) +
         ":REDACTED" + std::string(rest.substr(at));
}

void SetGitNetworkTimeouts(std::chrono::milliseconds connect, std::chrono::milliseconds io) {
  g_connect_timeout_ms = static_cast<int>(std::max<long long>(1, connect.count()));
  g_io_timeout_ms = static_cast<int>(std::max<long long>(1, io.count()));
}

KnownHostsResult CheckKnownHosts(std::string_view known_hosts, std::string_view host, int port,
                                 std::string_view key_blob) {
  std::string name = port == 22 || port <= 0
                         ? std::string(host)
                         : "[" + std::string(host) + "]:" + std::to_string(port);
  KnownHostsResult result = KnownHostsResult::kUnknownHost;
  std::stringstream in{std::string(known_hosts)};
  std::string line;
  while (std::getline(in, line)) {
    std::stringstream fields(line);
    std::string marker, hosts, type, key;
    fields >> hosts;
    if (hosts.empty() || hosts[0] == '#') {
      continue;
    }
    if (hosts[0] == '@') {
      marker = hosts;
      fields >> hosts;
    }
    fields >> type >> key;
    if (key.empty() || marker == "@cert-authority" || !HostPatternMatches(hosts, name)) {
      continue;
    }
    auto blob = Base64Decode(key);
    bool same = blob && *blob == key_blob;
    if (marker == "@revoked") {
      if (same) {
        return KnownHostsResult::kRevoked;
      }
      continue;
    }
    if (same) {
      result = KnownHostsResult::kMatch;
    } else if (result == KnownHostsResult::kUnknownHost) {
      result = KnownHostsResult::kMismatch;
    }
  }
  return result;
}

Result<std::unique_ptr<GitSource>> GitSource::Create(GitSourceOptions options) {
  InitLibgit2();
  auto transport = TransportOf(options.url);
  if (!transport) {
    return std::unexpected(transport.error());
  }
  if (UrlHasPassword(options.url)) {
    return Fail(ErrorCode::kInvalid,
                "git url \"" + RedactUrl(options.url) +
                    "\" carries a password: put it in a credentials file instead");
  }
  if (!options.ref.empty() && !IsCommitId(options.ref) &&
      git_reference_is_valid_name(
          (options.ref.starts_with("refs/") ? options.ref : "refs/heads/" + options.ref).c_str()) ==
          0) {
    return Fail(ErrorCode::kInvalid,
                "git ref \"" + options.ref + "\" is not a valid branch, tag or 40-hex commit id");
  }
  auto path = NormalizePath(options.path);
  if (!path) {
    return std::unexpected(path.error());
  }
  options.path = *path;
  if (options.state_dir.empty()) {
    return Fail(ErrorCode::kInvalid, "git state_dir is empty (the mirror needs a directory)");
  }
  const GitCredentials& c = options.credentials;
  if (!c.token_file.empty() && !c.basic_auth_file.empty()) {
    return Fail(ErrorCode::kInvalid,
                "git credentials: set a token file or a basic auth file, not both");
  }
  if ((!c.token_file.empty() || !c.basic_auth_file.empty()) && *transport != Transport::kHttp) {
    return Fail(ErrorCode::kInvalid,
                "git credentials: token and basic auth files apply to "
                "http(s) URLs, not \"" +
                    RedactUrl(options.url) + "\"");
  }
  if (*transport == Transport::kSsh && c.ssh_known_hosts_file.empty()) {
    return Fail(ErrorCode::kInvalid,
                "git url \"" + options.url +
                    "\" is ssh: a known_hosts file is required to check the server's host key");
  }
  if (!c.ssh_key_file.empty() && *transport != Transport::kSsh) {
    return Fail(ErrorCode::kInvalid, "git credentials: an ssh key applies to ssh URLs, not \"" +
                                         RedactUrl(options.url) + "\"");
  }
  if (!options.ca_file.empty()) {
    if (*transport != Transport::kHttp) {
      return Fail(ErrorCode::kInvalid,
                  "git ca_file applies to https URLs, not \"" + RedactUrl(options.url) + "\"");
    }
    if (::access(options.ca_file.c_str(), R_OK) != 0) {
      return Fail(ErrorCode::kInvalid, "git ca_file " + options.ca_file.string() +
                                           " is not readable: " + std::strerror(errno));
    }
    if (git_libgit2_opts(GIT_OPT_SET_SSL_CERT_LOCATIONS, options.ca_file.c_str(), nullptr) != 0) {
      return Fail(ErrorCode::kInvalid, "git ca_file " + options.ca_file.string() +
                                           " is not a PEM CA bundle: " + LastGitError());
    }
  }
  SetGitNetworkTimeouts(options.connect_timeout, options.io_timeout);
  fs::path mirror = options.state_dir / "git" / MirrorName(options.url);
  return std::unique_ptr<GitSource>(new GitSource(std::move(options), std::move(mirror)));
}

namespace {
// One mutex per mirror directory for the life of the process.
std::shared_ptr<std::mutex> MirrorMutex(const fs::path& dir) {
  static std::mutex registry_mu;
  static std::map<std::string, std::shared_ptr<std::mutex>> registry;
  std::lock_guard<std::mutex> lock(registry_mu);
  auto& mu = registry[fs::weakly_canonical(dir).string()];
  if (!mu) {
    mu = std::make_shared<std::mutex>();
  }
  return mu;
}
}  // namespace

GitSource::GitSource(GitSourceOptions options, std::filesystem::path mirror_dir)
    : options_(std::move(options)),
      mirror_dir_(std::move(mirror_dir)),
      mirror_mu_(MirrorMutex(mirror_dir_)) {}

GitSource::~GitSource() = default;

std::string GitSource::Describe() const {
  std::string out = RedactUrl(options_.url) + " " + (options_.ref.empty() ? "HEAD" : options_.ref);
  if (!options_.path.empty()) {
    out += " path=" + options_.path;
  }
  return out;
}

Result<Snapshot> GitSource::Fetch() {
  std::lock_guard<std::mutex> lock(*mirror_mu_);
  auto log = Logger("source");
  const std::string url = RedactUrl(options_.url);
  const std::string describe = Describe();

  auto repo = OpenMirror(mirror_dir_);
  if (!repo) {
    return std::unexpected(repo.error());
  }
  auto remote = MirrorRemote(repo->get(), options_.url);
  if (!remote) {
    return std::unexpected(remote.error());
  }

  // What the ref pointed to before this fetch, to notice a force-push.
  std::optional<git_oid> before;
  if (!options_.ref.empty() && !IsCommitId(options_.ref)) {
    before = ResolveInMirror(repo->get(), options_.ref);
  }

  FetchContext ctx;
  ctx.options = &options_;
  git_fetch_options fetch = GIT_FETCH_OPTIONS_INIT;
  fetch.prune = GIT_FETCH_PRUNE;
  fetch.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_ALL;
  fetch.callbacks.credentials = CredentialCallback;
  fetch.callbacks.certificate_check = CertificateCallback;
  fetch.callbacks.payload = &ctx;
  const char* specs[] = {kHeadsSpec, kTagsSpec};
  git_strarray refspecs{const_cast<char**>(specs), 2};
  git_error_clear();
  auto watch = std::make_shared<FetchWatch>();
  int rc = 0;
  {
    std::mutex done_mu;
    std::condition_variable done_cv;
    bool done = false;
    std::thread watchdog([&] {
      std::unique_lock<std::mutex> lock(done_mu);
      if (done_cv.wait_for(lock, options_.fetch_timeout, [&] { return done; })) {
        return;
      }
      std::lock_guard<std::mutex> watch_lock(watch->mu);
      watch->expired = true;
      for (int fd : watch->fds) {
        shutdown(fd, SHUT_RDWR);
      }
    });
    t_watch = watch;
    rc = git_remote_fetch(remote->get(), &refspecs, &fetch, "ironboot fetch");
    t_watch.reset();
    {
      std::lock_guard<std::mutex> lock(done_mu);
      done = true;
    }
    done_cv.notify_one();
    watchdog.join();
  }
  bool expired = false;
  {
    std::lock_guard<std::mutex> lock(watch->mu);
    expired = watch->expired;
  }
  if (rc != 0) {
    std::string detail = LastGitError();
    if (expired) {
      return Fail(ErrorCode::kUnavailable, "fetch " + url + ": no complete answer within " +
                                               std::to_string(options_.fetch_timeout.count()) +
                                               " ms (fetch_timeout): " + detail);
    }
    if (ctx.error) {
      return std::unexpected(ctx.error->Wrap("fetch " + url));
    }
    if (ctx.refused) {
      return Fail(ErrorCode::kUnauthorized,
                  "fetch " + url + ": credentials from " + ctx.credential_source + " were refused");
    }
    if (ctx.none_configured) {
      return Fail(ErrorCode::kUnauthorized,
                  "fetch " + url +
                      ": the remote requires credentials and none are configured "
                      "(token file, basic auth file or ssh key)");
    }
    const git_error* e = git_error_last();
    if (e != nullptr && (e->klass == GIT_ERROR_SSH || e->klass == GIT_ERROR_HTTP) &&
        detail.find("auth") != std::string::npos) {
      std::string from =
          ctx.credential_source.empty() ? "" : " (credentials from " + ctx.credential_source + ")";
      return Fail(ErrorCode::kUnauthorized, "fetch " + url + ": " + detail + from);
    }
    if (rc == GIT_ECERTIFICATE) {
      return Fail(ErrorCode::kUnavailable,
                  "fetch " + url + ": " + detail +
                      " (a server with a private CA needs ca_file set to that CA's PEM)");
    }
    return Fail(ErrorCode::kUnavailable, "fetch " + url + ": " + detail);
  }

  // The ref to read: configured, else the remote HEAD's branch.
  std::string ref = options_.ref;
  if (ref.empty()) {
    git_buf head = GIT_BUF_INIT;
    if (git_remote_default_branch(&head, remote->get()) == 0) {
      std::string name(head.ptr, head.size);
      ref = name.starts_with("refs/heads/") ? name.substr(11) : name;
    } else {
      ref = "main";
    }
    git_buf_dispose(&head);
    before = std::nullopt;  // the default branch may have changed; no force-push check
  }

  auto commit_id = ResolveInMirror(repo->get(), ref);
  if (!commit_id) {
    if (IsCommitId(ref)) {
      return Fail(ErrorCode::kNotFound,
                  "commit " + ref + " not found in any branch or tag of " + url);
    }
    return Fail(ErrorCode::kNotFound,
                "ref \"" + ref + "\" not found at " + url + " (no such branch or tag; deleted?)");
  }
  const std::string hex = OidHex(*commit_id);

  if (before && git_oid_cmp(&*before, &*commit_id) != 0 &&
      git_graph_descendant_of(repo->get(), &*commit_id, &*before) != 1) {
    log->warn("force-push detected url={} ref={} old={} new={}", url, ref, OidHex(*before), hex);
  }

  git_commit* raw_commit = nullptr;
  if (git_commit_lookup(&raw_commit, repo->get(), &*commit_id) != 0) {
    return Fail(ErrorCode::kInternal, "read commit " + hex + " of " + url + ": " + LastGitError());
  }
  CommitPtr commit(raw_commit);
  git_tree* raw_tree = nullptr;
  if (git_commit_tree(&raw_tree, commit.get()) != 0) {
    return Fail(ErrorCode::kInternal, "read tree of " + hex + " of " + url + ": " + LastGitError());
  }
  TreePtr tree(raw_tree);
  if (!options_.path.empty()) {
    git_tree_entry* raw_entry = nullptr;
    if (git_tree_entry_bypath(&raw_entry, tree.get(), options_.path.c_str()) != 0) {
      return Fail(ErrorCode::kNotFound, "path \"" + options_.path + "\" not found in " + url +
                                            " at " + ref + "@sha1:" + hex);
    }
    EntryPtr entry(raw_entry);
    if (git_tree_entry_type(entry.get()) != GIT_OBJECT_TREE) {
      return Fail(ErrorCode::kInvalid, "path \"" + options_.path + "\" in " + url + " at " + ref +
                                           "@sha1:" + hex + " is a file, want a directory");
    }
    git_tree* sub = nullptr;
    if (git_tree_lookup(&sub, repo->get(), git_tree_entry_id(entry.get())) != 0) {
      return Fail(ErrorCode::kInternal, "read tree " + options_.path + ": " + LastGitError());
    }
    tree.reset(sub);
  }

  git_odb* raw_odb = nullptr;
  if (git_repository_odb(&raw_odb, repo->get()) != 0) {
    return Fail(ErrorCode::kInternal,
                "open object database " + mirror_dir_.string() + ": " + LastGitError());
  }
  OdbPtr odb(raw_odb);

  Snapshot snapshot;
  snapshot.commit = hex;
  snapshot.revision = ref + "@sha1:" + hex;
  TreeReader reader{repo->get(), odb.get(), options_.max_file_bytes, &describe, &snapshot.files};
  if (auto r = reader.Read(tree.get(), ""); !r) {
    return std::unexpected(r.error());
  }
  log->debug("fetched source=\"{}\" rev={} files={}", describe, snapshot.revision,
             snapshot.files.size());
  return snapshot;
}

}  // namespace ironboot::controller
