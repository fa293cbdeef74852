#pragma once
// talos/: TalosApiClient, the NodeClient that speaks to a machine's apid over
// gRPC with mutual TLS (FACTS.md "Talos API"): the server is verified against
// the cluster's os CA, we present a client certificate the os CA signed
// (os:admin), each call has a deadline, one channel per node is cached.

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "talos/node_client.h"

namespace grpc {
class Channel;
}

namespace ironboot::talos {

// What a talosconfig context carries: PEM text (never logged, never in errors).
struct TalosCredentials {
  std::string ca_pem;   // the os CA: server certificates are verified against it
  std::string crt_pem;  // our client certificate
  std::string key_pem;  // its key (Talos's "ED25519 PRIVATE KEY" spelling accepted)
};

// Reads ca/crt/key (base64 PEM) of `context` (empty: the file's `context:`)
// from a talosconfig as talosctl and `ironboot talosconfig` write it. Errors
// (kInvalid; kNotFound for a missing file) name the file, the context and the
// field, never a value.
Result<TalosCredentials> ParseTalosconfigCredentials(std::string_view yaml, std::string_view source,
                                                     const std::string& context = "");
Result<TalosCredentials> LoadTalosconfigCredentials(const std::string& path,
                                                    const std::string& context = "");

// "10.0.4.101" -> "10.0.4.101:50000"; "host:port" and "[v6]:port" as given;
// a bare IPv6 address gets brackets and the port. kInvalid on an empty node
// or a bad port.
Result<std::string> TalosApiTarget(const std::string& node);

struct TalosApiOptions {
  std::chrono::milliseconds deadline{std::chrono::seconds(5)};  // per call
  // A call to a node whose last dial failed dials again and waits this long
  // (at most half the deadline) for it before calling.
  std::chrono::milliseconds redial_wait{250};
};

class TalosApiClient final : public NodeClient {
 public:
  // Checks that the PEMs parse (kInvalid naming the field otherwise).
  static Result<std::unique_ptr<TalosApiClient>> Create(TalosCredentials credentials,
                                                        TalosApiOptions options = {});
  ~TalosApiClient() override;

  Result<NodeVersion> Version(const std::string& node) override;
  Result<std::vector<ServiceStatus>> Services(const std::string& node) override;
  Result<std::vector<EtcdMember>> EtcdMembers(const std::string& node) override;
  Result<EtcdMemberStatus> EtcdStatus(const std::string& node) override;
  Result<void> Reboot(const std::string& node, RebootMode mode) override;
  Result<void> Upgrade(const std::string& node, const std::string& image, bool preserve) override;
  Result<void> Bootstrap(const std::string& node) override;
  Result<std::string> Kubeconfig(const std::string& node) override;

  const TalosApiOptions& options() const { return options_; }

 private:
  struct Call;  // one call to one node (api_client.cpp)
  // The error for a failed call (gRPC status code and message); probes the
  // TLS layer when gRPC only saw a closed socket. Drops the channel when the
  // node refused our certificate.
  Error Failure(const Call& call, int grpc_code, const std::string& grpc_message);
  // One unary call: target, deadline, status mapping (api_client.cpp only).
  template <class Response, class Fn>
  Result<Response> Unary(const std::string& node, const char* name, Fn&& invoke);
  TalosApiClient(TalosCredentials credentials, TalosApiOptions options);
  // The cached channel to `target` ("host:port"), created on first use. One
  // whose last dial failed (the node was rebooting) dials again now, and is
  // given until `redial_until` to connect: a call means "is it back?", and
  // the answer should not wait out gRPC's reconnect backoff.
  std::shared_ptr<grpc::Channel> ChannelFor(const std::string& target,
                                            std::chrono::system_clock::time_point redial_until);
  // Drops a channel after the node refused our certificate.
  void ForgetChannel(const std::string& target);

  TalosCredentials credentials_;
  TalosApiOptions options_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<grpc::Channel>> channels_;
};

}  // namespace ironboot::talos
