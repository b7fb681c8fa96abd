#include "cache/eviction.h"

#include <limits>

namespace llmcache::cache {

std::string_view policyName(PolicyKind kind) {
  switch (kind) {
    case PolicyKind::Lru:
      return "lru";
    case PolicyKind::Sieve:
      return "sieve";
    case PolicyKind::Gdsf:
      return "gdsf";
    case PolicyKind::CostSieve:
      return "cost-sieve";
  }
  return "?";
}

std::optional<PolicyKind> parsePolicy(std::string_view name) {
  if (name == "default") return kDefaultPolicy;
  for (PolicyKind k : kAllPolicies)
    if (policyName(k) == name) return k;
  return std::nullopt;
}

std::string policyNames() {
  std::string s;
  for (PolicyKind k : kAllPolicies) {
    s += policyName(k);
    s += ", ";
  }
  return s + "default";
}

namespace {

constexpr uint32_t kNil = std::numeric_limits<uint32_t>::max();

// A doubly linked list over slot ids in arrays (no allocation per entry once the arrays have
// grown to the tier's size): head is the newest end, tail the oldest.
class IdList {
 public:
  void grow(uint32_t id) {
    if (id >= prev_.size()) {
      prev_.resize(id + 1, kNil);
      next_.resize(id + 1, kNil);
    }
  }
  void pushFront(uint32_t id) {
    grow(id);
    prev_[id] = kNil;
    next_[id] = head_;
    if (head_ != kNil) prev_[head_] = id;
    head_ = id;
    if (tail_ == kNil) tail_ = id;
    ++size_;
  }
  void pushBack(uint32_t id) {
    grow(id);
    next_[id] = kNil;
    prev_[id] = tail_;
    if (tail_ != kNil) next_[tail_] = id;
    tail_ = id;
    if (head_ == kNil) head_ = id;
    ++size_;
  }
  void unlink(uint32_t id) {
    const uint32_t p = prev_[id], n = next_[id];
    if (p != kNil)
      next_[p] = n;
    else
      head_ = n;
    if (n != kNil)
      prev_[n] = p;
    else
      tail_ = p;
    --size_;
  }
  void moveToFront(uint32_t id) {
    if (head_ == id) return;
    unlink(id);
    pushFront(id);
  }
  uint32_t head() const { return head_; }
  uint32_t tail() const { return tail_; }
  uint32_t prev(uint32_t id) const { return prev_[id]; }  // toward the head
  size_t size() const { return size_; }

 private:
  std::vector<uint32_t> prev_, next_;
  uint32_t head_ = kNil, tail_ = kNil;
  size_t size_ = 0;
};

class LruPolicy final : public EvictionPolicy {
 public:
  PolicyKind kind() const override { return PolicyKind::Lru; }
  void onInsert(Id id, uint64_t, double, bool cold) override {
    cold ? list_.pushBack(id) : list_.pushFront(id);
  }
  void onHit(Id id) override { list_.moveToFront(id); }
  void onUpdate(Id id, uint64_t, double) override { list_.moveToFront(id); }
  void onRemove(Id id) override { list_.unlink(id); }
  Id victim(Id spare) override {
    const Id v = list_.tail();
    return v == spare ? list_.prev(v) : v;
  }
  size_t size() const override { return list_.size(); }

 private:
  IdList list_;
};

// SIEVE (Zhang et al., NSDI 2024): new entries enter at the head of a FIFO; a hit only sets the
// entry's visited bit (no reordering: the cheapest hit path of all); the hand walks from the tail
// toward the head, clearing visited bits, and the first unvisited entry it meets is the victim.
class SievePolicy : public EvictionPolicy {
 public:
  PolicyKind kind() const override { return PolicyKind::Sieve; }
  void onInsert(Id id, uint64_t, double, bool cold) override {
    if (id >= visited_.size()) visited_.resize(id + 1, 0);
    visited_[id] = 0;
    cold ? list_.pushBack(id) : list_.pushFront(id);
  }
  void onHit(Id id) override { visited_[id] = 1; }
  void onUpdate(Id id, uint64_t, double) override { visited_[id] = 1; }
  void onRemove(Id id) override {
    if (hand_ == id) hand_ = list_.prev(id);
    list_.unlink(id);
  }
  Id victim(Id spare) override { return sweep(spare); }
  size_t size() const override { return list_.size(); }

 protected:
  // Moves the hand toward the head, clearing the visited bits it passes, to the first unvisited
  // entry other than spare, and leaves it there.
  Id sweep(Id spare) {
    uint32_t h = hand_ == kNil ? list_.tail() : hand_;
    while (visited_[h] || h == spare) {
      visited_[h] = 0;
      h = list_.prev(h);
      if (h == kNil) h = list_.tail();
    }
    hand_ = h;
    return h;
  }
  IdList list_;
  std::vector<uint8_t> visited_;
  uint32_t hand_ = kNil;
};

// Cost-aware SIEVE: SIEVE's hand and visited bits decide which entries are cold (not used since
// the hand last passed them); of the next kCandidates cold entries from the hand on, the one
// whose miss costs least is evicted. A one-hit wonder still leaves about as fast as under SIEVE
// and hits still only set a bit; among cold entries the cheap answers (embeddings, small-model
// chat) go before the costly ones (reasoning models). Valued in dollars per entry, not per
// byte: on the synthetic traces per byte saved less (docs/eviction.md).
class CostSievePolicy final : public SievePolicy {
 public:
  static constexpr size_t kCandidates = 16;
  PolicyKind kind() const override { return PolicyKind::CostSieve; }
  void onInsert(Id id, uint64_t bytes, double cost, bool cold) override {
    SievePolicy::onInsert(id, bytes, cost, cold);
    if (id >= value_.size()) value_.resize(id + 1, 0);
    // A cold entry's history and cost are unknown (a file counted at open): worth nothing until
    // it is used, so it goes first among the candidates.
    value_[id] = cold ? 0 : valueOf(bytes, cost);
  }
  void onUpdate(Id id, uint64_t bytes, double cost) override {
    SievePolicy::onUpdate(id, bytes, cost);
    value_[id] = valueOf(bytes, cost);
  }
  Id victim(Id spare) override {
    // The hand walks as SIEVE's does to the first cold entry, and stops there. The cold entries
    // beyond it are only looked at: only the hand's own passing takes an entry's second chance.
    const uint32_t h = sweep(spare);
    uint32_t best = h;
    size_t found = 1;
    for (uint32_t c = list_.prev(h); c != kNil && found < kCandidates; c = list_.prev(c)) {
      if (visited_[c] || c == spare) continue;
      ++found;
      if (value_[c] < value_[best]) best = c;
    }
    return best;
  }

 private:
  static double valueOf(uint64_t bytes, double cost) {
    return cost > 0 ? cost : kFallbackDollarsPerByte * static_cast<double>(bytes);
  }
  std::vector<double> value_;
};

// GreedyDual-Size-Frequency (Cherkasova 1998) valued by money: an entry's priority is
// L + hits * cost / bytes, the dollars its hits saved per byte it occupies, plus the inflation L,
// which rises to each victim's priority so that old favourites age out. The victim is the lowest
// priority; ties go to the least recently used. An indexed binary heap: O(log n) per hit.
class GdsfPolicy final : public EvictionPolicy {
 public:
  PolicyKind kind() const override { return PolicyKind::Gdsf; }
  void onInsert(Id id, uint64_t bytes, double cost, bool cold) override {
    if (id >= pos_.size()) {
      pos_.resize(id + 1, kNil);
      slot_.resize(id + 1);
    }
    Slot& s = slot_[id];
    const double b = static_cast<double>(bytes ? bytes : 1);
    s.valuePerByte = cost > 0 ? cost / b : kFallbackDollarsPerByte;
    s.hits = 1;
    // A cold entry (counted at open, its history unknown) starts at the floor: first to go
    // unless it is used.
    s.priority = cold ? inflation_ : inflation_ + s.valuePerByte;
    s.seq = cold ? 0 : ++clock_;
    pos_[id] = static_cast<uint32_t>(heap_.size());
    heap_.push_back(id);
    up(pos_[id]);
  }
  void onHit(Id id) override {
    Slot& s = slot_[id];
    ++s.hits;
    s.priority = inflation_ + static_cast<double>(s.hits) * s.valuePerByte;
    s.seq = ++clock_;
    down(up(pos_[id]));
  }
  void onUpdate(Id id, uint64_t bytes, double cost) override {
    Slot& s = slot_[id];
    const double b = static_cast<double>(bytes ? bytes : 1);
    s.valuePerByte = cost > 0 ? cost / b : kFallbackDollarsPerByte;
    onHit(id);
  }
  void onRemove(Id id) override {
    const uint32_t p = pos_[id];
    const uint32_t last = heap_.back();
    heap_.pop_back();
    pos_[id] = kNil;
    if (last != id) {
      heap_[p] = last;
      pos_[last] = p;
      down(up(p));
    }
  }
  Id victim(Id spare) override {
    Id v = heap_.front();
    if (v == spare) v = heap_.size() > 2 && less(heap_[2], heap_[1]) ? heap_[2] : heap_[1];
    inflation_ = slot_[v].priority;
    return v;
  }
  size_t size() const override { return heap_.size(); }

 private:
  struct Slot {
    double priority = 0;
    double valuePerByte = 0;
    uint64_t hits = 0;
    uint64_t seq = 0;  // last use: the tie-break (lower goes first)
  };
  bool less(uint32_t a, uint32_t b) const {
    const Slot &x = slot_[a], &y = slot_[b];
    return x.priority < y.priority || (x.priority == y.priority && x.seq < y.seq);
  }
  void place(uint32_t p, uint32_t id) {
    heap_[p] = id;
    pos_[id] = p;
  }
  uint32_t up(uint32_t p) {
    const uint32_t id = heap_[p];
    while (p > 0) {
      const uint32_t parent = (p - 1) / 2;
      if (!less(id, heap_[parent])) break;
      place(p, heap_[parent]);
      p = parent;
    }
    place(p, id);
    return p;
  }
  uint32_t down(uint32_t p) {
    const uint32_t id = heap_[p];
    const uint32_t n = static_cast<uint32_t>(heap_.size());
    for (;;) {
      uint32_t c = 2 * p + 1;
      if (c >= n) break;
      if (c + 1 < n && less(heap_[c + 1], heap_[c])) ++c;
      if (!less(heap_[c], id)) break;
      place(p, heap_[c]);
      p = c;
    }
    place(p, id);
    return p;
  }

  std::vector<uint32_t> heap_;
  std::vector<uint32_t> pos_;
  std::vector<Slot> slot_;
  double inflation_ = 0;
  uint64_t clock_ = 0;
};

}  // namespace

std::unique_ptr<EvictionPolicy> makePolicy(PolicyKind kind) {
  switch (kind) {
    case PolicyKind::Lru:
      return std::make_unique<LruPolicy>();
    case PolicyKind::Sieve:
      return std::make_unique<SievePolicy>();
    case PolicyKind::Gdsf:
      return std::make_unique<GdsfPolicy>();
    case PolicyKind::CostSieve:
      return std::make_unique<CostSievePolicy>();
  }
  return std::make_unique<LruPolicy>();
}

}  // namespace llmcache::cache
