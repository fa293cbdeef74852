// The TFTP server against real Debian clients (tftp-hpa's tftp, atftp) and a
// raw UDP socket for what no client does on purpose (stop acknowledging,
// flood the transfer cap, malformed requests).

#include "bootserver/tftp_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <random>
#include <sstream>

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>

#include "common/log.h"
#include "tests/testutil/testutil.h"

namespace ironboot::bootserver {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testutil::ReadFile;
using testutil::WaitFor;
using testutil::WriteFile;

std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string out(n, '\0');
  for (auto& c : out) {
    c = static_cast<char>(rng() & 0xff);
  }
  return out;
}

// A UDP socket on 127.0.0.1 (or another loopback address: another client host) that
// speaks raw TFTP.
class RawClient {
 public:
  explicit RawClient(const char* address = "127.0.0.1") {
    fd_ = ::socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    ::inet_pton(AF_INET, address, &addr.sin_addr);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  }
  ~RawClient() { ::close(fd_); }

  void SendTo(uint16_t port, const std::vector<uint8_t>& packet) {
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    to.sin_port = htons(port);
    ::sendto(fd_, packet.data(), packet.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
  }

  struct Received {
    TftpPacket packet;
    uint16_t from_port;
    size_t bytes;  // the datagram's size
  };
  // The next datagram within `timeout`, decoded; nullopt if none came.
  std::optional<Received> Receive(std::chrono::milliseconds timeout) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) {
      return std::nullopt;
    }
    std::vector<uint8_t> buf(65536);
    sockaddr_in from{};
    socklen_t len = sizeof from;
    ssize_t n =
        ::recvfrom(fd_, buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&from), &len);
    if (n < 0) {
      return std::nullopt;
    }
    auto parsed = ParseTftpPacket(std::span(buf.data(), static_cast<size_t>(n)));
    EXPECT_TRUE(parsed) << parsed.error().message;
    if (!parsed) {
      return std::nullopt;
    }
    return Received{*parsed, ntohs(from.sin_port), static_cast<size_t>(n)};
  }

 private:
  int fd_ = -1;
};

std::vector<uint8_t> Rrq(const std::string& file, const std::string& mode = "octet",
                         TftpOptionList options = {}) {
  return EncodeTftpRequest(TftpRequest{TftpOpcode::kReadRequest, file, mode, std::move(options)});
}

// Options with test-sized timeouts: 200 ms between retransmissions, 3 retries.
TftpOptions ShortTimeouts(std::string address = "127.0.0.1:0", std::vector<TftpRoot> roots = {}) {
  TftpOptions o;
  o.address = std::move(address);
  o.roots = std::move(roots);
  o.retransmit_timeout = 200ms;
  o.max_retries = 3;
  return o;
}

class TftpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    content_ = RandomBytes(2 * 1024 * 1024 + 123, 1);
    WriteFile(root_ / "boot.bin", content_);
    fs::create_directories(root_.path() / "sub");
    WriteFile(root_ / "sub" / "exact.bin", RandomBytes(512 * 40, 2));  // a multiple of 512
  }

  // Starts a server on 127.0.0.1:0 serving root_ then `extra` roots.
  void StartServer(std::vector<TftpRoot> extra = {}) {
    options_.address = "127.0.0.1:0";
    options_.roots.insert(options_.roots.begin(), TftpRoot{root_.path(), {}, false});
    options_.roots.insert(options_.roots.end(), extra.begin(), extra.end());
    server_ = std::make_unique<TftpServer>(options_, registry_);
    auto port = server_->Start();
    ASSERT_TRUE(port) << port.error().message;
    port_ = *port;
  }

  // tftp-hpa: get `remote` into `local` in binary (or `mode`) mode.
  testutil::CommandResult HpaGet(const std::string& remote, const fs::path& local,
                                 const std::string& mode = "binary") {
    return testutil::Run({"tftp", "-m", mode, "127.0.0.1", std::to_string(port_), "-c", "get",
                          remote, local.string()});
  }
  // atftp: get `remote` into `local` with `options` ("blksize 1428", ...).
  testutil::CommandResult AtftpGet(const std::string& remote, const fs::path& local,
                                   const std::vector<std::string>& options = {}) {
    std::vector<std::string> argv = {"atftp", "--get", "-r", remote, "-l", local.string()};
    for (const auto& o : options) {
      argv.push_back("--option");
      argv.push_back(o);
    }
    argv.push_back("127.0.0.1");
    argv.push_back(std::to_string(port_));
    return testutil::Run(argv);
  }

  const TftpMetrics& metrics() { return server_->metrics(); }

  testutil::TempDir root_;
  testutil::TempDir out_;
  std::string content_;
  TftpOptions options_ = ShortTimeouts();
  std::shared_ptr<prometheus::Registry> registry_ = std::make_shared<prometheus::Registry>();
  std::unique_ptr<TftpServer> server_;
  uint16_t port_ = 0;
};

// tftp-hpa fetches a 2 MiB file byte-identical; the transfer is counted once as ok.
TEST_F(TftpServerTest, TftpHpaGetsWholeFile) {
  StartServer();
  auto r = HpaGet("boot.bin", out_ / "boot.bin");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(ReadFile(out_ / "boot.bin") == content_);
  EXPECT_TRUE(WaitFor([&] { return metrics().ok.Value() == 1; }));
  EXPECT_EQ(metrics().bytes_sent.Value(), static_cast<double>(content_.size()));
  EXPECT_EQ(metrics().active.Value(), 0);
}

// A leading '/' and a file whose size is a multiple of 512 (ends with an empty block).
TEST_F(TftpServerTest, TftpHpaLeadingSlashAndExactMultipleOfBlock) {
  StartServer();
  auto r = HpaGet("/sub/exact.bin", out_ / "exact.bin");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(ReadFile(out_ / "exact.bin") == ReadFile(root_ / "sub" / "exact.bin"));
}

// netascii: tftp-hpa converts CR LF back, so a text file arrives unchanged; tsize counts CRs.
TEST_F(TftpServerTest, TftpHpaNetascii) {
  std::string text;
  for (int i = 0; i < 2000; ++i) {
    text += "line " + std::to_string(i) + "\n";
  }
  WriteFile(root_ / "boot.ipxe", text);
  StartServer();
  auto r = HpaGet("boot.ipxe", out_ / "boot.ipxe", "netascii");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(ReadFile(out_ / "boot.ipxe"), text);
  // tsize counts the bytes sent: one more per line (CR LF).
  RawClient client;
  client.SendTo(port_, Rrq("boot.ipxe", "netascii", {{"tsize", "0"}}));
  auto oack = client.Receive(2s);
  ASSERT_TRUE(oack);
  EXPECT_EQ(std::get<TftpOptionAck>(oack->packet).options,
            (TftpOptionList{{"tsize", std::to_string(text.size() + 2000)}}));
  client.SendTo(oack->from_port, EncodeTftpError(TftpErrorCode::kOptionRefused, "probe"));
}

// atftp with no options, blksize 1428, tsize, timeout, windowsize: all byte-identical.
TEST_F(TftpServerTest, AtftpWithAndWithoutOptions) {
  StartServer();
  const std::vector<std::vector<std::string>> variants = {
      {},
      {"blksize 1428"},
      {"tsize 0"},
      {"blksize 1428", "tsize 0", "timeout 1"},
      {"windowsize 8", "blksize 1468"},
      {"blksize 65464"},
      {"timeout 30", "blksize 1428"},      // timeout left out of the OACK: atftp carries on
      {"windowsize 64", "blksize 65464"},  // windowsize lowered to 2 (128 KiB)
  };
  int i = 0;
  for (const auto& options : variants) {
    fs::path dest = out_ / ("atftp" + std::to_string(i++));
    auto r = AtftpGet("boot.bin", dest, options);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_TRUE(ReadFile(dest) == content_) << "options: " << testing::PrintToString(options);
  }
  EXPECT_TRUE(
      WaitFor([&] { return metrics().ok.Value() == static_cast<double>(variants.size()); }));
}

// Block numbers wrap past 65535: 8-byte blocks over a 600 KB file (75000 blocks).
TEST_F(TftpServerTest, AtftpBlockNumberRollover) {
  WriteFile(root_ / "long.bin", RandomBytes(600000, 3));
  StartServer();
  auto r = AtftpGet("long.bin", out_ / "long.bin", {"blksize 8", "windowsize 32"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(ReadFile(out_ / "long.bin") == ReadFile(root_ / "long.bin"));
}

// The OACK carries tsize = the file size and the granted blksize; DATA 1 follows ACK 0
// from a new port (the server's transfer ID), not the listening one.
TEST_F(TftpServerTest, OackOnTheWire) {
  options_.limits.max_block_size = 1000;
  StartServer();
  RawClient client;
  client.SendTo(port_, Rrq("boot.bin", "octet", {{"tsize", "0"}, {"blksize", "1400"}, {"x", "y"}}));
  auto oack = client.Receive(2s);
  ASSERT_TRUE(oack);
  EXPECT_NE(oack->from_port, port_);
  EXPECT_EQ(std::get<TftpOptionAck>(oack->packet).options,
            (TftpOptionList{{"tsize", std::to_string(content_.size())}, {"blksize", "1000"}}));
  client.SendTo(oack->from_port, EncodeTftpAck(0));
  auto data = client.Receive(2s);
  ASSERT_TRUE(data);
  EXPECT_EQ(std::get<TftpData>(data->packet), (TftpData{1, content_.substr(0, 1000)}));
  client.SendTo(data->from_port, EncodeTftpError(TftpErrorCode::kNotDefined, "enough"));
  EXPECT_TRUE(WaitFor([&] { return metrics().error.Value() == 1; }));
}

// A PXE ROM's tsize probe: it aborts after the OACK with error 8 and asks again from
// the same port with blksize; the second request is served, the first counted as error.
TEST_F(TftpServerTest, PxeTsizeProbeThenRequestFromSamePort) {
  StartServer();
  RawClient rom;
  rom.SendTo(port_, Rrq("sub/exact.bin", "octet", {{"tsize", "0"}}));
  auto oack = rom.Receive(2s);
  ASSERT_TRUE(oack);
  EXPECT_EQ(std::get<TftpOptionAck>(oack->packet).options, (TftpOptionList{{"tsize", "20480"}}));
  rom.SendTo(oack->from_port, EncodeTftpError(TftpErrorCode::kOptionRefused, "tsize only"));
  rom.SendTo(port_, Rrq("sub/exact.bin", "octet", {{"blksize", "1456"}}));
  auto second = rom.Receive(2s);
  ASSERT_TRUE(second);
  EXPECT_EQ(std::get<TftpOptionAck>(second->packet).options, (TftpOptionList{{"blksize", "1456"}}));
  EXPECT_NE(second->from_port, oack->from_port);
  std::string got;
  rom.SendTo(second->from_port, EncodeTftpAck(0));
  for (uint16_t block = 1;; ++block) {
    auto data = rom.Receive(2s);
    ASSERT_TRUE(data);
    const auto& d = std::get<TftpData>(data->packet);
    ASSERT_EQ(d.block, block);
    got += d.payload;
    rom.SendTo(second->from_port, EncodeTftpAck(block));
    if (d.payload.size() < 1456) {
      break;
    }
  }
  EXPECT_TRUE(got == ReadFile(root_ / "sub" / "exact.bin"));
  EXPECT_TRUE(WaitFor([&] { return metrics().ok.Value() == 1 && metrics().error.Value() == 1; }));
}

// windowsize 4 (RFC 7440): four DATA blocks after ACK 0; an ACK inside the window slides
// it, and only the blocks that enter it are sent; stale and repeated ACKs send nothing.
TEST_F(TftpServerTest, WindowOnTheWire) {
  options_.retransmit_timeout = 5s;  // no retransmission during the test
  StartServer();
  RawClient client;
  client.SendTo(port_, Rrq("boot.bin", "octet", {{"windowsize", "4"}}));
  auto oack = client.Receive(2s);
  ASSERT_TRUE(oack);
  EXPECT_EQ(std::get<TftpOptionAck>(oack->packet).options, (TftpOptionList{{"windowsize", "4"}}));
  auto blocks = [&] {
    std::vector<uint16_t> out;
    while (auto got = client.Receive(100ms)) {
      out.push_back(std::get<TftpData>(got->packet).block);
    }
    return out;
  };
  client.SendTo(oack->from_port, EncodeTftpAck(0));
  EXPECT_EQ(blocks(), (std::vector<uint16_t>{1, 2, 3, 4}));
  client.SendTo(oack->from_port, EncodeTftpAck(2));  // the window is now 3..6
  EXPECT_EQ(blocks(), (std::vector<uint16_t>{5, 6}));
  client.SendTo(oack->from_port, EncodeTftpAck(1));  // stale: nothing resent
  EXPECT_TRUE(blocks().empty());
  for (int i = 0; i < 50; ++i) {  // a flood of one in-window ACK: one slide, then nothing
    client.SendTo(oack->from_port, EncodeTftpAck(4));
  }
  EXPECT_EQ(blocks(), (std::vector<uint16_t>{7, 8}));
  client.SendTo(oack->from_port, EncodeTftpError(TftpErrorCode::kNotDefined, "done"));
}

// A client that acknowledges every block as it arrives (windowsize 8): each block is
// sent exactly once, so the client socket receives one DATA per block (the old server
// resent the whole window for each ACK: about 8 per block).
TEST_F(TftpServerTest, InWindowAckSendsEachBlockOnce) {
  options_.retransmit_timeout = 5s;  // no retransmission during the test
  StartServer();
  RawClient client;
  client.SendTo(port_, Rrq("sub/exact.bin", "octet", {{"windowsize", "8"}}));
  auto oack = client.Receive(2s);
  ASSERT_TRUE(oack);
  client.SendTo(oack->from_port, EncodeTftpAck(0));
  std::string got;
  int packets = 0;
  uint16_t expected = 1;
  while (auto r = client.Receive(1s)) {
    ++packets;
    const auto& d = std::get<TftpData>(r->packet);
    if (d.block != expected) {
      continue;
    }
    got += d.payload;
    client.SendTo(oack->from_port, EncodeTftpAck(expected));
    if (d.payload.size() < 512) {
      break;
    }
    ++expected;
  }
  EXPECT_TRUE(got == ReadFile(root_ / "sub" / "exact.bin"));
  EXPECT_EQ(packets, 41);  // 40 full blocks and the empty last one
  EXPECT_FALSE(client.Receive(200ms));
  EXPECT_TRUE(WaitFor([&] { return metrics().ok.Value() == 1; }));
}

// The client's "timeout" option replaces the server's retransmit timeout for its transfer.
TEST_F(TftpServerTest, ClientTimeoutOptionHonoured) {
  options_.retransmit_timeout = 10s;
  StartServer();
  RawClient client;
  const auto started = std::chrono::steady_clock::now();
  client.SendTo(port_, Rrq("boot.bin", "octet", {{"timeout", "1"}}));
  auto first = client.Receive(2s);
  ASSERT_TRUE(first);
  EXPECT_EQ(std::get<TftpOptionAck>(first->packet).options, (TftpOptionList{{"timeout", "1"}}));
  auto again = client.Receive(3s);  // the OACK again after 1 s, not 10 s
  ASSERT_TRUE(again);
  EXPECT_TRUE(std::holds_alternative<TftpOptionAck>(again->packet));
  EXPECT_GE(std::chrono::steady_clock::now() - started, 900ms);
  client.SendTo(again->from_port, EncodeTftpError(TftpErrorCode::kNotDefined, "bye"));
}

// One log line per transfer with client, file, result, bytes and duration; control
// characters in a requested name are escaped so a client cannot forge log lines.
TEST_F(TftpServerTest, OneLogLinePerTransfer) {
  std::ostringstream log;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(log);
  auto logger = Logger("tftp");
  logger->sinks().push_back(sink);
  StartServer();
  auto r = AtftpGet("sub/exact.bin", out_ / "e");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  RawClient client;
  client.SendTo(port_, Rrq("evil\nresult=ok"));
  client.SendTo(port_, Rrq("x\n2026 info tftp: forged"));
  ASSERT_TRUE(client.Receive(2s));
  ASSERT_TRUE(client.Receive(2s));
  EXPECT_TRUE(WaitFor([&] { return metrics().not_found.Value() == 2; }));
  server_->Stop();
  logger->sinks().pop_back();
  const std::string text = log.str();
  EXPECT_NE(text.find("file=\"sub/exact.bin\" mode=octet result=ok bytes=20480 duration_ms="),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("client=127.0.0.1:"), std::string::npos) << text;
  EXPECT_NE(text.find("file=\"x\\x0a2026 info tftp: forged\" mode=octet result=not_found"),
            std::string::npos)
      << text;
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1 + 3 /* listening + 3 transfers */)
      << text;
}

// A missing file: both clients report the server's "File not found".
TEST_F(TftpServerTest, MissingFile) {
  StartServer();
  auto hpa = HpaGet("nope.bin", out_ / "a");
  EXPECT_NE(hpa.output.find("File not found"), std::string::npos) << hpa.output;
  auto atftp = AtftpGet("nope.bin", out_ / "b");
  EXPECT_NE(atftp.exit_code, 0);
  EXPECT_NE(atftp.output.find("File not found: \"nope.bin\""), std::string::npos) << atftp.output;
  EXPECT_TRUE(WaitFor([&] { return metrics().not_found.Value() == 2; }));
}

// ".." components and symlinks out of the root are refused with "Access violation";
// a symlink that stays inside the root is served.
TEST_F(TftpServerTest, TraversalRefused) {
  fs::create_symlink("/etc/passwd", root_.path() / "passwd");
  fs::create_symlink(root_.path() / "boot.bin", root_.path() / "inside.bin");
  fs::create_directory_symlink("/etc", root_.path() / "etc");
  StartServer();
  RawClient client;
  for (std::string name : {"../etc/passwd", "/../../etc/passwd", "sub/../../etc/passwd",
                           "..\\..\\etc\\passwd", "passwd", "etc/passwd"}) {
    client.SendTo(port_, Rrq(name));
    auto reply = client.Receive(2s);
    ASSERT_TRUE(reply) << name;
    auto* err = std::get_if<TftpErrorPacket>(&reply->packet);
    ASSERT_NE(err, nullptr) << name;
    EXPECT_EQ(err->code, TftpErrorCode::kAccessViolation) << name;
    EXPECT_TRUE(err->message.starts_with("Access violation")) << err->message;
  }
  EXPECT_TRUE(WaitFor([&] { return metrics().denied.Value() == 6; }));
  auto atftp = AtftpGet("../etc/passwd", out_ / "p");
  EXPECT_NE(atftp.exit_code, 0);
  EXPECT_NE(atftp.output.find("contains \"..\""), std::string::npos) << atftp.output;
  EXPECT_FALSE(fs::exists(out_ / "p") && fs::file_size(out_ / "p") > 0);
  auto link = HpaGet("passwd", out_ / "q");
  EXPECT_NE(link.output.find("leads outside the TFTP root"), std::string::npos) << link.output;
  auto inside = AtftpGet("inside.bin", out_ / "inside.bin");
  ASSERT_EQ(inside.exit_code, 0) << inside.output;
  EXPECT_TRUE(ReadFile(out_ / "inside.bin") == content_);
}

// A directory is not served.
TEST_F(TftpServerTest, DirectoryRefused) {
  StartServer();
  auto r = AtftpGet("sub", out_ / "d");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("\"sub\" is not a file"), std::string::npos) << r.output;
}

// Uploads are refused: the server is read-only.
TEST_F(TftpServerTest, WriteRequestRefused) {
  StartServer();
  WriteFile(out_ / "up.bin", "data");
  auto r = testutil::Run({"atftp", "--put", "-l", (out_ / "up.bin").string(), "-r", "up.bin",
                          "127.0.0.1", std::to_string(port_)});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("read-only"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(root_ / "up.bin"));
  EXPECT_TRUE(WaitFor([&] { return metrics().denied.Value() == 1; }));
}

// Modes other than octet/netascii, and garbage, get "Illegal TFTP operation".
TEST_F(TftpServerTest, BadModeAndMalformedRequest) {
  StartServer();
  RawClient client;
  client.SendTo(port_, Rrq("boot.bin", "mail"));
  auto reply = client.Receive(2s);
  ASSERT_TRUE(reply);
  auto err = std::get<TftpErrorPacket>(reply->packet);
  EXPECT_EQ(err.code, TftpErrorCode::kIllegalOperation);
  EXPECT_EQ(err.message,
            "Illegal TFTP operation: mode \"mail\" not supported (want octet or netascii)");
  client.SendTo(port_, {0, 1, 'f', 0, 'o', 'c', 't', 'e', 't', 0, 'b', 0});
  reply = client.Receive(2s);
  ASSERT_TRUE(reply);
  err = std::get<TftpErrorPacket>(reply->packet);
  EXPECT_EQ(err.code, TftpErrorCode::kIllegalOperation);
  EXPECT_EQ(err.message, "Illegal TFTP operation: request: option \"b\" has no value");
  EXPECT_TRUE(WaitFor([&] { return metrics().error.Value() == 2; }));
}

// A client that stops acknowledging: DATA 1 is sent 1 + max_retries times, then the
// transfer is dropped, counted as timeout, and its slot serves the next client.
TEST_F(TftpServerTest, ClientStopsAcknowledging) {
  options_.max_transfers = 1;
  StartServer();
  RawClient silent;
  const auto started = std::chrono::steady_clock::now();
  silent.SendTo(port_, Rrq("boot.bin"));
  int data_one = 0;
  while (auto got = silent.Receive(1s)) {
    auto* data = std::get_if<TftpData>(&got->packet);
    ASSERT_NE(data, nullptr);
    EXPECT_EQ(data->block, 1);
    EXPECT_EQ(data->payload, content_.substr(0, 512));
    ++data_one;
  }
  EXPECT_EQ(data_one, 1 + options_.max_retries);
  // 3 retransmissions at 200 ms, and the 4th wait: about 800 ms in all.
  EXPECT_GE(std::chrono::steady_clock::now() - started, 750ms);
  EXPECT_TRUE(WaitFor([&] { return metrics().timeout.Value() == 1; }));
  EXPECT_TRUE(WaitFor([&] { return metrics().active.Value() == 0; }));
  auto r = AtftpGet("boot.bin", out_ / "after.bin", {"blksize 1428"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(ReadFile(out_ / "after.bin") == content_);
}

// A client that never answers the OACK times out the same way.
TEST_F(TftpServerTest, ClientNeverAcksOack) {
  StartServer();
  RawClient silent;
  silent.SendTo(port_, Rrq("boot.bin", "octet", {{"tsize", "0"}}));
  int oacks = 0;
  while (auto got = silent.Receive(1s)) {
    EXPECT_TRUE(std::holds_alternative<TftpOptionAck>(got->packet));
    ++oacks;
  }
  EXPECT_EQ(oacks, 1 + options_.max_retries);
  EXPECT_TRUE(WaitFor([&] { return metrics().timeout.Value() == 1; }));
}

// Beyond max_transfers a request gets "server busy"; a repeated RRQ from the client
// already being served is not a second transfer.
TEST_F(TftpServerTest, ConcurrentTransferCap) {
  options_.max_transfers = 2;
  options_.retransmit_timeout = 2s;  // keep the first two busy during the test
  StartServer();
  RawClient a, b, c;
  a.SendTo(port_, Rrq("boot.bin"));
  ASSERT_TRUE(a.Receive(2s));
  a.SendTo(port_, Rrq("boot.bin"));  // a duplicate RRQ
  b.SendTo(port_, Rrq("boot.bin"));
  ASSERT_TRUE(b.Receive(2s));
  EXPECT_TRUE(WaitFor([&] { return metrics().active.Value() == 2; }));
  c.SendTo(port_, Rrq("boot.bin"));
  auto reply = c.Receive(2s);
  ASSERT_TRUE(reply);
  auto* err = std::get_if<TftpErrorPacket>(&reply->packet);
  ASSERT_NE(err, nullptr);
  EXPECT_EQ(err->message, "server busy (2 transfers in progress), try again");
  EXPECT_TRUE(WaitFor([&] { return metrics().busy.Value() == 1; }));
  auto atftp = AtftpGet("boot.bin", out_ / "x");
  EXPECT_NE(atftp.output.find("server busy"), std::string::npos) << atftp.output;
  EXPECT_FALSE(a.Receive(100ms));  // no DATA from a second transfer for the duplicate
  // Stop() aborts the two stalled transfers promptly.
  const auto stop_started = std::chrono::steady_clock::now();
  server_->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - stop_started, 1500ms);
  EXPECT_EQ(metrics().active.Value(), 0);
}

// 64 requests from one address asking for timeout=255 and the biggest window: 4 are
// served (timeout left out of the OACK, window lowered to 2 blocks), 60 are refused with
// "too many transfers from this address", and a client on another address is still
// served. (The old server gave all 64 slots to the one address, for about 25 minutes.)
TEST_F(TftpServerTest, PerClientLimitKeepsSlotsForOthers) {
  options_.retransmit_timeout = 2s;  // the 4 admitted transfers stay during the test
  StartServer();
  std::vector<std::unique_ptr<RawClient>> flood;
  for (int i = 0; i < 64; ++i) {
    flood.push_back(std::make_unique<RawClient>());
    flood.back()->SendTo(
        port_,
        Rrq("boot.bin", "octet", {{"timeout", "255"}, {"blksize", "65464"}, {"windowsize", "64"}}));
  }
  int served = 0;
  int refused = 0;
  for (auto& c : flood) {
    auto reply = c->Receive(2s);
    ASSERT_TRUE(reply);
    if (auto* oack = std::get_if<TftpOptionAck>(&reply->packet)) {
      EXPECT_EQ(oack->options, (TftpOptionList{{"blksize", "65464"}, {"windowsize", "2"}}));
      ++served;
    } else {
      const auto& err = std::get<TftpErrorPacket>(reply->packet);
      EXPECT_EQ(err.code, TftpErrorCode::kNotDefined);
      EXPECT_EQ(err.message, "too many transfers from this address (4 in progress), try again");
      ++refused;
    }
  }
  EXPECT_EQ(served, 4);
  EXPECT_EQ(refused, 60);
  EXPECT_EQ(metrics().client_limit.Value(), 60);
  EXPECT_EQ(metrics().active.Value(), 4);

  RawClient other("127.0.0.2");
  other.SendTo(port_, Rrq("sub/exact.bin"));
  std::string got;
  for (uint16_t block = 1;; ++block) {
    auto data = other.Receive(2s);
    ASSERT_TRUE(data);
    const auto* d = std::get_if<TftpData>(&data->packet);
    ASSERT_NE(d, nullptr) << std::get<TftpErrorPacket>(data->packet).message;
    ASSERT_EQ(d->block, block);
    got += d->payload;
    other.SendTo(data->from_port, EncodeTftpAck(block));
    if (d->payload.size() < 512) {
      break;
    }
  }
  EXPECT_TRUE(got == ReadFile(root_ / "sub" / "exact.bin"));
  EXPECT_TRUE(WaitFor([&] { return metrics().ok.Value() == 1; }));
}

// A client that takes DATA 1 and then only repeats ACK 0 (no progress) loses its slot
// after the progress deadline, although it asked for timeout=5 and its stale ACKs keep
// coming; the next client is then served.
TEST_F(TftpServerTest, AbandonedTransferFreedAfterProgressDeadline) {
  options_.max_transfers = 1;
  options_.retransmit_timeout = 2s;
  options_.progress_deadline = 500ms;
  StartServer();
  RawClient stuck;
  stuck.SendTo(port_, Rrq("boot.bin", "octet", {{"timeout", "5"}}));
  auto oack = stuck.Receive(2s);
  ASSERT_TRUE(oack);
  EXPECT_EQ(std::get<TftpOptionAck>(oack->packet).options, (TftpOptionList{{"timeout", "5"}}));
  stuck.SendTo(oack->from_port, EncodeTftpAck(0));
  const auto started = std::chrono::steady_clock::now();
  RawClient next;
  bool served = false;
  while (!served && std::chrono::steady_clock::now() - started < 3s) {
    stuck.SendTo(oack->from_port, EncodeTftpAck(0));  // stale: not progress
    next.SendTo(port_, Rrq("sub/exact.bin"));
    while (auto reply = next.Receive(100ms)) {
      if (auto* d = std::get_if<TftpData>(&reply->packet)) {
        EXPECT_EQ(d->block, 1);
        served = true;
        next.SendTo(reply->from_port, EncodeTftpError(TftpErrorCode::kNotDefined, "enough"));
        break;
      }
    }
  }
  EXPECT_TRUE(served) << "the abandoned transfer still holds the only slot";
  EXPECT_GE(std::chrono::steady_clock::now() - started, 400ms);
  EXPECT_TRUE(WaitFor([&] { return metrics().timeout.Value() == 1; }));
  EXPECT_GE(metrics().busy.Value(), 1);
}

// Refusals are counted every time but logged once per client address: 20 requests over
// the per-client limit make 20 counts and one log line.
TEST_F(TftpServerTest, RefusalsLoggedOncePerClient) {
  std::ostringstream log;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(log);
  auto logger = Logger("tftp");
  logger->sinks().push_back(sink);
  options_.max_transfers_per_client = 1;
  options_.retransmit_timeout = 2s;
  StartServer();
  RawClient holder;
  holder.SendTo(port_, Rrq("boot.bin"));
  ASSERT_TRUE(holder.Receive(2s));
  RawClient client;
  for (int i = 0; i < 20; ++i) {
    client.SendTo(port_, Rrq("boot.bin", "octet", {{"x", std::to_string(i)}}));
    ASSERT_TRUE(client.Receive(2s));
  }
  EXPECT_EQ(metrics().client_limit.Value(), 20);
  server_->Stop();
  logger->sinks().pop_back();
  const std::string text = log.str();
  size_t lines = 0;
  for (size_t at = 0; (at = text.find("result=client_limit", at)) != std::string::npos; ++at) {
    ++lines;
  }
  EXPECT_EQ(lines, 1u) << text;
}

// A requested name of 4000 bytes: the "File not found" ERROR still fits RFC 1350's 516
// bytes, and the server keeps serving after a burst of random datagrams to its ports.
TEST_F(TftpServerTest, HostileDatagrams) {
  StartServer();
  RawClient client;
  client.SendTo(port_, Rrq(std::string(4000, 'a')));
  auto reply = client.Receive(2s);
  ASSERT_TRUE(reply);
  EXPECT_LE(reply->bytes, 516u);
  EXPECT_TRUE(
      std::get<TftpErrorPacket>(reply->packet).message.starts_with("File not found: \"aaa"));

  // Garbage to the listener, and to a transfer's port in the middle of a transfer.
  client.SendTo(port_, Rrq("boot.bin", "octet", {{"tsize", "0"}}));
  auto oack = client.Receive(2s);
  ASSERT_TRUE(oack);
  std::mt19937 rng(11);
  RawClient noise;
  for (int i = 0; i < 300; ++i) {
    std::vector<uint8_t> junk(rng() % 1500);
    for (auto& b : junk) {
      b = static_cast<uint8_t>(rng() % 4 == 0 ? 0 : rng());
    }
    if (junk.size() >= 2) {
      junk[0] = 0;
      junk[1] = static_cast<uint8_t>(rng() % 8);
    }
    noise.SendTo(i % 2 ? port_ : oack->from_port, junk);
    client.SendTo(oack->from_port, junk);
  }
  client.SendTo(oack->from_port, EncodeTftpError(TftpErrorCode::kNotDefined, "bye"));
  auto r = AtftpGet("boot.bin", out_ / "after.bin", {"blksize 1428", "windowsize 8"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(ReadFile(out_ / "after.bin") == content_);
}

// Debian's ipxe package binaries are served by name (ipxe.efi is a symlink into
// /boot), nothing else from that directory, and the configured root comes first.
TEST_F(TftpServerTest, DebianIpxeBinaries) {
  if (!fs::exists("/usr/lib/ipxe/undionly.kpxe")) {
    GTEST_SKIP() << "Debian package ipxe not installed (scripts/install-deps.sh)";
  }
  WriteFile(root_ / "snponly.efi", "mine");
  StartServer({DebianIpxeRoot()});
  for (std::string name : {"undionly.kpxe", "ipxe.efi"}) {
    auto r = AtftpGet(name, out_ / name, {"blksize 1428", "tsize 0"});
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_TRUE(ReadFile(out_ / name) == ReadFile(fs::canonical("/usr/lib/ipxe/" + name))) << name;
  }
  auto mine = HpaGet("snponly.efi", out_ / "snponly.efi");
  ASSERT_EQ(mine.exit_code, 0) << mine.output;
  EXPECT_EQ(ReadFile(out_ / "snponly.efi"), "mine");
  auto other = AtftpGet("ipxe.pxe", out_ / "ipxe.pxe");
  EXPECT_NE(other.output.find("File not found"), std::string::npos) << other.output;
}

// serve's roots: the -tftp-root directory first, then Debian's iPXE binaries.
TEST(TftpServerStart, DefaultRoots) {
  auto roots = DefaultTftpRoots(fs::path("/srv/tftp"));
  ASSERT_EQ(roots.size(), 2u);
  EXPECT_EQ(roots[0].dir, "/srv/tftp");
  EXPECT_FALSE(roots[0].optional);
  EXPECT_TRUE(roots[0].only.empty());
  EXPECT_EQ(roots[1].dir, kDebianIpxeDir);
  EXPECT_TRUE(roots[1].optional);
  EXPECT_TRUE(roots[1].only.contains("undionly.kpxe"));
  EXPECT_TRUE(roots[1].only.contains("ipxe.efi"));
  EXPECT_EQ(DefaultTftpRoots(std::nullopt).size(), 1u);
}

// Start() errors name the bad address or root and say what was expected.
TEST(TftpServerStart, RefusesBadConfiguration) {
  auto registry = std::make_shared<prometheus::Registry>();
  auto start = [&](TftpOptions o) { return TftpServer(o, registry).Start(); };
  struct Case {
    std::string address;
    std::string want;
  };
  for (const auto& c : std::vector<Case>{
           {"127.0.0.1",
            "TFTP address \"127.0.0.1\": no port (want host:port, e.g. "
            "0.0.0.0:69 or [::]:69)"},
           {"127.0.0.1:70000", "port \"70000\" is not a number from 0 to 65535"},
           {"localhost:69", "\"localhost\" is not an IPv4 address"},
           {"[::x]:69", "\"[::x]\" is not an IPv6 address"},
       }) {
    auto r = start(ShortTimeouts(c.address));
    ASSERT_FALSE(r) << c.address;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalid);
    EXPECT_NE(r.error().message.find(c.want), std::string::npos) << r.error().message;
  }
  auto missing = start(ShortTimeouts("127.0.0.1:0", {TftpRoot{"/nonexistent/tftp", {}, false}}));
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().message, "TFTP root \"/nonexistent/tftp\": not a directory or missing");
  // An optional root that is missing only warns.
  TftpServer ok(ShortTimeouts("127.0.0.1:0", {DebianIpxeRoot("/nonexistent/ipxe")}), registry);
  auto port = ok.Start();
  ASSERT_TRUE(port) << port.error().message;
  // The same port twice: the second bind fails.
  auto taken = start(ShortTimeouts("127.0.0.1:" + std::to_string(*port)));
  ASSERT_FALSE(taken);
  EXPECT_EQ(taken.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(taken.error().message.find("Address already in use"), std::string::npos)
      << taken.error().message;
}

// IPv6 loopback works too.
TEST(TftpServerStart, ServesOverIpv6) {
  testutil::TempDir root;
  WriteFile(root / "f", "hello");
  TftpServer server(ShortTimeouts("[::1]:0", {TftpRoot{root.path(), {}, false}}),
                    std::make_shared<prometheus::Registry>());
  auto port = server.Start();
  if (!port) {
    GTEST_SKIP() << "no IPv6 loopback: " << port.error().message;
  }
  testutil::TempDir out;
  auto r = testutil::Run({"tftp", "-6", "-m", "binary", "::1", std::to_string(*port), "-c", "get",
                          "f", (out / "f").string()});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(ReadFile(out / "f"), "hello");
}

}  // namespace
}  // namespace ironboot::bootserver
