#include "trace/simulator.h"

namespace llmcache::trace {

Simulator::Tier::Tier(cache::PolicyKind kind, uint64_t maxBytes)
    : policy_(cache::makePolicy(kind)), maxBytes_(maxBytes) {}

bool Simulator::Tier::lookup(const std::string& key) {
  auto it = index_.find(key);
  if (it == index_.end()) return false;
  policy_->onHit(it->second);
  return true;
}

void Simulator::Tier::insert(const std::string& key, uint64_t bytes, double cost) {
  if (bytes > maxBytes_ || maxBytes_ == 0) return;  // refused, as a tier refuses TooLarge
  uint32_t id;
  if (auto it = index_.find(key); it != index_.end()) {
    id = it->second;
    bytes_ -= bytesOf_[id];
    bytesOf_[id] = bytes;
    policy_->onUpdate(id, bytes, cost);
  } else {
    if (!free_.empty()) {
      id = free_.back();
      free_.pop_back();
      keyOf_[id] = key;
      bytesOf_[id] = bytes;
    } else {
      id = static_cast<uint32_t>(keyOf_.size());
      keyOf_.push_back(key);
      bytesOf_.push_back(bytes);
    }
    index_.emplace(key, id);
    policy_->onInsert(id, bytes, cost);
  }
  bytes_ += bytes;
  while (bytes_ > maxBytes_) {
    const uint32_t v = policy_->victim(id);  // never the new entry: it alone fits the bound
    policy_->onRemove(v);
    bytes_ -= bytesOf_[v];
    index_.erase(keyOf_[v]);
    keyOf_[v].clear();
    free_.push_back(v);
    ++evictions_;
  }
}

Simulator::Simulator(const SimOptions& o)
    : memory_(o.memoryPolicy, o.memoryBytes), disk_(o.diskPolicy, o.diskBytes) {}

void Simulator::access(const TraceEvent& e) {
  SimResult& r = result_;
  ++r.requests;
  r.bytesRequested += e.bytes;
  const double cost = e.cost > 0 ? e.cost : 0;
  r.costTotal += cost;
  r.latencyTotalMs += e.latencyMs;
  bool hit = false;
  if (memory_.lookup(e.key)) {
    ++r.memoryHits;
    hit = true;
  } else if (disk_.lookup(e.key)) {
    ++r.diskHits;
    hit = true;
    memory_.insert(e.key, e.bytes, e.cost);  // promotion
  } else {
    memory_.insert(e.key, e.bytes, e.cost);
    disk_.insert(e.key, e.bytes, e.cost);
  }
  if (hit) {
    ++r.hits;
    r.bytesHit += e.bytes;
    r.costSaved += cost;
    r.latencySavedMs += e.latencyMs;
  }
  r.memoryEvictions = memory_.evictions();
  r.diskEvictions = disk_.evictions();
}

SimResult simulate(const std::vector<TraceEvent>& events, const SimOptions& options) {
  Simulator sim(options);
  for (const auto& e : events) sim.access(e);
  return sim.result();
}

}  // namespace llmcache::trace
