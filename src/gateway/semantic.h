#pragma once
// SemanticCache: the gateway's side of semantic hits (docs/semantic.md): which threshold a
// request asks for, whether it may be semantic at all, the embeddings calls (an async upstream
// call like a miss's, never blocking a request thread; results kept in a bounded LRU so a
// repeated text is embedded once), the shadow figures and the served-hit counters behind
// GET /cache/semantic. The index itself (semantic::VectorIndex) is the composition root's: it
// loads and saves it and attaches its eviction observer to the cache.
#include <atomic>
#include <boost/asio.hpp>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/json.h"
#include "common/result.h"
#include "config/config.h"
#include "http/server.h"
#include "semantic/embeddings.h"
#include "semantic/request_text.h"
#include "semantic/shadow.h"
#include "semantic/vector_index.h"
#include "upstream/client.h"
#include "upstream/platform.h"

namespace llmcache::gateway {

class SemanticCache {
 public:
  // Throws config::ConfigError (start-up) when CACHE_SEMANTIC_EMBEDDINGS names an unknown
  // platform.
  SemanticCache(const config::Config& config, semantic::VectorIndex& index,
                upstream::UpstreamClient& client, const upstream::PlatformTable& platforms);
  ~SemanticCache();

  // The threshold this request is served from: x-llmcache-semantic (a similarity, or 0 / off:
  // none for this request), else its namespace's (CACHE_SEMANTIC_NAMESPACES), else the
  // gateway's (CACHE_SEMANTIC_THRESHOLD). nullopt: no semantic hit for it. InvalidArgument (a
  // 400) for a header that is neither.
  Result<std::optional<double>> thresholdFor(std::string_view header,
                                             std::string_view keyNamespace) const;
  // Whether a request may ever be semantic (served, shadowed, indexed): temperature at most
  // CACHE_SEMANTIC_MAX_TEMPERATURE, no tools unless CACHE_SEMANTIC_ALLOW_TOOLS.
  bool eligible(const semantic::SemanticRequest& request) const;
  bool shadow() const { return shadow_; }
  semantic::TextMode textMode() const { return textMode_; }

  // The embedding of text: from the LRU, else one call to the embeddings endpoint with
  // `credential` (the caller's Authorization) unless CACHE_SEMANTIC_EMBEDDINGS_KEY is set.
  // Errors: the endpoint failed or answered something else than an embedding.
  http::net::awaitable<Result<std::shared_ptr<const semantic::Vector>>> embed(
      std::string text, std::string credential);

  semantic::VectorIndex& index() { return index_; }
  semantic::ShadowStats& shadowStats() { return shadowStats_; }
  const semantic::ShadowStats& shadowStats() const { return shadowStats_; }
  http::net::thread_pool& pool() { return pool_; }

  // A stored miss's indexing (embed, shadow pair, insert) holds its entry until done: at most
  // CACHE_SEMANTIC_MAX_PENDING at once. beginIndex() false: over the bound, not indexed (counted);
  // true: endIndex() when done.
  bool beginIndex();
  void endIndex() { pendingIndex_.fetch_sub(1, std::memory_order_relaxed); }

  // A served semantic hit (the /cache/semantic figures).
  void countServed(std::string_view model, double similarity, double costSaved);
  // Shadow mode: the answer text of a stored entry, remembered (bounded) so that a later miss
  // whose neighbour it is can compare answers without reading the tiers (which would count a
  // hit). nullopt: not remembered.
  void rememberAnswer(std::string_view cacheKey, std::string answerText);
  std::optional<std::string> rememberedAnswer(std::string_view cacheKey) const;

  // GET /cache/semantic (docs/semantic.md): the configuration, the index, the served hits and
  // the shadow figures.
  Json report() const;

  static constexpr size_t kMaxRememberedAnswers = 10000;
  static constexpr size_t kMaxAnswerBytes = 4096;

 private:
  semantic::VectorIndex& index_;
  upstream::UpstreamClient& client_;
  std::optional<double> gatewayThreshold_;
  std::vector<std::pair<std::string, double>> namespaceThresholds_;
  bool shadow_;
  double target_;
  double maxTemperature_;
  bool allowTools_;
  semantic::TextMode textMode_;
  std::string embeddingsUrl_;
  std::string embeddingsModel_;
  std::string embeddingsKey_;
  int connectTimeoutSeconds_;
  semantic::EmbeddingCache embeddings_;
  semantic::ShadowStats shadowStats_;
  std::atomic<uint64_t> embedCalls_{0}, embedFailures_{0};
  size_t maxPending_;
  std::atomic<size_t> pendingIndex_{0};
  std::atomic<uint64_t> skippedIndex_{0};
  mutable std::mutex mutex_;
  struct Served {
    uint64_t hits = 0;
    double costSaved = 0, similaritySum = 0;
  };
  std::map<std::string, Served, std::less<>> served_;
  std::map<std::string, std::string, std::less<>> answers_;
  std::vector<std::string> answerOrder_;  // a ring of kMaxRememberedAnswers keys
  size_t answerNext_ = 0;
  http::net::thread_pool pool_{1};  // index inserts: off the request threads
};

}  // namespace llmcache::gateway
