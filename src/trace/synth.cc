#include "trace/synth.h"

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <random>
#include <sstream>

namespace llmcache::trace {

namespace {

constexpr double kPi = 3.14159265358979323846;

uint64_t splitmix(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// A uniform double in [0, 1) from 53 bits.
double unit(uint64_t bits) { return static_cast<double>(bits >> 11) * 0x1.0p-53; }

// Draws from a 64-bit source, with this file's own distributions.
template <typename Next>
struct Draw {
  Next next;
  double uniform() { return unit(next()); }
  double normal() {                     // Box-Muller (one of the pair)
    const double u1 = 1.0 - uniform();  // (0, 1]
    const double u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2 * kPi * u2);
  }
  double logNormal(double median, double sigma) {
    return median <= 0 ? 0 : median * std::exp(sigma * normal());
  }
};

std::string hex128(uint64_t a, uint64_t b) {
  char buf[33];
  std::snprintf(buf, sizeof buf, "%016" PRIx64 "%016" PRIx64, a, b);
  return buf;
}

std::string number(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

}  // namespace

std::vector<ModelProfile> builtinModels() {
  // Prices: the providers' list prices per million tokens (src/upstream/pricing.json has the
  // same for these models). Sizes: a chat completion's JSON is ~700 bytes of envelope plus ~4.2
  // bytes per output token; an embedding of 1536 floats is ~8.2 KB in base64 (the SDKs' default).
  // Latencies: time to the last token at typical output speeds.
  return {
      {"gpt-4o-mini", 0, 600, 0.8, 250, 0.7, 0, 700, 4.2, 0.15, 0.60, 300, 12, 0},
      {"gpt-4o", 0, 800, 0.8, 400, 0.7, 0, 700, 4.2, 2.50, 10.00, 400, 18, 0},
      {"claude-sonnet-4", 0, 800, 0.8, 450, 0.7, 0, 600, 4.2, 3.00, 15.00, 500, 20, 0},
      {"o1", 0, 1500, 0.8, 700, 0.6, 3.0, 700, 4.2, 15.00, 60.00, 3000, 20, 0},
      {"text-embedding-3-small", 0, 300, 0.6, 0, 0, 0, 8500, 0, 0.02, 0, 150, 0, 0.1},
  };
}

Result<std::vector<ModelProfile>> parseMix(const std::string& mix) {
  std::string spec = mix;
  if (mix == "chat")
    spec = "gpt-4o-mini=55,gpt-4o=20,claude-sonnet-4=10,o1=3,text-embedding-3-small=12";
  else if (mix == "reasoning")
    spec = "gpt-4o-mini=20,gpt-4o=20,claude-sonnet-4=15,o1=35,text-embedding-3-small=10";
  std::vector<ModelProfile> models = builtinModels();
  std::stringstream in(spec);
  std::string item;
  double total = 0;
  while (std::getline(in, item, ',')) {
    const auto eq = item.find('=');
    if (eq == std::string::npos)
      return makeError(Errc::InvalidArgument,
                       "--mix: \"" + item + "\" is not model=weight (or use chat, reasoning)");
    const std::string name = item.substr(0, eq);
    auto it = std::find_if(models.begin(), models.end(),
                           [&](const ModelProfile& m) { return m.model == name; });
    if (it == models.end()) {
      std::string known;
      for (const auto& m : models) known += (known.empty() ? "" : ", ") + m.model;
      return makeError(Errc::InvalidArgument,
                       "--mix: unknown model \"" + name + "\" (known: " + known + ")");
    }
    char* end = nullptr;
    const std::string w = item.substr(eq + 1);
    const double weight = std::strtod(w.c_str(), &end);
    if (w.empty() || *end != '\0' || !(weight >= 0) || std::isinf(weight))
      return makeError(Errc::InvalidArgument,
                       "--mix: weight \"" + w + "\" of " + name + " is not a non-negative number");
    it->share = weight;
    total += weight;
  }
  if (!(total > 0)) return makeError(Errc::InvalidArgument, "--mix: all weights are 0");
  std::vector<ModelProfile> out;
  for (auto& m : models)
    if (m.share > 0) {
      m.share /= total;
      out.push_back(m);
    }
  return out;
}

std::string paramsJson(const SynthParams& p) {
  return "{\"seed\":" + std::to_string(p.seed) + ",\"requests\":" + std::to_string(p.requests) +
         ",\"keys\":" + std::to_string(p.keys) + ",\"zipf\":" + number(p.zipf) +
         ",\"one_hit_wonders\":" + number(p.oneHitWonders) + ",\"days\":" + number(p.days) +
         ",\"daily_amplitude\":" + number(p.dailyAmplitude) + ",\"drift\":" + number(p.drift) +
         ",\"tenants\":" + std::to_string(p.tenants) + ",\"mix\":\"" + p.mix +
         "\",\"start_ms\":" + std::to_string(p.startMs) + "}";
}

Result<void> synthesize(const SynthParams& p,
                        const std::function<void(const TraceEvent&)>& onEvent) {
  auto bad = [](const std::string& m) { return makeError(Errc::InvalidArgument, m); };
  if (p.keys == 0) return bad("--keys must be at least 1");
  if (!(p.zipf >= 0 && p.zipf <= 4)) return bad("--zipf must be in [0, 4]");
  if (!(p.oneHitWonders >= 0 && p.oneHitWonders <= 1))
    return bad("--one-hit-wonders must be in [0, 1]");
  if (!(p.days > 0 && p.days <= 3650)) return bad("--days must be in (0, 3650]");
  if (!(p.dailyAmplitude >= 0 && p.dailyAmplitude < 1))
    return bad("--daily-amplitude must be in [0, 1)");
  if (!(p.drift >= 0 && p.drift <= 1)) return bad("--drift must be in [0, 1]");
  if (p.tenants == 0) return bad("--tenants must be at least 1");
  auto models = parseMix(p.mix);
  if (!models) return models.error();

  std::mt19937_64 rng(p.seed);
  Draw<std::function<uint64_t()>> draw{[&rng] { return rng(); }};

  // Request times: rejection-sampled against the daily rate 1 + a*cos(2 pi (hour - 14) / 24).
  const double spanMs = p.days * 86400000.0;
  std::vector<double> times;
  times.reserve(p.requests);
  while (times.size() < p.requests) {
    const double t = draw.uniform() * spanMs;
    const double hour = std::fmod(t / 3600000.0, 24.0);
    const double rate = 1 + p.dailyAmplitude * std::cos(2 * kPi * (hour - 14) / 24);
    if (draw.uniform() * (1 + p.dailyAmplitude) < rate) times.push_back(t);
  }
  std::sort(times.begin(), times.end());

  // Zipf over ranks 1..keys: the cumulative weights, searched with a uniform draw.
  std::vector<double> cdf(p.keys);
  double sum = 0;
  for (uint64_t r = 0; r < p.keys; ++r)
    cdf[r] = sum += std::pow(static_cast<double>(r + 1), -p.zipf);
  const uint64_t driftRanks =
      static_cast<uint64_t>(std::llround(p.drift * static_cast<double>(p.keys)));

  uint64_t oneHitSerial = 0;
  for (double t : times) {
    uint64_t keyId;
    if (draw.uniform() < p.oneHitWonders) {
      keyId = (uint64_t{1} << 62) + oneHitSerial++;  // never asked again
    } else {
      const double u = draw.uniform() * sum;
      const uint64_t rank =
          static_cast<uint64_t>(std::upper_bound(cdf.begin(), cdf.end(), u) - cdf.begin());
      const uint64_t r = std::min(rank, p.keys - 1);
      const uint64_t day = static_cast<uint64_t>(t / 86400000.0);
      // The hottest `drift` share of ranks are new keys each day (today's topics).
      keyId = r < driftRanks ? (uint64_t{1} << 61) + day * p.keys + r : r;
    }
    // Everything about a key follows from (seed, keyId): the same key always has the same answer.
    uint64_t state = p.seed * 0x2545f4914f6cdd1dull ^ keyId * 0x9e3779b97f4a7c15ull;
    Draw<std::function<uint64_t()>> kd{[&state] { return splitmix(state); }};
    const uint64_t h1 = splitmix(state), h2 = splitmix(state);
    double pick = kd.uniform();
    const ModelProfile* m = &models->back();
    for (const auto& candidate : *models) {
      if (pick < candidate.share) {
        m = &candidate;
        break;
      }
      pick -= candidate.share;
    }
    const double in = std::max(1.0, std::round(kd.logNormal(m->inMedian, m->inSigma)));
    const double out =
        m->outMedian > 0 ? std::max(1.0, std::round(kd.logNormal(m->outMedian, m->outSigma))) : 0;
    const double billedOut = out * (1 + m->reasoningFactor);
    TraceEvent e;
    e.timeMs = p.startMs + static_cast<int64_t>(t);
    e.model = m->model;
    e.key = m->model + ":" + hex128(h1, h2);
    e.bytes = static_cast<uint64_t>(std::llround(m->baseBytes + m->bytesPerToken * out));
    e.cost = (in * m->dollarsPerMIn + billedOut * m->dollarsPerMOut) / 1e6;
    e.latencyMs = std::round(m->baseLatencyMs + m->msPerToken * billedOut + m->msPerInToken * in);
    e.tenant = hashTenant("synth-tenant-" + std::to_string(keyId % p.tenants));
    onEvent(e);
  }
  return {};
}

}  // namespace llmcache::trace
