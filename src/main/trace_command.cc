#include "main/trace_command.h"

#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <limits>
#include <sstream>
#include <string>
#include <unordered_set>
#include <vector>

#include "cache/eviction.h"
#include "common/clock.h"
#include "index/index.h"
#include "trace/simulator.h"
#include "trace/synth.h"
#include "trace/trace.h"

namespace llmcache::cli {

namespace {

using trace::TraceEvent;

// A byte size: "1048576", "512K", "64M", "2G" (powers of 1024), or "0.25x": that share of the
// trace's footprint (the bytes of its distinct keys). footprint 0: "x" sizes are not allowed.
std::optional<uint64_t> parseSize(const std::string& text, uint64_t footprint) {
  if (text.empty()) return std::nullopt;
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (end == text.c_str() || !(v >= 0) || std::isinf(v)) return std::nullopt;
  const std::string suffix(end);
  double mult = 1;
  if (suffix == "" || suffix == "B")
    mult = 1;
  else if (suffix == "K" || suffix == "KiB")
    mult = 1024.0;
  else if (suffix == "M" || suffix == "MiB")
    mult = 1024.0 * 1024;
  else if (suffix == "G" || suffix == "GiB")
    mult = 1024.0 * 1024 * 1024;
  else if (suffix == "x")
    mult = static_cast<double>(footprint);
  else
    return std::nullopt;
  return static_cast<uint64_t>(std::llround(v * mult));
}

std::vector<std::string> splitList(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) out.push_back(item);
  return out;
}

std::string humanBytes(uint64_t b) {
  char buf[32];
  if (b >= (uint64_t{1} << 30))
    std::snprintf(buf, sizeof buf, "%.2f GiB", b / 1073741824.0);
  else if (b >= (uint64_t{1} << 20))
    std::snprintf(buf, sizeof buf, "%.1f MiB", b / 1048576.0);
  else if (b >= 1024)
    std::snprintf(buf, sizeof buf, "%.1f KiB", b / 1024.0);
  else
    std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(b));
  return buf;
}

struct ReplayArgs {
  std::string file;
  std::string policy = "default";
  std::string memoryPolicy, diskPolicy;
  std::string memory = "256M", disk = "0";
  bool json = false;
};

int runReplay(const ReplayArgs& a) {
  std::ifstream in(a.file, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "llmcache trace replay: cannot read %s\n", a.file.c_str());
    return 2;
  }
  auto events = trace::readTrace(in);
  if (!events) {
    std::fprintf(stderr, "llmcache trace replay: %s: %s\n", a.file.c_str(),
                 events.error().message.c_str());
    return 2;
  }
  uint64_t footprint = 0;
  {
    std::unordered_set<std::string_view> seen;
    for (const auto& e : *events)
      if (seen.insert(e.key).second) footprint += e.bytes;
  }
  // Each list: "all" or names; "default" stays a name of its own in the output.
  auto policies = [&](const std::string& list) -> std::optional<std::vector<std::string>> {
    std::vector<std::string> names =
        list == "all" ? std::vector<std::string>{"lru", "sieve", "gdsf", "cost-sieve"}
                      : splitList(list);
    for (const auto& n : names)
      if (!cache::parsePolicy(n)) {
        std::fprintf(stderr, "llmcache trace replay: unknown policy \"%s\" (known: %s, all)\n",
                     n.c_str(), cache::policyNames().c_str());
        return std::nullopt;
      }
    return names;
  };
  auto sizes = [&](const std::string& list,
                   const char* flag) -> std::optional<std::vector<uint64_t>> {
    std::vector<uint64_t> out;
    for (const auto& s : splitList(list)) {
      auto v = parseSize(s, footprint);
      if (!v) {
        std::fprintf(stderr,
                     "llmcache trace replay: %s \"%s\" is not a size (bytes, with K, M or G, or a "
                     "share of the trace's footprint such as 0.25x)\n",
                     flag, s.c_str());
        return std::nullopt;
      }
      out.push_back(*v);
    }
    return out;
  };
  auto names = policies(a.policy);
  auto memSizes = sizes(a.memory, "--memory");
  auto diskSizes = sizes(a.disk, "--disk");
  if (!names || !memSizes || !diskSizes) return 2;
  std::optional<std::vector<std::string>> memNames, diskNames;
  if (!a.memoryPolicy.empty() && !(memNames = policies(a.memoryPolicy))) return 2;
  if (!a.diskPolicy.empty() && !(diskNames = policies(a.diskPolicy))) return 2;

  if (!a.json) {
    std::printf("trace %s: %zu requests, footprint %s\n", a.file.c_str(), events->size(),
                humanBytes(footprint).c_str());
    std::printf("%-8s %-8s %10s %10s %8s %8s %12s %8s %14s\n", "memory", "disk", "mem size",
                "disk size", "hit", "byte hit", "$ saved", "$ share", "latency saved");
  }
  for (uint64_t mem : *memSizes)
    for (uint64_t disk : *diskSizes)
      for (const auto& name : *names) {
        const std::string& mn = memNames ? memNames->front() : name;
        const std::string& dn = diskNames ? diskNames->front() : name;
        trace::SimOptions o{*cache::parsePolicy(mn), *cache::parsePolicy(dn), mem, disk};
        const auto r = trace::simulate(*events, o);
        const double share = r.costTotal > 0 ? r.costSaved / r.costTotal : 0;
        if (a.json) {
          std::printf(
              "{\"memory_policy\":\"%s\",\"disk_policy\":\"%s\",\"memory_bytes\":%llu,"
              "\"disk_bytes\":%llu,\"requests\":%llu,\"hits\":%llu,\"memory_hits\":%llu,"
              "\"disk_hits\":%llu,\"hit_rate\":%.6f,\"byte_hit_rate\":%.6f,\"cost_saved\":%.6f,"
              "\"cost_total\":%.6f,\"latency_saved_ms\":%.0f}\n",
              mn.c_str(), dn.c_str(), static_cast<unsigned long long>(mem),
              static_cast<unsigned long long>(disk), static_cast<unsigned long long>(r.requests),
              static_cast<unsigned long long>(r.hits),
              static_cast<unsigned long long>(r.memoryHits),
              static_cast<unsigned long long>(r.diskHits), r.hitRate(), r.byteHitRate(),
              r.costSaved, r.costTotal, r.latencySavedMs);
        } else {
          std::printf("%-8s %-8s %10s %10s %7.2f%% %7.2f%% %12.4f %7.2f%% %12.1f s\n", mn.c_str(),
                      dn.c_str(), humanBytes(mem).c_str(), humanBytes(disk).c_str(),
                      100 * r.hitRate(), 100 * r.byteHitRate(), r.costSaved, 100 * share,
                      r.latencySavedMs / 1000);
        }
      }
  return 0;
}

int runSynth(const trace::SynthParams& p, const std::string& out) {
  std::ofstream file;
  if (!out.empty() && out != "-") {
    file.open(out, std::ios::binary | std::ios::trunc);
    if (!file) {
      std::fprintf(stderr, "llmcache trace synth: cannot write %s\n", out.c_str());
      return 2;
    }
  }
  std::ostream& os = file.is_open() ? static_cast<std::ostream&>(file) : std::cout;
  std::string buf = trace::headerLine({"synth", trace::paramsJson(p)}) + "\n";
  auto r = trace::synthesize(p, [&](const TraceEvent& e) {
    buf += trace::eventLine(e);
    buf += '\n';
    if (buf.size() > (1 << 16)) {
      os << buf;
      buf.clear();
    }
  });
  if (!r) {
    std::fprintf(stderr, "llmcache trace synth: %s\n", r.error().message.c_str());
    return 2;
  }
  os << buf;
  os.flush();
  if (!os) {
    std::fprintf(stderr, "llmcache trace synth: write failed\n");
    return 1;
  }
  return 0;
}

// A time bound: Unix ms or ISO 8601 UTC.
std::optional<int64_t> parseTime(const std::string& s) {
  if (s.empty()) return std::nullopt;
  TimePoint t;
  if (parseIso8601(s, t)) return toUnixMillis(t);
  char* end = nullptr;
  const long long v = std::strtoll(s.c_str(), &end, 10);
  if (*end != '\0') return std::nullopt;
  return v;
}

// The events of [since, until) that asked the cache for a key (HIT, MISS, COALESCED), each with
// its entry's size, cost and latency (a HIT row standing for n merged hits is n lines).
int runExport(const std::string& cacheDir, const std::string& since, const std::string& until,
              const std::string& out) {
  const auto from = since.empty() ? std::optional<int64_t>(0) : parseTime(since);
  const auto to = until.empty() ? std::optional<int64_t>(std::numeric_limits<int64_t>::max() / 2)
                                : parseTime(until);
  if (!from || !to) {
    std::fprintf(stderr,
                 "llmcache trace export: --since / --until take Unix ms or an ISO 8601 UTC time "
                 "(2026-01-01T00:00:00Z)\n");
    return 2;
  }
  const auto path = index::Index::defaultPath(cacheDir);
  if (!std::filesystem::exists(path)) {
    std::fprintf(stderr, "llmcache trace export: no index at %s\n", path.c_str());
    return 2;
  }
  auto opened = index::Index::open(path, {.integrityCheck = false});
  if (!opened) {
    std::fprintf(stderr, "llmcache trace export: %s: %s\n", path.c_str(),
                 opened.error().message.c_str());
    return 2;
  }
  std::ofstream file;
  if (!out.empty() && out != "-") {
    file.open(out, std::ios::binary | std::ios::trunc);
    if (!file) {
      std::fprintf(stderr, "llmcache trace export: cannot write %s\n", out.c_str());
      return 2;
    }
  }
  std::ostream& os = file.is_open() ? static_cast<std::ostream&>(file) : std::cout;
  os << trace::headerLine({"export", "{\"since_ms\":" + std::to_string(*from) +
                                         ",\"until_ms\":" + std::to_string(*to) + "}"})
     << "\n";
  auto asInt = [](const index::SqlValue& v) -> int64_t {
    if (auto* i = std::get_if<int64_t>(&v)) return *i;
    if (auto* d = std::get_if<double>(&v)) return static_cast<int64_t>(*d);
    return 0;
  };
  auto asDouble = [](const index::SqlValue& v) -> std::optional<double> {
    if (auto* d = std::get_if<double>(&v)) return *d;
    if (auto* i = std::get_if<int64_t>(&v)) return static_cast<double>(*i);
    return std::nullopt;
  };
  auto asText = [](const index::SqlValue& v) -> std::string {
    if (auto* s = std::get_if<std::string>(&v)) return *s;
    return {};
  };
  size_t lines = 0;
  auto r = (*opened)->query(
      "SELECT e.time, e.cache_key, e.outcome, e.requests, e.latency_ms, e.cost, e.cost_saved, "
      "e.latency_saved_ms, e.tenant, e.model, e.tokens_out, n.size_stored, n.cost_total, "
      "n.latency_ms FROM events e LEFT JOIN entries n ON n.cache_key = e.cache_key "
      "WHERE e.id >= ?1 AND e.id < ?2 AND e.cache_key != '' "
      "AND e.outcome IN ('HIT', 'MISS', 'COALESCED') ORDER BY e.id",
      {index::Index::eventIdBound(*from), index::Index::eventIdBound(*to)},
      [&](const std::vector<index::SqlValue>& row) {
        const int64_t requests = std::max<int64_t>(1, asInt(row[3]));
        const std::string outcome = asText(row[2]);
        const bool miss = outcome == "MISS";
        TraceEvent e;
        e.timeMs = asInt(row[0]);
        e.key = asText(row[1]);
        e.tenant = trace::hashTenant(asText(row[8]));
        e.model = asText(row[9]);
        // The entry's own figures when its row is there; else the event's (a miss spent what a
        // miss costs; a hit saved it), per request of a merged row. An unknown size is
        // estimated from the answer's tokens (docs/trace-format.md).
        const int64_t stored = asInt(row[11]);
        e.bytes =
            stored > 0
                ? static_cast<uint64_t>(stored)
                : static_cast<uint64_t>(700 + 4 * std::max<int64_t>(0, asInt(row[10]) / requests));
        const auto entryCost = asDouble(row[12]);
        const auto entryLatency = asDouble(row[13]);
        e.cost = entryCost ? *entryCost : asDouble(miss ? row[5] : row[6]).value_or(0) / requests;
        e.latencyMs =
            entryLatency ? *entryLatency : asDouble(miss ? row[4] : row[7]).value_or(0) / requests;
        const std::string line = trace::eventLine(e) + "\n";
        for (int64_t i = 0; i < requests; ++i) os << line;
        lines += static_cast<size_t>(requests);
      });
  if (!r) {
    std::fprintf(stderr, "llmcache trace export: %s\n", r.error().message.c_str());
    return 1;
  }
  os.flush();
  std::fprintf(stderr, "llmcache trace export: %zu events\n", lines);
  return os ? 0 : 1;
}

}  // namespace

void addTraceCommand(CLI::App& app, int& exitCode) {
  auto* cmd = app.add_subcommand(
      "trace", "Traces of cache requests: export from the index, synthesize, replay offline");
  cmd->require_subcommand(1);

  auto* exp = cmd->add_subcommand("export", "Write a window of the index's events as a trace");
  auto cacheDir = std::make_shared<std::string>("./.llmcache");
  auto since = std::make_shared<std::string>();
  auto until = std::make_shared<std::string>();
  auto expOut = std::make_shared<std::string>("-");
  exp->add_option("--cache-dir", *cacheDir, "CACHE_DIR holding index.sqlite")
      ->envname("CACHE_DIR")
      ->capture_default_str();
  exp->add_option("--since", *since, "first instant (Unix ms or ISO 8601 UTC); default: all");
  exp->add_option("--until", *until, "end instant, excluded; default: now and later");
  exp->add_option("--out,-o", *expOut, "file to write; - for stdout")->capture_default_str();
  exp->callback([&exitCode, cacheDir, since, until, expOut] {
    exitCode = runExport(*cacheDir, *since, *until, *expOut);
  });

  auto* syn = cmd->add_subcommand("synth", "Write a synthetic trace (docs/trace-format.md)");
  auto p = std::make_shared<trace::SynthParams>();
  auto synOut = std::make_shared<std::string>("-");
  syn->add_option("--seed", p->seed, "random seed: the same seed, the same trace")->required();
  syn->add_option("--requests", p->requests, "requests in the trace")->capture_default_str();
  syn->add_option("--keys", p->keys, "distinct repeatable keys (the Zipf population)")
      ->capture_default_str();
  syn->add_option("--zipf", p->zipf, "popularity exponent")->capture_default_str();
  syn->add_option("--one-hit-wonders", p->oneHitWonders, "share of requests for a key asked once")
      ->capture_default_str();
  syn->add_option("--days", p->days, "days the trace spans")->capture_default_str();
  syn->add_option("--daily-amplitude", p->dailyAmplitude, "daily traffic swing, in [0, 1)")
      ->capture_default_str();
  syn->add_option("--drift", p->drift, "share of the hottest ranks that are new keys each day")
      ->capture_default_str();
  syn->add_option("--tenants", p->tenants, "tenants the keys are spread over")
      ->capture_default_str();
  syn->add_option("--mix", p->mix, "chat, reasoning, or model=weight,... over the built-in models")
      ->capture_default_str();
  syn->add_option("--start-ms", p->startMs, "Unix ms of the trace's start")->capture_default_str();
  syn->add_option("--out,-o", *synOut, "file to write; - for stdout")->capture_default_str();
  syn->callback([&exitCode, p, synOut] { exitCode = runSynth(*p, *synOut); });

  auto* rep = cmd->add_subcommand(
      "replay", "Simulate the memory and disk tiers on a trace (docs/eviction.md)");
  auto a = std::make_shared<ReplayArgs>();
  rep->add_option("file", a->file, "trace file (JSONL)")->required();
  rep->add_option("--policy", a->policy,
                  "eviction policy of both tiers: " + cache::policyNames() +
                      ", all, or a comma list (one run each)")
      ->capture_default_str();
  rep->add_option("--memory-policy", a->memoryPolicy, "the memory tier's, overriding --policy");
  rep->add_option("--disk-policy", a->diskPolicy, "the disk tier's, overriding --policy");
  rep->add_option("--memory", a->memory,
                  "memory tier bytes (K/M/G suffixes, or 0.25x of the trace's footprint); a comma "
                  "list runs each")
      ->capture_default_str();
  rep->add_option("--disk", a->disk, "disk tier bytes, as --memory; 0: no disk tier")
      ->capture_default_str();
  rep->add_flag(
      "--json", a->json,
      "one JSON object per run (hit_rate, byte_hit_rate, cost_saved, latency_saved_ms, ...)");
  rep->callback([&exitCode, a] { exitCode = runReplay(*a); });
}

}  // namespace llmcache::cli
