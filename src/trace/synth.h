#pragma once
// The synthetic trace generator behind `llmcache trace synth` (docs/trace-format.md, "Synthetic
// traces", documents every parameter and the model table). Deterministic: one seed and one set
// of parameters give the same bytes on every run and machine (std::mt19937_64 is specified by
// the standard; the distributions are this file's own, not std::'s, whose algorithms vary).
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/result.h"
#include "trace/trace.h"

namespace llmcache::trace {

// One model of a mix: its share of the keys and how its answers look. Token counts are
// log-normal (median, sigma of the log); an answer's stored size is base + bytesPerToken * the
// visible output tokens; a miss costs the model's prices on input + output (+ hidden reasoning)
// tokens and takes baseLatency + msPerToken * all output tokens.
struct ModelProfile {
  std::string model;
  double share = 0;  // relative weight in the mix
  double inMedian = 0, inSigma = 0;
  double outMedian = 0, outSigma = 0;  // visible output tokens (0: an embedding)
  double reasoningFactor = 0;          // hidden reasoning tokens = factor * visible output
  double baseBytes = 0, bytesPerToken = 0;
  double dollarsPerMIn = 0, dollarsPerMOut = 0;
  double baseLatencyMs = 0, msPerToken = 0, msPerInToken = 0;
};

// The built-in profiles (gpt-4o-mini, gpt-4o, claude-sonnet-4, o1, text-embedding-3-small) with
// share 0; and the named mixes "chat" and "reasoning".
std::vector<ModelProfile> builtinModels();
// "chat", "reasoning", or "model=weight,model=weight,..." over the built-in models.
// InvalidArgument for an unknown mix or model, a bad weight, or all weights 0.
Result<std::vector<ModelProfile>> parseMix(const std::string& mix);

struct SynthParams {
  uint64_t seed = 1;
  uint64_t requests = 100000;
  uint64_t keys = 20000;            // distinct repeatable keys (the Zipf population)
  double zipf = 0.9;                // popularity exponent: rank r (from 1) has weight r^-zipf
  double oneHitWonders = 0.3;       // share of requests for a key asked exactly once
  double days = 1;                  // the trace spans this many days
  double dailyAmplitude = 0.5;      // traffic at 14:00 UTC is (1+a)/(1-a) times that at 02:00
  double drift = 0.1;               // share of the hottest ranks that are new keys each day
  uint64_t tenants = 8;             // keys are spread over this many tenants
  std::string mix = "chat";         // parseMix()
  int64_t startMs = 1767225600000;  // 2026-01-01T00:00:00Z
};

// The header's params object for p (compact JSON).
std::string paramsJson(const SynthParams& p);

// Generates the trace, in time order, calling onEvent for each request. InvalidArgument for a
// parameter out of range (named in the message).
Result<void> synthesize(const SynthParams& p,
                        const std::function<void(const TraceEvent&)>& onEvent);

}  // namespace llmcache::trace
