// render_bench: Load + Render of a generated cluster repo with N machines
// (examples/homelab's cluster, base configs and patches; N/3 control planes
// would be silly, so 3 control planes and N-3 workers, each with its own
// small patch file). Prints wall time per phase and the process's peak RSS.
//
//   render_bench EXAMPLES_HOMELAB_DIR N [ROUNDS [DUMP_FILE]]
//
// DUMP_FILE: also writes every rendered file (machine configs by MAC, then
// ToMatchboxFiles' groups, profiles and generic configs) to compare renders.
//
// Goals (issue 3): render 1,000 machines < 50 ms, 10,000 < 500 ms, peak RSS
// < 256 MiB at 10,000.

#include <sys/resource.h>

#include <time.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>

#include "manifests/loader.h"
#include "manifests/render.h"
#include "manifests/repo_dir.h"

using namespace ironboot::manifests;

namespace {

std::string Mac(int i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "02:00:00:%02x:%02x:%02x", (i >> 16) & 0xff, (i >> 8) & 0xff,
                i & 0xff);
  return buf;
}

std::string Address(int i) {
  return "10." + std::to_string(1 + i / 65000) + "." + std::to_string((i / 250) % 260) + "." +
         std::to_string(1 + i % 250) + "/8";
}

// CPU time of this thread: on a shared, loaded machine it moves far less than
// wall time.
double CpuMs() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

double Ms(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: render_bench EXAMPLES_HOMELAB_DIR N [ROUNDS [DUMP_FILE]]\n");
    return 2;
  }
  const int n = std::stoi(argv[2]);
  const int rounds = argc > 3 ? std::stoi(argv[3]) : 3;
  auto base = ReadRepoDir(argv[1]);
  if (!base) {
    std::fprintf(stderr, "%s\n", base.error().message.c_str());
    return 1;
  }
  RepoFiles files;
  for (const auto& [path, content] : *base) {
    if (!path.starts_with("machines/")) {
      files[path] = content;
    }
  }
  // Widen the subnet and drop the three-node certSANs so addresses fit.
  std::string& cluster = files["cluster.yaml"];
  cluster.replace(cluster.find("subnet: 10.0.4.0/24"), 19, "subnet: 10.0.0.0/8");
  std::string machines;
  for (int i = 0; i < n; ++i) {
    std::string name = "m" + std::to_string(i);
    machines +=
        "---\napiVersion: ironboot.dev/v1alpha1\nkind: Machine\nmetadata:\n  name: " + name +
        "\nspec:\n  role: " + (i < 3 ? "controlplane" : "worker") + "\n  mac: " + Mac(i) +
        "\n  address: " + Address(i) + "\n  patches:\n    - machine: {nodeLabels: {rack: r" +
        std::to_string(i % 40) + "}}\n";
    if ((i + 1) % 500 == 0 || i + 1 == n) {
      files["machines/batch" + std::to_string(i / 500) + ".yaml"] = std::move(machines);
      machines.clear();
    }
  }
  double best_load = 1e18;
  double best_render = 1e18;
  double best_load_cpu = 1e18;
  double best_render_cpu = 1e18;
  size_t config_bytes = 0;
  for (int r = 0; r < rounds; ++r) {
    const double c0 = CpuMs();
    auto t0 = std::chrono::steady_clock::now();
    auto state = Load(files);
    auto t1 = std::chrono::steady_clock::now();
    const double c1 = CpuMs();
    if (!state) {
      std::fprintf(stderr, "%s", state.error().ToString().c_str());
      return 1;
    }
    auto plan = Render(*state);
    auto t2 = std::chrono::steady_clock::now();
    const double c2 = CpuMs();
    if (!plan) {
      std::fprintf(stderr, "%s", plan.error().ToString().c_str());
      return 1;
    }
    config_bytes = 0;
    for (const auto& [mac, config] : plan->machine_configs) {
      config_bytes += config.size();
    }
    if (argc > 4 && r == 0) {
      std::ofstream out(argv[4], std::ios::binary);
      for (const auto& [mac, config] : plan->machine_configs) {
        out << "=== config " << mac << "\n" << config;
      }
      for (const auto& [path, content] : ToMatchboxFiles(*plan)) {
        out << "=== " << path << "\n" << content << "\n";
      }
    }
    best_load = std::min(best_load, Ms(t1 - t0));
    best_render = std::min(best_render, Ms(t2 - t1));
    best_load_cpu = std::min(best_load_cpu, c1 - c0);
    best_render_cpu = std::min(best_render_cpu, c2 - c1);
  }
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  std::printf(
      "machines=%d load_ms=%.1f render_ms=%.1f total_ms=%.1f load_cpu_ms=%.1f render_cpu_ms=%.1f "
      "config_bytes=%zu peak_rss_mib=%.1f (best of %d)\n",
      n, best_load, best_render, best_load + best_render, best_load_cpu, best_render_cpu,
      config_bytes, usage.ru_maxrss / 1024.0, rounds);
  return 0;
}
