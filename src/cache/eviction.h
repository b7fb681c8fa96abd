#pragma once
// EvictionPolicy: which entry a bounded tier drops next. The memory and disk tiers and the trace
// simulator (src/trace) all use these classes, so what `llmcache trace replay` measures is what
// the tiers do (docs/eviction.md).
//
// A policy sees small integer slot ids, never keys: the tier maps its keys to slots (reusing a
// slot once its entry is removed) and tells the policy of every insert, hit and removal. The
// tier decides when to evict (its bounds); the policy decides whom. Not thread-safe: the tier
// calls it under the lock that guards its slots.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace llmcache::cache {

// The policies. The names are the values of CACHE_MEMORY_POLICY / CACHE_DISK_POLICY and of
// `llmcache trace replay --policy` (persistent in configuration files: never renamed).
enum class PolicyKind : uint8_t {
  Lru,    // least recently used (the tiers' only policy before issue 21)
  Sieve,  // SIEVE (NSDI 2024): a FIFO with one visited bit and a moving hand
  Gdsf,   // GreedyDual-Size-Frequency with the cost of a miss as the value: money per byte
};
inline constexpr PolicyKind kAllPolicies[] = {PolicyKind::Lru, PolicyKind::Sieve, PolicyKind::Gdsf};
// The policy `default` names (docs/eviction.md: the one that saved the most money on the
// synthetic traces without losing more than 2% hit rate to the best one on any of them).
inline constexpr PolicyKind kDefaultPolicy = PolicyKind::Gdsf;

std::string_view policyName(PolicyKind kind);  // "lru", "sieve", "gdsf"
// A name above, or "default" (kDefaultPolicy); std::nullopt for anything else.
std::optional<PolicyKind> parsePolicy(std::string_view name);
// "lru, sieve, gdsf, default": for error messages.
std::string policyNames();

// The value of an entry whose miss cost is unknown (0: unpriced model, an entry from before
// costs were kept, a disk file counted at open): its size times this, about what a typical chat
// answer costs per stored byte (docs/eviction.md).
inline constexpr double kFallbackDollarsPerByte = 2e-6;

class EvictionPolicy {
 public:
  using Id = uint32_t;
  virtual ~EvictionPolicy() = default;
  virtual PolicyKind kind() const = 0;

  // id now holds an entry of `bytes` whose miss costs `cost` US dollars (<= 0: unknown). id must
  // not be held already. cold: the entry is older than every entry held (a disk file counted at
  // open, inserted newest first): it goes where the next victims are, for policies with an order.
  virtual void onInsert(Id id, uint64_t bytes, double cost, bool cold = false) = 0;
  // id was read.
  virtual void onHit(Id id) = 0;
  // id's entry was replaced by a new one (same key): a write that counts as a use.
  virtual void onUpdate(Id id, uint64_t bytes, double cost) {
    onRemove(id);
    onInsert(id, bytes, cost);
  }
  // id is no longer held (erased or evicted). id must be held.
  virtual void onRemove(Id id) = 0;
  // The id to evict next, still held (the caller removes it with onRemove), never `spare` (the
  // entry just inserted: a tier keeps the entry it was asked to store, which alone fits its
  // bounds). Precondition: some held id other than spare. May change internal state (SIEVE's
  // hand, GDSF's inflation).
  static constexpr Id kNone = UINT32_MAX;
  virtual Id victim(Id spare = kNone) = 0;
  virtual size_t size() const = 0;
};

std::unique_ptr<EvictionPolicy> makePolicy(PolicyKind kind);

}  // namespace llmcache::cache
