// disk_bench: the disk tier at scale: start-up time and hit latency with N entries on disk.
//
// Fills DIR with N entry files (once; reused while DIR/filled-N exists), each a ~1 KB answer,
// written straight into the tier's layout (docs/disk-layout.md) without fsync, since filling is
// not what is measured. Then opens a DiskTier over DIR and reports how long until it serves
// (the constructor) and until it has counted every file (entryCount() == N), then the latency of
// random hits. Usage: disk_bench [N=1000000] [DIR=/tmp/llmcache-disk-bench] [lookups=20000] [sync]
// The tier counts the files in the background as `serve` opens it; `sync` counts them in the
// constructor instead (as tools and tests do).
// Run `sync; echo 3 > /proc/sys/vm/drop_caches` before it for a cold page cache.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "cache/codec.h"
#include "cache/disk/disk_tier.h"

using namespace llmcache;
using namespace llmcache::cache;
namespace fs = std::filesystem;
using Steady = std::chrono::steady_clock;

namespace {

std::string keyOf(size_t i) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "gpt-4o-mini_%016zx",
                static_cast<size_t>(i * 0x9E3779B97F4A7C15ull));
  return buf;
}

Entry entryOf(size_t i) {
  Entry e;
  char id[40];
  std::snprintf(id, sizeof id, "%032zx", i);
  e.cacheId = id;
  e.cacheKey = keyOf(i);
  e.requestHash = id;
  e.endpoint = "openai.chat";
  e.request = R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"Question )" +
              std::to_string(i) + R"("}]})";
  e.response =
      R"({"id":"chatcmpl-1","object":"chat.completion","model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":")" +
      std::string(800, static_cast<char>('a' + i % 26)) +
      R"("},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":200,"total_tokens":212}})";
  e.model = "gpt-4o-mini";
  e.platform = "openai";
  e.responseTimestamp = e.requestTimestamp = e.lastAccessed = fromUnixMillis(1767225600000);
  return e;
}

double ms(Steady::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

}  // namespace

int main(int argc, char** argv) {
  const size_t n = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1000000;
  const fs::path dir = argc > 2 ? argv[2] : "/tmp/llmcache-disk-bench";
  const size_t lookups = argc > 3 ? std::strtoull(argv[3], nullptr, 10) : 20000;
  const bool sync = argc > 4 && std::string(argv[4]) == "sync";
  const DiskTierOptions fillOptions{dir, n + 1, size_t{1} << 40, {}};
  DiskTierOptions options = fillOptions;
  options.scanInBackground = !sync;

  const fs::path marker = dir / ("filled-" + std::to_string(n));
  if (!fs::exists(marker)) {
    fs::remove_all(dir);
    { DiskTier init(fillOptions); }  // the layout: version file, entries/
    const auto t0 = Steady::now();
    for (size_t i = 0; i < n; ++i) {
      const Entry e = entryOf(i);
      const fs::path path = DiskTier::entryPath(dir, e.cacheKey);
      std::error_code ec;
      fs::create_directories(path.parent_path(), ec);
      const std::string bytes = encodeEntry(e, {});
      const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      if (fd < 0 || ::write(fd, bytes.data(), bytes.size()) != static_cast<ssize_t>(bytes.size())) {
        std::perror(path.c_str());
        return 1;
      }
      ::close(fd);
      if ((i + 1) % 100000 == 0) std::fprintf(stderr, "filled %zu\n", i + 1);
    }
    std::fprintf(stderr, "filled %zu entries in %.1f s\n", n, ms(Steady::now() - t0) / 1000);
    std::FILE* m = std::fopen(marker.c_str(), "w");
    if (m) std::fclose(m);
  }

  const auto t0 = Steady::now();
  DiskTier tier(options);
  const auto serving = Steady::now() - t0;
  // Hits while the count runs (what a client sees right after a restart).
  std::mt19937_64 early(7);
  std::vector<double> during;
  while (!tier.scanned()) {
    const auto a = Steady::now();
    auto r = tier.lookup(keyOf(early() % n));
    during.push_back(ms(Steady::now() - a));
    if (!r || !*r) {
      std::fprintf(stderr, "a lookup during the count missed\n");
      return 1;
    }
  }
  const auto counted = Steady::now() - t0;
  std::sort(during.begin(), during.end());
  if (!during.empty())
    std::printf("during the count: %zu hits, p50 %.3f ms, p99 %.3f ms\n", during.size(),
                during[during.size() / 2],
                during[std::min(during.size() - 1, during.size() * 99 / 100)]);

  std::mt19937_64 rng(42);
  std::vector<double> lat;
  lat.reserve(lookups);
  size_t found = 0;
  for (size_t k = 0; k < lookups; ++k) {
    const size_t i = rng() % n;
    const std::string key = keyOf(i);
    const auto a = Steady::now();
    auto r = tier.lookup(key);
    lat.push_back(ms(Steady::now() - a));
    if (r && *r) ++found;
  }
  std::sort(lat.begin(), lat.end());
  auto pct = [&](double p) {
    return lat[std::min(lat.size() - 1, static_cast<size_t>(p * lat.size()))];
  };
  std::printf(
      "disk tier (%s count), %zu entries on disk, %zu counted: serving after %.0f ms, all counted "
      "after %.0f ms; %zu random hits "
      "(%zu found): p50 %.3f ms, p99 %.3f ms, max %.3f ms\n",
      sync ? "synchronous" : "background", n, tier.entryCount(), ms(serving), ms(counted), lookups,
      found, pct(0.5), pct(0.99), lat.back());
  return found == lookups ? 0 : 1;
}
