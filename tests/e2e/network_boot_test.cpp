// End-to-end network boot: QEMU's iPXE NIC ROM boots from `ironboot serve`
// (Matchbox mode and GitOps mode) over QEMU user networking, into a busybox
// stand-in for Talos that fetches its machine config and reports on the serial
// console. TCG only (no KVM), so this runs on any CI machine; each boot takes
// about 10 s (virtio-net) or 16 s (e1000).
#include <gtest/gtest.h>

#include <iostream>

#include "tests/e2e/e2e_util.h"

namespace ironboot::e2e {
namespace {

namespace fs = std::filesystem;
using testutil::HttpGet;
using testutil::WriteFile;

constexpr char kMac1[] = "52:54:00:12:34:56";
constexpr char kMac2[] = "52:54:00:12:34:57";
constexpr char kUnknownMac[] = "52:54:00:99:99:99";
constexpr char kGenericTemplate[] =
    "version: v1alpha1\nmachine:\n  network:\n    hostname: {{.hostname}}\n";
// A hang guard, not the expected time: a boot needs ~7 s of CPU, but on a
// loaded 2-core machine TCG guests have been seen to take 90 s of wall time.
constexpr auto kBootTimeout = std::chrono::seconds(200);

// The marker the stand-in prints for the Matchbox profile's config of `group`.
std::string MatchboxMarker(const std::string& mac, const std::string& group) {
  size_t bytes =
      std::string(kGenericTemplate).size() - std::string("{{.hostname}}").size() + group.size();
  return "IRONBOOT-E2E: config ok build=release-a mac=" + mac + " hostname=" + group +
         " bytes=" + std::to_string(bytes);
}

std::string Hyphens(std::string mac) {
  for (char& c : mac) {
    if (c == ':') {
      c = '-';
    }
  }
  return mac;
}

// Index of the first line at or after `from` whose target starts with `prefix`
// (-1 when there is none).
int Find(const std::vector<AccessLine>& lines, const std::string& prefix, int from = 0) {
  for (int i = from; i < static_cast<int>(lines.size()); ++i) {
    if (lines[i].target.rfind(prefix, 0) == 0) {
      return i;
    }
  }
  return -1;
}

// Asserts the boot chain: each target prefix requested in this order, all 200;
// the /ipxe request selected `group`. Returns a description of what went wrong.
std::string CheckChain(const std::vector<AccessLine>& lines, const std::vector<std::string>& chain,
                       const std::string& group) {
  int at = 0;
  for (const auto& prefix : chain) {
    int i = Find(lines, prefix, at);
    if (i < 0) {
      return "no request for " + prefix + " after line " + std::to_string(at);
    }
    if (lines[i].status != 200) {
      return lines[i].target + " answered " + std::to_string(lines[i].status);
    }
    if (prefix.rfind("/ipxe", 0) == 0 && lines[i].group != group) {
      return "/ipxe selected group \"" + lines[i].group + "\", want \"" + group + "\"";
    }
    at = i + 1;
  }
  return "";
}

std::string Dump(const std::string& log, const GuestResult& guest) {
  std::string tail =
      guest.serial.size() > 3000 ? guest.serial.substr(guest.serial.size() - 3000) : guest.serial;
  return "--- ironboot log ---\n" + log + "--- serial (tail) ---\n" + tail + "\n--- qemu ---\n" +
         guest.qemu_output;
}

void Report(const std::string& what, const GuestResult& guest) {
  std::cout << "[ e2e      ] " << what << ": " << guest.seconds << " s"
            << (guest.exited ? "" : " (killed)") << "\n";
}

class NetworkBootTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    skip_reason_ = new std::string(QemuUnavailableReason());
    if (!skip_reason_->empty()) {
      return;
    }
    std::string error;
    for (const char* marker : {"release-a", "release-b"}) {
      auto built =
          BuildRelease(fs::path(IRONBOOT_E2E_CACHE_DIR) / "releases" / marker, marker, error);
      if (!built) {
        build_error_ = new std::string(error);
        return;
      }
      releases_.push_back(*built);
    }
  }
  static void TearDownTestSuite() {
    delete skip_reason_;
    skip_reason_ = nullptr;
    delete build_error_;
    build_error_ = nullptr;
    releases_.clear();
  }
  void SetUp() override {
    if (!skip_reason_->empty()) {
      GTEST_SKIP() << "QEMU unavailable: " << *skip_reason_;
    }
    ASSERT_EQ(build_error_, nullptr) << *build_error_;
    ASSERT_EQ(releases_.size(), 2u);
  }
  const StandInRelease& release(int i) { return releases_[i]; }

  // A Matchbox data dir: groups m1 (kMac1) and m2 (kMac2) on profile "standin",
  // which boots release-a from /assets and points talos.config at /generic on
  // the server at `port`.
  void WriteMatchboxDataDir(const fs::path& data, int port) {
    fs::create_directories(data / "assets");
    fs::copy_file(release(0).kernel, data / "assets/vmlinuz");
    fs::copy_file(release(0).initramfs, data / "assets/initramfs.img");
    for (auto [id, mac] : {std::pair{"m1", kMac1}, std::pair{"m2", kMac2}}) {
      WriteFile(data / "groups" / (std::string(id) + ".json"),
                std::string(R"({"id":")") + id + R"(","profile":"standin","selector":{"mac":")" +
                    mac + R"("},"metadata":{"hostname":")" + id + R"("}})");
    }
    std::string profile = R"({
  "id": "standin",
  "generic_id": "machine.yaml",
  "boot": {
    "kernel": "/assets/vmlinuz",
    "initrd": ["/assets/initramfs.img"],
    "args": ["console=ttyS0", "loglevel=3",
             "talos.config=http://10.0.2.2:PORT/generic?mac=${mac:hexhyp}"]
  }
})";
    profile.replace(profile.find("PORT"), 4, std::to_string(port));
    WriteFile(data / "profiles/standin.json", profile);
    WriteFile(data / "generic/machine.yaml", kGenericTemplate);
  }

  // A cluster repo (git, one commit) for GitOps mode: Machine cp1 (kMac1), the
  // Cluster on v1.11.3 (release-a) and a second TalosRelease v1.11.4 (release-b),
  // both served from file:// URLs with their sha512; bootServerURL is the host
  // as the guest sees it.
  void WriteClusterRepo(const fs::path& repo, int port) {
    const fs::path examples = fs::path(IRONBOOT_SOURCE_DIR) / "examples/homelab";
    fs::create_directories(repo / "machines");
    fs::copy_file(examples / "controlplane.yaml", repo / "controlplane.yaml");
    fs::copy_file(examples / "worker.yaml", repo / "worker.yaml");
    std::string cluster = R"(apiVersion: ironboot.dev/v1alpha1
kind: Cluster
metadata:
  name: e2e
spec:
  controlPlaneEndpoint: https://10.0.4.100:6443
  talosVersion: v1.11.3
  bootServerURL: http://10.0.2.2:)" +
                          std::to_string(port) + R"(
  subnet: 10.0.4.0/24
  kernelArgs: [console=ttyS0, loglevel=3]
  # The control plane's address must be in certSANs (configs are validated).
  patches:
    all:
      - machine:
          certSANs: [10.0.4.100, 10.0.4.101]
)";
    for (int i = 0; i < 2; ++i) {
      const auto& r = release(i);
      cluster += "---\napiVersion: ironboot.dev/v1alpha1\nkind: TalosRelease\nmetadata:\n  name: " +
                 r.marker + "\nspec:\n  version: v1.11." + std::to_string(3 + i) +
                 "\n  kernel:\n    url: file://" + r.kernel.string() +
                 "\n    sha512: " + r.kernel_sha512 + "\n  initramfs:\n    url: file://" +
                 r.initramfs.string() + "\n    sha512: " + r.initramfs_sha512 + "\n";
    }
    WriteFile(repo / "cluster.yaml", cluster);
    WriteMachine(repo, "");
    Git(repo, {"init", "-q", "-b", "main"});
    Git(repo, {"add", "."});
    Git(repo, {"commit", "-q", "-m", "e2e cluster"});
  }
  // cp1 has no static address: QEMU's user network shows the guest to the
  // server as 127.0.0.1, and /config serves a machine with a static address
  // at that address only. Without one, its iPXE fetch grants 127.0.0.1.
  static void WriteMachine(const fs::path& repo, const std::string& extra) {
    WriteFile(repo / "machines/cp1.yaml", std::string(R"(apiVersion: ironboot.dev/v1alpha1
kind: Machine
metadata:
  name: cp1
spec:
  role: controlplane
  mac: )") + kMac1 + R"(
  kernelArgs: [ironboot.e2e.hostname=cp1]
)" + extra);
  }
  static void Git(const fs::path& repo, std::vector<std::string> args) {
    std::vector<std::string> argv = {"git", "-c", "user.name=e2e", "-c",
                                     "user.email=e2e@example.com"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = testutil::Run(argv, repo);
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }

  // Starts ironboot in GitOps mode on the repo and waits until cp1's iPXE script
  // is served. The caller owns `repo` and `state`. These probes show in the
  // access log and metrics as "/ipxe?mac=..."; iPXE's own requests start with
  // "/ipxe?uuid=" (the Matchbox chain script), which is how tests tell them apart.
  std::unique_ptr<Ironboot> StartGitOps(const fs::path& repo, const fs::path& state) {
    int port = testutil::FreePort();
    WriteClusterRepo(repo, port);
    auto server = std::make_unique<Ironboot>(
        std::vector<std::string>{"-repo", "file://" + repo.string(), "-state-dir", state.string(),
                                 "-interval", "1s"},
        port);
    EXPECT_TRUE(server->ready()) << server->Log();
    EXPECT_TRUE(testutil::WaitFor(
        [&] { return HttpGet(port, "/ipxe?mac=" + Hyphens(kMac1)).status == 200; },
        std::chrono::seconds(30)))
        << server->Log();
    return server;
  }

  static std::string* skip_reason_;
  static std::string* build_error_;
  static std::vector<StandInRelease> releases_;
};

std::string* NetworkBootTest::skip_reason_ = nullptr;
std::string* NetworkBootTest::build_error_ = nullptr;
std::vector<StandInRelease> NetworkBootTest::releases_;

// Matchbox mode, virtio-net: the guest chains /boot.ipxe -> /ipxe with its MAC
// (group m1) -> kernel -> initramfs -> its /generic config, all 200, and the
// stand-in reports the config rendered for m1.
TEST_F(NetworkBootTest, MatchboxVirtioGuestBootsItsProfile) {
  testutil::TempDir data;
  int port = testutil::FreePort();
  WriteMatchboxDataDir(data.path(), port);
  Ironboot server({"-data-path", data.path().string()}, port);
  ASSERT_TRUE(server.ready()) << server.Log();

  auto guest = BootGuest(port, Nic::kVirtio, kMac1, kBootTimeout);
  Report("matchbox virtio-net boot", guest);
  const std::string log = server.Log();
  EXPECT_TRUE(guest.exited) << Dump(log, guest);
  EXPECT_EQ(MarkerLine(guest.serial), MatchboxMarker(kMac1, "m1")) << Dump(log, guest);
  auto lines = ParseAccessLog(log);
  EXPECT_EQ(CheckChain(lines,
                       {"/boot.ipxe", "/ipxe?uuid=", "/assets/vmlinuz", "/assets/initramfs.img",
                        "/generic?mac=52-54-00-12-34-56"},
                       "m1"),
            "")
      << log;
  int ipxe = Find(lines, "/ipxe?uuid=");
  ASSERT_GE(ipxe, 0);
  EXPECT_NE(lines[ipxe].target.find("mac=52-54-00-12-34-56"), std::string::npos) << lines[ipxe].raw;
  for (const auto& line : lines) {
    EXPECT_EQ(line.status, 200) << line.raw;
  }
  EXPECT_GE(server.Metric("ironboot_boot_selections_total", {"group=\"m1\""}), 1) << log;
  EXPECT_EQ(server.Metric("ironboot_boot_selections_total", {"group=\"m2\""}), 0) << log;
  EXPECT_GE(server.Metric("ironboot_http_requests_total", {"handler=\"ipxe\"", "code=\"200\""}), 1);
}

// Matchbox mode, e1000 NIC (its own iPXE ROM and Linux driver): the second
// group's MAC selects m2 and the guest gets m2's config.
TEST_F(NetworkBootTest, MatchboxE1000GuestBootsItsProfile) {
  testutil::TempDir data;
  int port = testutil::FreePort();
  WriteMatchboxDataDir(data.path(), port);
  Ironboot server({"-data-path", data.path().string()}, port);
  ASSERT_TRUE(server.ready()) << server.Log();

  auto guest = BootGuest(port, Nic::kE1000, kMac2, kBootTimeout);
  Report("matchbox e1000 boot", guest);
  const std::string log = server.Log();
  EXPECT_TRUE(guest.exited) << Dump(log, guest);
  EXPECT_EQ(MarkerLine(guest.serial), MatchboxMarker(kMac2, "m2")) << Dump(log, guest);
  EXPECT_EQ(CheckChain(ParseAccessLog(log),
                       {"/boot.ipxe", "/ipxe?uuid=", "/assets/vmlinuz", "/assets/initramfs.img",
                        "/generic?mac=52-54-00-12-34-57"},
                       "m2"),
            "")
      << log;
  EXPECT_GE(server.Metric("ironboot_boot_selections_total", {"group=\"m2\""}), 1) << log;
}

// GitOps mode: the Machine's guest boots its release (v1.11.3 = release-a) and
// gets its own config from /config; after a commit pins the machine to v1.11.4,
// a reboot serves release-b's kernel and initramfs and the new initramfs runs.
TEST_F(NetworkBootTest, GitOpsMachineBootsItsReleaseAndTheNextAfterACommit) {
  testutil::TempDir repo, state;
  auto server = StartGitOps(repo.path(), state.path());
  ASSERT_FALSE(HasFailure());
  const int port = server->port();
  const std::string mac = Hyphens(kMac1);

  auto first = BootGuest(port, Nic::kVirtio, kMac1, kBootTimeout);
  Report("gitops virtio-net boot, release v1.11.3", first);
  std::string log = server->Log();
  EXPECT_TRUE(first.exited) << Dump(log, first);
  std::string marker = MarkerLine(first.serial);
  EXPECT_EQ(
      marker.rfind(
          "IRONBOOT-E2E: config ok build=release-a mac=52:54:00:12:34:56 hostname=cp1 bytes=", 0),
      0)
      << Dump(log, first);
  auto lines = ParseAccessLog(log);
  EXPECT_EQ(CheckChain(lines,
                       {"/boot.ipxe", "/ipxe?uuid=", "/assets/talos/1.11.3/amd64/vmlinuz",
                        "/assets/talos/1.11.3/amd64/initramfs.xz", "/config?mac=" + mac},
                       "cp1"),
            "")
      << log;
  const size_t first_boot_lines = lines.size();

  WriteMachine(repo.path(), "  talosVersion: v1.11.4\n");
  Git(repo.path(), {"commit", "-q", "-am", "cp1: v1.11.4"});
  ASSERT_TRUE(testutil::WaitFor(
      [&] {
        return HttpGet(port, "/ipxe?mac=" + mac).body.find("/assets/talos/1.11.4/") !=
               std::string::npos;
      },
      std::chrono::seconds(30)))
      << server->Log();

  const double selections = server->Metric("ironboot_boot_selections_total", {"group=\"cp1\""});
  auto second = BootGuest(port, Nic::kVirtio, kMac1, kBootTimeout);
  Report("gitops virtio-net boot, release v1.11.4", second);
  log = server->Log();
  EXPECT_TRUE(second.exited) << Dump(log, second);
  marker = MarkerLine(second.serial);
  EXPECT_EQ(
      marker.rfind(
          "IRONBOOT-E2E: config ok build=release-b mac=52:54:00:12:34:56 hostname=cp1 bytes=", 0),
      0)
      << Dump(log, second);
  lines = ParseAccessLog(log);
  std::vector<AccessLine> after(lines.begin() + std::min(first_boot_lines, lines.size()),
                                lines.end());
  EXPECT_EQ(CheckChain(after,
                       {"/boot.ipxe", "/ipxe?uuid=", "/assets/talos/1.11.4/amd64/vmlinuz",
                        "/assets/talos/1.11.4/amd64/initramfs.xz", "/config?mac=" + mac},
                       "cp1"),
            "")
      << log;
  EXPECT_EQ(Find(after, "/assets/talos/1.11.3/"), -1) << log;
  EXPECT_GE(server->Metric("ironboot_boot_selections_total", {"group=\"cp1\""}), selections + 1)
      << log;
}

// GitOps mode: a guest whose MAC is no Machine gets 404 on /ipxe, so iPXE has
// nothing to boot: no kernel, no /config request, no marker on the console.
TEST_F(NetworkBootTest, GitOpsUnknownMacGetsNoConfig) {
  testutil::TempDir repo, state;
  auto server = StartGitOps(repo.path(), state.path());
  ASSERT_FALSE(HasFailure());
  const std::string mac = Hyphens(kUnknownMac);
  const std::string ipxe_target = "/ipxe?uuid=";  // iPXE's request, not the test's probe
  const double selections = server->Metric("ironboot_boot_selections_total", {"group=\"cp1\""});

  // SeaBIOS prints this once iPXE has given up and no other device boots.
  auto guest = BootGuest(server->port(), Nic::kVirtio, kUnknownMac, std::chrono::seconds(120),
                         Firmware::kBios, [](const std::string& serial) {
                           return serial.find("No bootable device") != std::string::npos;
                         });
  Report("gitops unknown MAC until the BIOS gave up", guest);
  EXPECT_NE(guest.serial.find("Could not boot image"), std::string::npos) << guest.serial;
  const std::string log = server->Log();
  auto lines = ParseAccessLog(log);
  int ipxe = Find(lines, ipxe_target);
  ASSERT_GE(ipxe, 0) << Dump(log, guest);
  EXPECT_NE(lines[ipxe].target.find("mac=" + mac), std::string::npos) << lines[ipxe].raw;
  EXPECT_EQ(lines[ipxe].status, 404) << lines[ipxe].raw;
  EXPECT_EQ(lines[ipxe].group, "") << lines[ipxe].raw;
  EXPECT_EQ(Find(lines, "/assets/"), -1) << log;
  EXPECT_EQ(Find(lines, "/config"), -1) << log;
  EXPECT_EQ(MarkerLine(guest.serial), "") << guest.serial;
  EXPECT_GE(server->Metric("ironboot_http_requests_total", {"handler=\"ipxe\"", "code=\"404\""}), 1)
      << log;
  EXPECT_EQ(server->Metric("ironboot_boot_selections_total", {"group=\"cp1\""}), selections) << log;
  // A MAC without a machine config is refused like any other /config refusal.
  EXPECT_EQ(HttpGet(server->port(), "/config?mac=" + mac).status, 403);
}

// GitOps mode under UEFI (OVMF + the NIC ROM's EFI iPXE): iPXE asks for
// arch=x86_64, the kernel's EFI stub finds the initramfs by the profile's
// `initrd=initramfs.xz` argument, and the guest gets its config.
TEST_F(NetworkBootTest, GitOpsUefiGuestBootsThroughTheEfiStub) {
  if (!fs::exists(kOvmf)) {
    GTEST_SKIP() << kOvmf << " missing (install ovmf: scripts/install-deps.sh)";
  }
  testutil::TempDir repo, state;
  auto server = StartGitOps(repo.path(), state.path());
  ASSERT_FALSE(HasFailure());

  auto guest = BootGuest(server->port(), Nic::kVirtio, kMac1, kBootTimeout, Firmware::kUefi);
  Report("gitops UEFI virtio-net boot", guest);
  const std::string log = server->Log();
  EXPECT_TRUE(guest.exited) << Dump(log, guest);
  EXPECT_EQ(
      MarkerLine(guest.serial)
          .rfind(
              "IRONBOOT-E2E: config ok build=release-a mac=52:54:00:12:34:56 hostname=cp1 bytes=",
              0),
      0)
      << Dump(log, guest);
  auto lines = ParseAccessLog(log);
  EXPECT_EQ(CheckChain(lines,
                       {"/boot.ipxe", "/ipxe?uuid=", "/assets/talos/1.11.3/amd64/vmlinuz",
                        "/assets/talos/1.11.3/amd64/initramfs.xz", "/config?mac=" + Hyphens(kMac1)},
                       "cp1"),
            "")
      << log;
  int ipxe = Find(lines, "/ipxe?uuid=");
  ASSERT_GE(ipxe, 0);
  EXPECT_NE(lines[ipxe].target.find("arch=x86_64"), std::string::npos) << lines[ipxe].raw;
}

// make_initramfs.sh refuses a marker that would break /init or a path, and
// wrong arguments, saying what it expects (runs without QEMU).
TEST(MakeInitramfsTest, RejectsBadArguments) {
  const std::string script = std::string(IRONBOOT_SOURCE_DIR) + "/tests/e2e/make_initramfs.sh";
  testutil::TempDir dir;
  auto bad = testutil::Run({script, (dir / "cache").string(), (dir / "out").string(), "a b;$(x)"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.output.find("BUILD_MARKER \"a b;$(x)\" must match [A-Za-z0-9._-]+"),
            std::string::npos)
      << bad.output;
  auto usage = testutil::Run({script, (dir / "cache").string()});
  EXPECT_EQ(usage.exit_code, 2);
  EXPECT_NE(usage.output.find("usage: "), std::string::npos) << usage.output;
  EXPECT_NE(usage.output.find("CACHE_DIR OUT_DIR BUILD_MARKER"), std::string::npos) << usage.output;
  EXPECT_FALSE(fs::exists(dir / "out"));
}

}  // namespace
}  // namespace ironboot::e2e
