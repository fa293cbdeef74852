#include "tests/testutil/testutil.h"

#include <arpa/inet.h>

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace ironboot::testutil {

namespace fs = std::filesystem;

TempDir::TempDir() {
  std::string tmpl = (fs::temp_directory_path() / "ironboot-test-XXXXXX").string();
  if (mkdtemp(tmpl.data()) == nullptr) {
    throw std::runtime_error("mkdtemp failed");
  }
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

void WriteFile(const fs::path& path, const std::string& content) {
  if (path.has_parent_path()) {
    fs::create_directories(path.parent_path());
  }
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  if (!out) {
    throw std::runtime_error("cannot write " + path.string());
  }
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

namespace {

std::vector<char*> Argv(const std::vector<std::string>& argv) {
  std::vector<char*> out;
  for (const auto& a : argv) {
    out.push_back(const_cast<char*>(a.c_str()));
  }
  out.push_back(nullptr);
  return out;
}

int Spawn(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
          const std::optional<fs::path>& cwd, int out_fd) {
  pid_t pid = fork();
  if (pid < 0) {
    throw std::runtime_error("fork failed");
  }
  if (pid == 0) {
    setpgid(0, 0);
    // A child dies with its test, even one killed by a crash or a timeout.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() == 1) {
      _exit(125);  // the test ended between fork and prctl
    }
    if (cwd && chdir(cwd->c_str()) != 0) {
      _exit(126);
    }
    for (const auto& [k, v] : env) {
      setenv(k.c_str(), v.c_str(), 1);
    }
    int devnull = open("/dev/null", O_RDONLY);
    dup2(devnull, 0);
    dup2(out_fd, 1);
    dup2(out_fd, 2);
    auto args = Argv(argv);
    execvp(args[0], args.data());
    _exit(127);
  }
  return pid;
}

int DecodeStatus(int status) {
  if (WIFEXITED(status)) {
    return WEXITSTATUS(status);
  }
  if (WIFSIGNALED(status)) {
    return 128 + WTERMSIG(status);
  }
  return -1;
}

}  // namespace

CommandResult Run(const std::vector<std::string>& argv, const std::optional<fs::path>& cwd,
                  const std::map<std::string, std::string>& env) {
  TempDir tmp;
  fs::path log = tmp / "out";
  int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  int pid = Spawn(argv, env, cwd, fd);
  close(fd);
  int status = 0;
  waitpid(pid, &status, 0);
  return CommandResult{DecodeStatus(status), ReadFile(log)};
}

CommandResult Sh(const std::string& command_line) {
  return Run({"/bin/sh", "-c", command_line});
}

Process::Process(const std::vector<std::string>& argv,
                 const std::map<std::string, std::string>& env,
                 const std::optional<fs::path>& cwd) {
  std::string tmpl = (fs::temp_directory_path() / "ironboot-proc-XXXXXX").string();
  int fd = mkstemp(tmpl.data());
  if (fd < 0) {
    throw std::runtime_error("mkstemp failed");
  }
  log_ = tmpl;
  pid_ = Spawn(argv, env, cwd, fd);
  close(fd);
}

Process::~Process() {
  if (Running()) {
    kill(-pid_, SIGKILL);
    kill(pid_, SIGKILL);
    Wait(std::chrono::seconds(5));
  }
  std::error_code ec;
  fs::remove(log_, ec);
}

std::string Process::Output() const { return ReadFile(log_); }

bool Process::Signal(int sig) { return Running() && kill(pid_, sig) == 0; }

std::optional<int> Process::Wait(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!status_) {
    int status = 0;
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      status_ = DecodeStatus(status);
      break;
    }
    if (r < 0) {
      status_ = -1;
      break;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return std::nullopt;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return status_;
}

bool Process::Running() {
  if (status_) {
    return false;
  }
  return !Wait(std::chrono::milliseconds(0)).has_value();
}

bool WaitFor(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (pred()) {
      return true;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

bool Accepts(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

int FreePort(bool udp) {
  int fd = socket(AF_INET, udp ? SOCK_DGRAM : SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

std::string UniqueLoopbackNet() {
  static std::mt19937 rng(std::random_device{}());
  int a = 20 + static_cast<int>(getpid() % 200);  // not 0: other tests use 127.0.x
  for (int attempt = 0; attempt < 50; ++attempt) {
    int b = static_cast<int>(rng() % 250) + 1;
    std::string net = "127." + std::to_string(a) + "." + std::to_string(b);
    bool free = true;
    for (int host = 101; host <= 112 && free; ++host) {
      int fd = socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_port = htons(50000);
      inet_pton(AF_INET, (net + "." + std::to_string(host)).c_str(), &addr.sin_addr);
      free = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
      close(fd);
    }
    if (free) {
      return net;
    }
  }
  return "127." + std::to_string(a) + "." + std::to_string(rng() % 250 + 1);
}

void RaiseFileLimit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

HttpResponse HttpRequestFrom(const std::string& source, int port, const std::string& method,
                             const std::string& target,
                             const std::map<std::string, std::string>& headers,
                             const std::string& body) {
  namespace beast = boost::beast;
  namespace http = beast::http;
  using tcp = boost::asio::ip::tcp;
  HttpResponse out;
  try {
    boost::asio::io_context ioc;
    beast::tcp_stream stream(ioc);
    stream.expires_after(std::chrono::seconds(30));
    if (!source.empty()) {
      stream.socket().open(tcp::v4());
      stream.socket().bind(tcp::endpoint(boost::asio::ip::make_address(source), 0));
    }
    stream.connect(tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"),
                                 static_cast<unsigned short>(port)));
    http::request<http::string_body> req{http::string_to_verb(method), target, 11};
    req.set(http::field::host, "127.0.0.1:" + std::to_string(port));
    for (const auto& [k, v] : headers) {
      req.set(k, v);
    }
    if (!body.empty() || method == "POST") {
      req.body() = body;
      req.prepare_payload();
    }
    http::write(stream, req);
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(1ull << 32);
    if (method == "HEAD") {
      parser.skip(true);
    }
    http::read(stream, buffer, parser);
    auto& res = parser.get();
    out.status = res.result_int();
    for (const auto& field : res) {
      std::string name(field.name_string());
      for (auto& c : name) {
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      }
      out.headers[name] = std::string(field.value());
    }
    out.body = res.body();
    beast::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_both, ec);
  } catch (const std::exception& e) {
    out.error = e.what();
  }
  return out;
}

HttpResponse HttpRequest(int port, const std::string& method, const std::string& target,
                         const std::map<std::string, std::string>& headers,
                         const std::string& body) {
  return HttpRequestFrom("", port, method, target, headers, body);
}

HttpResponse HttpGetFrom(const std::string& source, int port, const std::string& target) {
  return HttpRequestFrom(source, port, "GET", target, {}, "");
}

}  // namespace ironboot::testutil
