#include "talos/api_client.h"

#include <arpa/inet.h>

#include <grpc/support/log.h>
#include <grpcpp/grpcpp.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>

#include "common/log.h"
#include "machine/machine.grpc.pb.h"
#include "talos/kubeconfig_archive.h"
#include "talos/pki.h"
#include "talos/tls_probe.h"

namespace ironboot::talos {

namespace {

// The compressed Kubeconfig stream is refused past this (a kubeconfig
// archive is a few KiB).
constexpr size_t kMaxKubeconfigStreamBytes = 4 * 1024 * 1024;

std::string DurationText(std::chrono::milliseconds d) {
  if (d.count() % 1000 == 0) {
    return std::to_string(d.count() / 1000) + "s";
  }
  return std::to_string(d.count()) + "ms";
}

const char* CodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::CANCELLED:
      return "CANCELLED";
    case grpc::StatusCode::UNKNOWN:
      return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED:
      return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE:
      return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL:
      return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS:
      return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    default:
      return "gRPC status";
  }
}

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// gRPC reports a failed TLS handshake (server certificate not from our CA, our
// client certificate refused) as UNAVAILABLE; its message tells it apart from
// a node that is down.
bool LooksLikeTlsFailure(const std::string& message) {
  std::string m = Lower(message);
  for (const char* needle : {"handshake", "ssl", "tls", "certificate", "alert"}) {
    if (m.find(needle) != std::string::npos) {
      return true;
    }
  }
  return false;
}

// The host part of "host:port" / "[v6]:port", for the TLS name check.
std::string HostOf(const std::string& target) {
  if (target.starts_with('[')) {
    return target.substr(1, target.find(']') - 1);
  }
  return target.substr(0, target.rfind(':'));
}

// The gRPC target for "host:port": an IP address is dialled as it is
// ("ipv4:" / "ipv6:", gRPC's static resolver); a name goes through DNS. The
// default DNS resolver would re-resolve an address every so often, and each
// result rebuilds the channel's subchannels and their TLS contexts.
std::string GrpcTargetOf(const std::string& target) {
  std::string host = HostOf(target);
  unsigned char buf[sizeof(struct in6_addr)];
  if (inet_pton(AF_INET, host.c_str(), buf) == 1) {
    return "ipv4:" + target;
  }
  if (inet_pton(AF_INET6, host.c_str(), buf) == 1) {
    return "ipv6:" + target;
  }
  return target;
}

// gRPC's own log lines (handshake failures, reconnects) go to our "grpc"
// logger at debug level instead of stderr: the errors we return say it all.
void RouteGrpcLogs() {
  static std::once_flag once;
  std::call_once(once, [] {
    gpr_set_log_function([](gpr_log_func_args* args) {
      Logger("grpc")->debug("{}:{} {}", args->file, args->line, args->message);
    });
  });
}

}  // namespace

// One call to one node: names it in errors and maps gRPC results.
struct TalosApiClient::Call {
  std::string target;
  std::string name;
  std::chrono::milliseconds deadline;

  std::string Prefix() const { return "Talos API " + target + " " + name; }

  Error Fail(ErrorCode code, const std::string& what) const {
    return Error{code, Prefix() + ": " + what};
  }

  Error FromStatus(const grpc::Status& status) const {
    const std::string& msg = status.error_message();
    std::string detail = std::string(CodeName(status.error_code())) + ": " + msg;
    switch (status.error_code()) {
      case grpc::StatusCode::DEADLINE_EXCEEDED:
        return Fail(ErrorCode::kUnavailable, "deadline exceeded after " + DurationText(deadline) +
                                                 " (the node did not answer)");
      case grpc::StatusCode::UNAVAILABLE:
        if (LooksLikeTlsFailure(msg)) {
          return Fail(ErrorCode::kUnauthorized,
                      "TLS handshake failed (is the node's certificate from this cluster's os CA, "
                      "and does it accept our client certificate?): " +
                          detail);
        }
        return Fail(ErrorCode::kUnavailable, "node unavailable: " + detail);
      case grpc::StatusCode::CANCELLED:
      case grpc::StatusCode::RESOURCE_EXHAUSTED:
        return Fail(ErrorCode::kUnavailable, detail);
      case grpc::StatusCode::UNAUTHENTICATED:
      case grpc::StatusCode::PERMISSION_DENIED:
        return Fail(ErrorCode::kUnauthorized, "credentials refused: " + detail);
      case grpc::StatusCode::FAILED_PRECONDITION:
      case grpc::StatusCode::INVALID_ARGUMENT:
      case grpc::StatusCode::UNIMPLEMENTED:
      case grpc::StatusCode::ALREADY_EXISTS:
      case grpc::StatusCode::OUT_OF_RANGE:
      case grpc::StatusCode::ABORTED:
        return Fail(ErrorCode::kInvalid, "the node refused the request: " + detail);
      case grpc::StatusCode::NOT_FOUND:
        return Fail(ErrorCode::kNotFound, detail);
      default:
        return Fail(ErrorCode::kInternal, "the node failed the request: " + detail);
    }
  }

  // The reply's first (and, without node routing, only) per-node message.
  template <class Response>
  Result<const typename std::remove_cvref_t<decltype(std::declval<Response>().messages(0))>*> First(
      const Response& response) const {
    if (response.messages_size() == 0) {
      return std::unexpected(Fail(ErrorCode::kInternal, "reply holds no messages"));
    }
    const auto& item = response.messages(0);
    if (item.has_metadata() && !item.metadata().error().empty()) {
      return std::unexpected(
          Fail(ErrorCode::kInvalid, "the node reported an error: " + item.metadata().error()));
    }
    return &item;
  }
};

Result<std::string> TalosApiTarget(const std::string& node) {
  auto bad = [&](const std::string& why) {
    return Fail(ErrorCode::kInvalid, "node \"" + node + "\": " + why);
  };
  if (node.empty()) {
    return bad("empty (want an address, e.g. 10.0.4.101 or host:port)");
  }
  auto check_port = [&](const std::string& port) -> Result<void> {
    if (port.empty() || port.size() > 5 ||
        !std::all_of(port.begin(), port.end(), [](unsigned char c) { return std::isdigit(c); }) ||
        std::stoi(port) < 1 || std::stoi(port) > 65535) {
      return bad("port \"" + port + "\" is not a number in 1..65535");
    }
    return {};
  };
  if (node.starts_with('[')) {
    size_t close = node.find(']');
    if (close == std::string::npos) {
      return bad("missing ']' after the IPv6 address");
    }
    if (close + 1 == node.size()) {
      return node + ":" + std::to_string(kTalosApiPort);
    }
    if (node[close + 1] != ':') {
      return bad("want [address]:port");
    }
    if (auto ok = check_port(node.substr(close + 2)); !ok) {
      return std::unexpected(ok.error());
    }
    return node;
  }
  size_t colons = std::count(node.begin(), node.end(), ':');
  if (colons == 0) {
    return node + ":" + std::to_string(kTalosApiPort);
  }
  if (colons > 1) {  // a bare IPv6 address
    return "[" + node + "]:" + std::to_string(kTalosApiPort);
  }
  size_t colon = node.find(':');
  if (colon == 0) {
    return bad("no host before the port");
  }
  if (auto ok = check_port(node.substr(colon + 1)); !ok) {
    return std::unexpected(ok.error());
  }
  return node;
}

Result<TalosCredentials> ParseTalosconfigCredentials(std::string_view yaml, std::string_view source,
                                                     const std::string& context) {
  std::string src(source);
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    return Fail(ErrorCode::kInvalid, src + ": not a talosconfig (YAML error at line " +
                                         std::to_string(e.mark.line + 1) + ": " + e.msg + ")");
  }
  if (!root.IsMap()) {
    return Fail(ErrorCode::kInvalid,
                src + ": not a talosconfig (want a map with context and contexts)");
  }
  std::string name = context;
  if (name.empty()) {
    if (!root["context"] || !root["context"].IsScalar() || root["context"].Scalar().empty()) {
      return Fail(ErrorCode::kInvalid,
                  src + ": no current context (the file has no \"context:\"; name one)");
    }
    name = root["context"].Scalar();
  }
  YAML::Node contexts = root["contexts"];
  if (!contexts || !contexts.IsMap()) {
    return Fail(ErrorCode::kInvalid, src + ": no \"contexts\" map");
  }
  YAML::Node ctx = contexts[name];
  if (!ctx || !ctx.IsMap()) {
    std::string have;
    for (const auto& kv : contexts) {
      have += (have.empty() ? "" : ", ") + kv.first.as<std::string>("?");
    }
    return Fail(ErrorCode::kNotFound, src + ": context \"" + name + "\" not found (have: " +
                                          (have.empty() ? "none" : have) + ")");
  }
  TalosCredentials creds;
  for (auto [field, out] : {std::pair<const char*, std::string*>{"ca", &creds.ca_pem},
                            {"crt", &creds.crt_pem},
                            {"key", &creds.key_pem}}) {
    std::string path = src + ": contexts." + name + "." + field;
    YAML::Node v = ctx[field];
    if (!v || !v.IsScalar() || v.Scalar().empty()) {
      return Fail(ErrorCode::kInvalid, path + " is missing (want a base64 PEM)");
    }
    auto pem = Base64Decode(v.Scalar());
    if (!pem) {
      return Fail(ErrorCode::kInvalid, path + " is not base64 (want a base64 PEM)");
    }
    if (pem->find("-----BEGIN ") == std::string::npos) {
      return Fail(ErrorCode::kInvalid, path + " does not decode to a PEM block");
    }
    *out = std::move(*pem);
  }
  return creds;
}

Result<TalosCredentials> LoadTalosconfigCredentials(const std::string& path,
                                                    const std::string& context) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Fail(ErrorCode::kNotFound, "talosconfig " + path + ": cannot be read");
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseTalosconfigCredentials(ss.str(), path, context);
}

Result<std::unique_ptr<TalosApiClient>> TalosApiClient::Create(TalosCredentials credentials,
                                                               TalosApiOptions options) {
  credentials.key_pem = ToOpenSslKeyPem(credentials.key_pem);
  if (auto t = CertificateKeyType(credentials.ca_pem, "Talos API os CA certificate"); !t) {
    return std::unexpected(t.error());
  }
  if (auto t = CertificateKeyType(credentials.crt_pem, "Talos API client certificate"); !t) {
    return std::unexpected(t.error());
  }
  if (auto t = PrivateKeyType(credentials.key_pem, "Talos API client key"); !t) {
    return std::unexpected(t.error());
  }
  auto match = CertificateMatchesKey(credentials.crt_pem, credentials.key_pem,
                                     "Talos API client certificate");
  if (!match) {
    return std::unexpected(match.error());
  }
  if (!*match) {
    return Fail(ErrorCode::kInvalid,
                "Talos API client certificate: does not belong to the client key (crt and key "
                "come from different talosconfigs?)");
  }
  if (options.deadline.count() <= 0) {
    return Fail(ErrorCode::kInvalid, "Talos API deadline must be positive");
  }
  return std::unique_ptr<TalosApiClient>(new TalosApiClient(std::move(credentials), options));
}

TalosApiClient::TalosApiClient(TalosCredentials credentials, TalosApiOptions options)
    : credentials_(std::move(credentials)), options_(options) {
  RouteGrpcLogs();
}

TalosApiClient::~TalosApiClient() = default;

namespace {

// A channel whose last dial failed stays in TRANSIENT_FAILURE until a dial
// succeeds ("sticky"), failing every call at once, and dials again only when
// its backoff ends. Dial now, and wait until `until` for the node to answer;
// a node still down costs that wait (the channel shows no refused dial).
void RedialIfFailed(grpc::Channel& channel, std::chrono::system_clock::time_point until) {
  if (channel.GetState(false) != GRPC_CHANNEL_TRANSIENT_FAILURE) {
    return;
  }
  grpc::experimental::ChannelResetConnectionBackoff(&channel);
  channel.WaitForConnected(until);
}

// A redial waits at most `wait` (TalosApiOptions::redial_wait), and at most
// half the call's time: a node on the LAN that is back answers a dial and TLS
// handshake well within it, one that is slower is connected by the next poll
// (the dial goes on), and a node that is still down costs each poll of it no
// more than that.
std::chrono::system_clock::time_point RedialUntil(std::chrono::system_clock::time_point deadline,
                                                  std::chrono::milliseconds wait) {
  auto now = std::chrono::system_clock::now();
  return now + std::min<std::chrono::system_clock::duration>((deadline - now) / 2, wait);
}

}  // namespace

std::shared_ptr<grpc::Channel> TalosApiClient::ChannelFor(
    const std::string& target, std::chrono::system_clock::time_point redial_until) {
  std::shared_ptr<grpc::Channel> channel;
  {
    std::lock_guard lock(mu_);
    auto it = channels_.find(target);
    if (it != channels_.end()) {
      channel = it->second;
    }
  }
  if (channel) {
    RedialIfFailed(*channel, redial_until);
    return channel;
  }
  std::lock_guard lock(mu_);
  if (auto it = channels_.find(target); it != channels_.end()) {
    return it->second;  // another call made it meanwhile
  }
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = credentials_.ca_pem;
  ssl.pem_cert_chain = credentials_.crt_pem;
  ssl.pem_private_key = credentials_.key_pem;
  grpc::ChannelArguments args;
  // Talos server certificates carry the node's IPs as SANs: check the
  // certificate against the host we dial, whatever the channel's authority.
  args.SetSslTargetNameOverride(HostOf(target));
  // A node that is down (rebooting) is dialled again 1 to 4 s apart in the
  // background, not after gRPC's default backoff of up to two minutes; a call
  // in between dials at once (RedialIfFailed). gRPC calls the connect timeout
  // (dial and TLS handshake) "min reconnect backoff".
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 1000);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 4000);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 2000);
  // Our callers retry (the next poll); gRPC's retry layer only costs each call.
  args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);
  channel = grpc::CreateCustomChannel(GrpcTargetOf(target), grpc::SslCredentials(ssl), args);
  channels_[target] = channel;
  return channel;
}

void TalosApiClient::ForgetChannel(const std::string& target) {
  std::lock_guard lock(mu_);
  channels_.erase(target);
}

Error TalosApiClient::Failure(const Call& call, int grpc_code, const std::string& grpc_message) {
  grpc::Status status(static_cast<grpc::StatusCode>(grpc_code), grpc_message);
  Error error = call.FromStatus(status);
  if (error.code == ErrorCode::kUnavailable &&
      status.error_code() == grpc::StatusCode::UNAVAILABLE &&
      Lower(grpc_message).find("connection refused") == std::string::npos) {
    // Under TLS 1.3 a node that refuses our client certificate looks like a
    // closed socket to gRPC: ask the TLS layer what happened.
    auto probe_timeout =
        std::min<std::chrono::milliseconds>(call.deadline, std::chrono::seconds(2));
    Logger("talos-api")
        ->debug("probing TLS node={} call={} after: {}", call.target, call.name, grpc_message);
    if (auto refusal = DiagnoseTlsRefusal(call.target, credentials_, probe_timeout)) {
      error = call.Fail(ErrorCode::kUnauthorized, "TLS handshake failed: " + *refusal);
    }
  }
  // A node that refused our certificate gets a fresh channel. An unavailable
  // one (rebooting) keeps its channel, which the next call redials
  // (ChannelFor): a new channel builds a new TLS context, parsing our key and
  // certificates again (gRPC 1.51 does that per channel), and during a
  // rollout that cost more than all the polls themselves.
  if (error.code == ErrorCode::kUnauthorized) {
    ForgetChannel(call.target);
  }
  return error;
}

template <class Response, class Fn>
Result<Response> TalosApiClient::Unary(const std::string& node, const char* name, Fn&& invoke) {
  auto target = TalosApiTarget(node);
  if (!target) {
    return std::unexpected(target.error().Wrap(std::string("Talos API ") + name));
  }
  Call call{*target, name, options_.deadline};
  auto deadline = std::chrono::system_clock::now() + options_.deadline;
  auto stub = machine::MachineService::NewStub(
      ChannelFor(*target, RedialUntil(deadline, options_.redial_wait)));
  grpc::ClientContext context;
  context.set_deadline(deadline);
  Response response;
  auto start = std::chrono::steady_clock::now();
  grpc::Status status = invoke(*stub, &context, &response);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                  start)
                .count();
  if (!status.ok()) {
    Logger("talos-api")
        ->debug("call failed node={} call={} ms={} code={}", *target, name, ms,
                CodeName(status.error_code()));
    return std::unexpected(
        Failure(call, static_cast<int>(status.error_code()), status.error_message()));
  }
  Logger("talos-api")->debug("call node={} call={} ms={}", *target, name, ms);
  return response;
}

Result<NodeVersion> TalosApiClient::Version(const std::string& node) {
  auto r = Unary<machine::VersionResponse>(
      node, "Version", [](auto& stub, grpc::ClientContext* ctx, machine::VersionResponse* out) {
        return stub.Version(ctx, google::protobuf::Empty(), out);
      });
  if (!r) {
    return std::unexpected(r.error());
  }
  auto item = Call{*TalosApiTarget(node), "Version", options_.deadline}.First(*r);
  if (!item) {
    return std::unexpected(item.error());
  }
  NodeVersion v;
  v.tag = (*item)->version().tag();
  v.sha = (*item)->version().sha();
  v.arch = (*item)->version().arch();
  v.platform = (*item)->platform().name();
  return v;
}

Result<std::vector<ServiceStatus>> TalosApiClient::Services(const std::string& node) {
  auto r = Unary<machine::ServiceListResponse>(
      node, "ServiceList",
      [](auto& stub, grpc::ClientContext* ctx, machine::ServiceListResponse* out) {
        return stub.ServiceList(ctx, google::protobuf::Empty(), out);
      });
  if (!r) {
    return std::unexpected(r.error());
  }
  auto item = Call{*TalosApiTarget(node), "ServiceList", options_.deadline}.First(*r);
  if (!item) {
    return std::unexpected(item.error());
  }
  std::vector<ServiceStatus> out;
  for (const auto& s : (*item)->services()) {
    ServiceStatus st;
    st.id = s.id();
    st.state = s.state();
    st.healthy = s.health().healthy();
    st.health_unknown = !s.has_health() || s.health().unknown();
    st.last_message = s.health().last_message();
    out.push_back(std::move(st));
  }
  return out;
}

Result<std::vector<EtcdMember>> TalosApiClient::EtcdMembers(const std::string& node) {
  auto r = Unary<machine::EtcdMemberListResponse>(
      node, "EtcdMemberList",
      [](auto& stub, grpc::ClientContext* ctx, machine::EtcdMemberListResponse* out) {
        machine::EtcdMemberListRequest req;
        req.set_query_local(false);
        return stub.EtcdMemberList(ctx, req, out);
      });
  if (!r) {
    return std::unexpected(r.error());
  }
  auto item = Call{*TalosApiTarget(node), "EtcdMemberList", options_.deadline}.First(*r);
  if (!item) {
    return std::unexpected(item.error());
  }
  std::vector<EtcdMember> out;
  for (const auto& m : (*item)->members()) {
    EtcdMember em;
    em.id = m.id();
    em.hostname = m.hostname();
    em.peer_urls.assign(m.peer_urls().begin(), m.peer_urls().end());
    em.client_urls.assign(m.client_urls().begin(), m.client_urls().end());
    em.is_learner = m.is_learner();
    out.push_back(std::move(em));
  }
  return out;
}

Result<EtcdMemberStatus> TalosApiClient::EtcdStatus(const std::string& node) {
  auto r = Unary<machine::EtcdStatusResponse>(
      node, "EtcdStatus",
      [](auto& stub, grpc::ClientContext* ctx, machine::EtcdStatusResponse* out) {
        return stub.EtcdStatus(ctx, google::protobuf::Empty(), out);
      });
  if (!r) {
    return std::unexpected(r.error());
  }
  auto item = Call{*TalosApiTarget(node), "EtcdStatus", options_.deadline}.First(*r);
  if (!item) {
    return std::unexpected(item.error());
  }
  const auto& s = (*item)->member_status();
  EtcdMemberStatus st;
  st.member_id = s.member_id();
  st.leader = s.leader();
  st.raft_index = s.raft_index();
  st.raft_term = s.raft_term();
  st.errors.assign(s.errors().begin(), s.errors().end());
  st.is_learner = s.is_learner();
  return st;
}

Result<void> TalosApiClient::Reboot(const std::string& node, RebootMode mode) {
  auto r = Unary<machine::RebootResponse>(
      node, "Reboot", [mode](auto& stub, grpc::ClientContext* ctx, machine::RebootResponse* out) {
        machine::RebootRequest req;
        req.set_mode(static_cast<machine::RebootRequest::Mode>(static_cast<int>(mode)));
        return stub.Reboot(ctx, req, out);
      });
  if (!r) {
    return std::unexpected(r.error());
  }
  // An empty reply is success too: a node that reboots may answer with no
  // per-node message.
  if (r->messages_size() > 0) {
    if (auto item = Call{*TalosApiTarget(node), "Reboot", options_.deadline}.First(*r); !item) {
      return std::unexpected(item.error());
    }
  }
  return {};
}

Result<void> TalosApiClient::Upgrade(const std::string& node, const std::string& image,
                                     bool preserve) {
  if (image.empty()) {
    return Fail(ErrorCode::kInvalid, "Talos API " + node +
                                         " Upgrade: no installer image (want e.g. "
                                         "ghcr.io/siderolabs/installer:v1.11.3)");
  }
  auto r = Unary<machine::UpgradeResponse>(
      node, "Upgrade", [&](auto& stub, grpc::ClientContext* ctx, machine::UpgradeResponse* out) {
        machine::UpgradeRequest req;
        req.set_image(image);
        req.set_preserve(preserve);
        return stub.Upgrade(ctx, req, out);
      });
  if (!r) {
    return std::unexpected(r.error());
  }
  if (auto item = Call{*TalosApiTarget(node), "Upgrade", options_.deadline}.First(*r); !item) {
    return std::unexpected(item.error());
  }
  return {};
}

Result<void> TalosApiClient::Bootstrap(const std::string& node) {
  auto r = Unary<machine::BootstrapResponse>(
      node, "Bootstrap", [](auto& stub, grpc::ClientContext* ctx, machine::BootstrapResponse* out) {
        machine::BootstrapRequest req;
        return stub.Bootstrap(ctx, req, out);
      });
  if (!r) {
    return std::unexpected(r.error());
  }
  if (r->messages_size() > 0) {
    if (auto item = Call{*TalosApiTarget(node), "Bootstrap", options_.deadline}.First(*r); !item) {
      return std::unexpected(item.error());
    }
  }
  return {};
}

Result<std::string> TalosApiClient::Kubeconfig(const std::string& node) {
  auto target = TalosApiTarget(node);
  if (!target) {
    return std::unexpected(target.error().Wrap("Talos API Kubeconfig"));
  }
  Call call{*target, "Kubeconfig", options_.deadline};
  auto deadline = std::chrono::system_clock::now() + options_.deadline;
  auto stub = machine::MachineService::NewStub(
      ChannelFor(*target, RedialUntil(deadline, options_.redial_wait)));
  grpc::ClientContext context;
  context.set_deadline(deadline);
  auto reader = stub->Kubeconfig(&context, google::protobuf::Empty());
  std::string archive;
  common::Data chunk;
  std::optional<Error> failure;
  while (reader->Read(&chunk)) {
    if (failure) {
      continue;  // drain so Finish() returns
    }
    if (chunk.has_metadata() && !chunk.metadata().error().empty()) {
      failure =
          call.Fail(ErrorCode::kInvalid, "the node reported an error: " + chunk.metadata().error());
      context.TryCancel();
      continue;
    }
    archive += chunk.bytes();
    if (archive.size() > kMaxKubeconfigStreamBytes) {
      failure =
          call.Fail(ErrorCode::kInvalid, "the kubeconfig stream exceeds " +
                                             std::to_string(kMaxKubeconfigStreamBytes) + " bytes");
      context.TryCancel();
    }
  }
  grpc::Status status = reader->Finish();
  if (failure) {
    return std::unexpected(*failure);
  }
  if (!status.ok()) {
    return std::unexpected(
        Failure(call, static_cast<int>(status.error_code()), status.error_message()));
  }
  auto kubeconfig = ExtractSingleFileTarGz(archive, call.Prefix() + ": kubeconfig archive");
  if (!kubeconfig) {
    return std::unexpected(kubeconfig.error());
  }
  Logger("talos-api")
      ->debug("call node={} call=Kubeconfig archive_bytes={}", *target, archive.size());
  return kubeconfig;
}

}  // namespace ironboot::talos
