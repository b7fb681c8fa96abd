#pragma once
// VectorIndex: the semantic cache's nearest-neighbour index (docs/semantic.md). One HNSW graph
// (hnswlib, inner product over L2-normalized vectors: cosine similarity) per partition, so a
// search can only ever find an entry of the same partition (tenant, endpoint, model, and every
// field of the request but the embedded text: semantic/request_text.h). One vector per cache
// key: adding a key again replaces its vector.
//
// Thread-safe: searches share a lock, adds and removes take it alone (hnswlib's own locks do not
// cover a resize). A search of a few hundred thousand vectors takes well under a millisecond
// (bench/semantic_bench.cc), so it may run on a request thread; adds are the caller's choice.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/result.h"

namespace llmcache::semantic {

struct Match {
  std::string cacheKey;
  std::string requestHash;
  float similarity = 0;  // cosine similarity of the two embedded texts, in [-1, 1]
};

struct IndexOptions {
  size_t m = 16;                // HNSW links per node
  size_t efConstruction = 100;  // candidates while inserting
  size_t efSearch = 128;        // candidates while searching (recall against speed)
};

class VectorIndex {
 public:
  explicit VectorIndex(IndexOptions options = {});
  ~VectorIndex();
  VectorIndex(const VectorIndex&) = delete;
  VectorIndex& operator=(const VectorIndex&) = delete;

  // Adds (or replaces) cacheKey's vector in partition. The vector is L2-normalized here. The
  // first vector fixes the index's dimension: InvalidArgument for a vector of another dimension,
  // an empty one or a zero one (nothing is added).
  Result<void> add(std::string_view partition, std::string_view cacheKey,
                   std::string_view requestHash, std::span<const float> vector);
  // Removes cacheKey's vector wherever it is. False: it had none.
  bool remove(std::string_view cacheKey);
  // The nearest vector of partition (excluding excludeKey), or nullopt when the partition is
  // empty, unknown, or the dimension differs.
  std::optional<Match> nearest(std::string_view partition, std::span<const float> vector,
                               std::string_view excludeKey = {}) const;
  bool contains(std::string_view cacheKey) const;
  // Candidates a search weighs (hnswlib's ef): more finds the true nearest more often, slower.
  void setEfSearch(size_t ef);
  size_t efSearch() const;

  size_t size() const;        // live vectors
  size_t partitions() const;  // partitions holding at least one live vector
  size_t dimension() const;   // 0 until the first add
  // Bytes held by the graphs (vectors, links, label tables) and the keys: an estimate.
  size_t memoryBytes() const;

  // Persistence (docs/semantic.md, Index files): dir/manifest.json (version, dimension, each
  // partition's file and labels) and one hnswlib graph file per partition, named by a save
  // generation. Graph files first, the manifest last (temp file, fsync, rename), then the older
  // generation's files go: a crash leaves the previous index whole. A removed vector stays in its
  // graph, marked deleted (never found), and its label's slot stays empty.
  Result<void> save(const std::filesystem::path& dir) const;
  // Replaces this index by the one saved in dir. NotFound: no manifest (rebuild from the
  // entries); Corrupt: a file unreadable or of another version (the index stays empty).
  Result<void> load(const std::filesystem::path& dir);

 private:
  struct Partition;
  struct Label {
    Partition* partition;
    uint32_t slot;  // the graph's label
  };
  Partition* partitionFor(std::string_view partition);

  IndexOptions options_;
  mutable std::shared_mutex mutex_;
  size_t dimension_ = 0;
  std::unordered_map<std::string, std::unique_ptr<Partition>> partitions_;
  std::unordered_map<std::string, Label> byKey_;
};

// L2-normalizes v in place; false when it is empty or zero.
bool normalizeVector(std::vector<float>& v);
// Cosine similarity of two vectors of the same size (0 when either is zero).
float cosine(std::span<const float> a, std::span<const float> b);

}  // namespace llmcache::semantic
