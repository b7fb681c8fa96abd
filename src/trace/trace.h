#pragma once
// The trace format (docs/trace-format.md, version 1): one JSON object per line, each a request the
// cache saw (or, for a synthetic trace, would see): its key, time, the size of its answer as a
// tier stores it, what a miss costs (US dollars) and how long it takes, and the tenant hashed.
// Written by `llmcache trace export` (from the index) and `llmcache trace synth`, read by
// `llmcache trace replay` and by the sizing curves.
#include <cstdint>
#include <functional>
#include <istream>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace llmcache::trace {

inline constexpr int kTraceFormatVersion = 1;

struct TraceEvent {
  int64_t timeMs = 0;    // "t": Unix ms of the request
  std::string key;       // "key": the cache_key (or a synthetic one); what the tiers are keyed by
  uint64_t bytes = 0;    // "size": the answer's size as stored (the disk tier's encoded bytes)
  double cost = 0;       // "cost": US dollars a miss of this key costs upstream; 0: unknown
  double latencyMs = 0;  // "latency_ms": how long a miss takes upstream
  std::string tenant;    // "tenant": a hash of the tenant (16 hex), empty when unscoped
  std::string model;     // "model": the model id, for breakdowns; may be empty
  bool operator==(const TraceEvent&) const = default;
};

// The optional first line: {"format":"llmcache-trace","version":1,"source":...,"params":{...}}.
struct TraceHeader {
  std::string source;  // "synth", "export"
  std::string params;  // a JSON object (compact text) describing how the trace was made
};

// One line (without its '\n') for an event / a header.
std::string eventLine(const TraceEvent& event);
std::string headerLine(const TraceHeader& header);

// A 16-hex hash of a tenant for a trace (FNV-1a 64, not keyed: the index's tenant is already a
// keyed hash of the credential; this only keeps the trace from repeating it). "" stays "".
std::string hashTenant(std::string_view tenant);

// Reads a trace line by line: the header (when present) is skipped, blank lines too; each event
// goes to onEvent. Errors: InvalidArgument naming the line number and what is wrong (not JSON, a
// field missing or of the wrong type, a version other than 1).
Result<void> readTrace(std::istream& in, const std::function<void(TraceEvent&&)>& onEvent);
Result<std::vector<TraceEvent>> readTrace(std::istream& in);

}  // namespace llmcache::trace
