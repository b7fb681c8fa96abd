#pragma once
// The offline replayer behind `llmcache trace replay`: a memory tier over a disk tier, each
// bounded by bytes and ordered by the same EvictionPolicy classes the real tiers use
// (cache/eviction.h). Per request: a memory hit; else a disk hit, promoted into memory (as
// TieredCache promotes); else a miss, stored in both tiers (as TieredCache stores: memory now,
// disk behind). A tier refuses an entry larger than its whole bound. A bound of 0 turns the
// tier off.
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "cache/eviction.h"
#include "trace/trace.h"

namespace llmcache::trace {

struct SimOptions {
  cache::PolicyKind memoryPolicy = cache::PolicyKind::Lru;
  cache::PolicyKind diskPolicy = cache::PolicyKind::Lru;
  uint64_t memoryBytes = 0;
  uint64_t diskBytes = 0;
};

struct SimResult {
  uint64_t requests = 0;
  uint64_t hits = 0;  // memory + disk
  uint64_t memoryHits = 0;
  uint64_t diskHits = 0;
  uint64_t bytesRequested = 0;
  uint64_t bytesHit = 0;
  double costTotal = 0;       // dollars all requests would cost with no cache
  double costSaved = 0;       // dollars of the hits' misses avoided
  double latencyTotalMs = 0;  // upstream time of all requests with no cache
  double latencySavedMs = 0;  // upstream time the hits avoided
  uint64_t memoryEvictions = 0;
  uint64_t diskEvictions = 0;

  double hitRate() const { return requests ? double(hits) / double(requests) : 0; }
  double byteHitRate() const {
    return bytesRequested ? double(bytesHit) / double(bytesRequested) : 0;
  }
};

// A replay in progress: feed it events in time order.
class Simulator {
 public:
  explicit Simulator(const SimOptions& options);
  void access(const TraceEvent& event);
  const SimResult& result() const { return result_; }

 private:
  // One byte-bounded tier over a policy; keys map to reusable slot ids.
  class Tier {
   public:
    Tier(cache::PolicyKind kind, uint64_t maxBytes);
    bool lookup(const std::string& key);  // a hit tells the policy
    void insert(const std::string& key, uint64_t bytes, double cost);
    uint64_t evictions() const { return evictions_; }

   private:
    std::unique_ptr<cache::EvictionPolicy> policy_;
    uint64_t maxBytes_;
    uint64_t bytes_ = 0;
    uint64_t evictions_ = 0;
    std::unordered_map<std::string, uint32_t> index_;
    std::vector<std::string> keyOf_;
    std::vector<uint64_t> bytesOf_;
    std::vector<uint32_t> free_;
  };
  Tier memory_;
  Tier disk_;
  SimResult result_;
};

SimResult simulate(const std::vector<TraceEvent>& events, const SimOptions& options);

}  // namespace llmcache::trace
