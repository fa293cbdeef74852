// `ironboot status [--server URL] [--json] [--timeout 5s]`: fetches a GitOps
// server's GET /status and prints the served revision, the rollout, the
// bootstrap and the machine table (FormatStatus), or the raw document.

#include <curl/curl.h>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/duration.h"
#include "controller/commands.h"
#include "controller/flags.h"
#include "controller/status_format.h"

namespace ironboot::controller {

namespace {

constexpr char kStatusUsage[] =
    "usage: ironboot status [--server URL] [--json] [--timeout 5s]\n"
    "\n"
    "Asks a running `ironboot serve --repo ...` for GET /status and prints the served\n"
    "revision (and a rejected one), the rollout with the steps in flight, the bootstrap\n"
    "and one line per machine. The fleet part needs the server to have Talos API\n"
    "credentials (-talosconfig or -secrets-file).\n"
    "\n"
    "  --server URL        the server (default http://127.0.0.1:8080); env IRONBOOT_SERVER\n"
    "  --json              print the raw /status document\n"
    "  --timeout DURATION  deadline of the request, e.g. 5s or 500ms (default 5s)\n"
    "\n"
    "Exit status: 0 printed, 1 the server could not be reached or did not answer a\n"
    "status document, 2 usage.\n";

constexpr size_t kMaxBody = 16 * 1024 * 1024;


struct HttpAnswer {
  long status = 0;
  std::string content_type;
  std::string body;
  bool too_large = false;
};

size_t Append(char* data, size_t size, size_t count, void* user) {
  auto* answer = static_cast<HttpAnswer*>(user);
  if (answer->body.size() + size * count > kMaxBody) {
    answer->too_large = true;
    return 0;  // aborts the transfer (CURLE_WRITE_ERROR)
  }
  answer->body.append(data, size * count);
  return size * count;
}

// One GET of `url` with libcurl; kUnavailable with curl's reason when no
// answer arrived.
Result<HttpAnswer> Get(const std::string& url, std::chrono::milliseconds timeout) {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  CURL* curl = curl_easy_init();
  if (curl == nullptr) {
    return Fail(ErrorCode::kInternal, "curl_easy_init failed");
  }
  std::string error_buffer(CURL_ERROR_SIZE, '\0');
  HttpAnswer answer;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error_buffer.data());
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "ironboot-status");
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &Append);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &answer);
  CURLcode code = curl_easy_perform(curl);
  if (code == CURLE_OK) {
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &answer.status);
    const char* type = nullptr;
    if (curl_easy_getinfo(curl, CURLINFO_CONTENT_TYPE, &type) == CURLE_OK && type != nullptr) {
      answer.content_type = type;
    }
  }
  curl_easy_cleanup(curl);
  if (code != CURLE_OK) {
    std::string why = error_buffer.c_str();
    if (why.empty()) {
      why = curl_easy_strerror(code);
    }
    if (answer.too_large) {
      why = "answer larger than " + std::to_string(kMaxBody) + " bytes";
    }
    return Fail(ErrorCode::kUnavailable, why);
  }
  return answer;
}

// A short, printable excerpt of a body for an error message.
std::string Excerpt(const std::string& body) {
  std::string out;
  for (char c : body.substr(0, 80)) {
    out += (c == '\n' || c == '\r' || c == '\t') ? ' ' : c;
  }
  return body.size() > 80 ? out + "..." : out;
}

}  // namespace

int StatusCommand(Args args) {
  FlagSet flags("status");
  flags.String("server", "http://127.0.0.1:8080", "the ironboot server", {"IRONBOOT_SERVER"});
  flags.Bool("json", "print the raw /status document");
  flags.String("timeout", "5s", "deadline of the request");
  flags.Bool("help", "show this help");
  flags.Bool("h", "show this help");
  if (auto parsed = flags.Parse(args); !parsed) {
    std::fprintf(stderr, "ironboot %s\n\n%s", parsed.error().message.c_str(), kStatusUsage);
    return 2;
  }
  if (flags.GetBool("help") || flags.GetBool("h")) {
    std::fputs(kStatusUsage, stdout);
    return 0;
  }
  if (!flags.positional().empty()) {
    std::fprintf(stderr, "ironboot status: unexpected argument \"%s\"\n\n%s",
                 flags.positional()[0].c_str(), kStatusUsage);
    return 2;
  }
  auto timeout = ParseDuration(flags.Get("timeout"));
  if (!timeout || timeout->count() <= 0) {
    std::fprintf(stderr,
                 "ironboot status: --timeout \"%s\" is not a duration (want e.g. 5s or 500ms)\n",
                 flags.Get("timeout").c_str());
    return 2;
  }
  std::string server = flags.Get("server");
  if (server.empty()) {
    std::fprintf(stderr, "ironboot status: --server is empty (want e.g. http://127.0.0.1:8080)\n");
    return 2;
  }
  if (server.find("://") == std::string::npos) {
    server = "http://" + server;
  }
  while (!server.empty() && server.back() == '/') {
    server.pop_back();
  }
  std::string url = server + "/status";

  auto answer = Get(url, *timeout);
  if (!answer) {
    std::fprintf(stderr, "ironboot status: cannot reach %s: %s\n", url.c_str(),
                 answer.error().message.c_str());
    return 1;
  }
  if (answer->status != 200) {
    std::string hint;
    if (answer->status == 404) {
      hint =
          " (no /status here: is it `ironboot serve` in GitOps mode, with --repo? Matchbox "
          "mode has no /status)";
    }
    std::fprintf(stderr, "ironboot status: %s answered HTTP %ld, not 200%s\n", url.c_str(),
                 answer->status, hint.c_str());
    return 1;
  }
  nlohmann::json status = nlohmann::json::parse(answer->body, nullptr, /*allow_exceptions=*/false);
  if (status.is_discarded() || !status.is_object()) {
    std::fprintf(stderr,
                 "ironboot status: %s answered HTTP 200 but not a JSON status document "
                 "(content-type \"%s\", body \"%s\")\n",
                 url.c_str(), answer->content_type.c_str(), Excerpt(answer->body).c_str());
    return 1;
  }
  if (flags.GetBool("json")) {
    std::fputs(answer->body.c_str(), stdout);
    if (answer->body.empty() || answer->body.back() != '\n') {
      std::fputc('\n', stdout);
    }
    return 0;
  }
  std::fputs(FormatStatus(status).c_str(), stdout);
  return 0;
}

}  // namespace ironboot::controller
