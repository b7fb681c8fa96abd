#pragma once
// The embeddings call's wire format (an OpenAI-compatible /v1/embeddings), and the bounded cache
// of its results: a repeated text is embedded once (docs/semantic.md, Embeddings).
#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/result.h"

namespace llmcache::semantic {

using Vector = std::vector<float>;

// {"model": model, "input": text, "encoding_format": "float"}
std::string embeddingsRequestBody(std::string_view model, std::string_view text);
// data[0].embedding of an embeddings answer (an array of numbers). Corrupt: not such an answer.
Result<Vector> parseEmbeddingsResponse(std::string_view body);

// A threshold test shared by serving and the shadow figures: similarity s meets threshold t when
// s >= t, with float rounding forgiven (an embedding's cosine is computed in float).
inline bool meetsThreshold(float similarity, double threshold) {
  return static_cast<double>(similarity) + 1e-5 >= threshold;
}

// LRU of embeddings by (model, text), bounded by entries. Thread-safe. Texts are keyed by their
// bytes (a hash picks the bucket; the text itself is compared), so a hit is exactly that text's
// vector.
class EmbeddingCache {
 public:
  explicit EmbeddingCache(size_t maxEntries) : max_(maxEntries) {}
  std::shared_ptr<const Vector> find(std::string_view model, std::string_view text);
  void put(std::string_view model, std::string_view text, std::shared_ptr<const Vector> v);
  uint64_t hits() const;
  uint64_t misses() const;
  size_t size() const;

 private:
  using Item = std::pair<std::string, std::shared_ptr<const Vector>>;
  size_t max_;
  mutable std::mutex mutex_;
  std::list<Item> lru_;  // front: most recent
  std::unordered_map<std::string, std::list<Item>::iterator> map_;
  uint64_t hits_ = 0, misses_ = 0;
};

}  // namespace llmcache::semantic
