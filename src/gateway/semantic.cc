#include "gateway/semantic.h"

#include <algorithm>
#include <charconv>

#include "gateway/upstream_call.h"

namespace llmcache::gateway {

namespace net = http::net;

SemanticCache::SemanticCache(const config::Config& config, semantic::VectorIndex& index,
                             upstream::UpstreamClient& client,
                             const upstream::PlatformTable& platforms)
    : index_(index),
      client_(client),
      gatewayThreshold_(config.semanticThresholdValue()),
      namespaceThresholds_(config.semanticNamespaceThresholds()),
      shadow_(config.semanticShadow),
      target_(config.semanticTarget),
      maxTemperature_(config.semanticMaxTemperature),
      allowTools_(config.semanticAllowTools),
      textMode_(
          semantic::parseTextMode(config.semanticText).value_or(semantic::TextMode::LastUser)),
      embeddingsKey_(config.semanticEmbeddingsKey),
      connectTimeoutSeconds_(config.upstreamConnectTimeoutSeconds),
      embeddings_(config.semanticEmbeddingCache),
      maxPending_(static_cast<size_t>(std::max(1, config.semanticMaxPending))),
      shadowStats_(config.semanticAnswerAgreement) {
  const std::string& spec = config.semanticEmbeddings;
  const size_t colon = spec.find(':');
  std::string base = config.upstream;
  embeddingsModel_ = spec;
  if (colon != std::string::npos) {
    const upstream::Platform* p = platforms.find(spec.substr(0, colon));
    if (!p)
      throw config::ConfigError("CACHE_SEMANTIC_EMBEDDINGS: no platform named '" +
                                spec.substr(0, colon) + "'");
    base = p->baseUrl;
    embeddingsModel_ = spec.substr(colon + 1);
  }
  while (!base.empty() && base.back() == '/') base.pop_back();
  embeddingsUrl_ = base + "/embeddings";
}

SemanticCache::~SemanticCache() { pool_.join(); }

Result<std::optional<double>> SemanticCache::thresholdFor(std::string_view header,
                                                          std::string_view keyNamespace) const {
  if (!header.empty()) {
    if (header == "0" || header == "off" || header == "false") return std::optional<double>{};
    double d = 0;
    auto r = std::from_chars(header.data(), header.data() + header.size(), d);
    if (r.ec != std::errc{} || r.ptr != header.data() + header.size() || !(d > 0 && d <= 1))
      return makeError(Errc::InvalidArgument,
                       "x-llmcache-semantic: expected a similarity above 0 and at most 1, or 0 "
                       "for none, got '" +
                           std::string(header) + "'");
    return std::optional<double>(d);
  }
  for (const auto& [ns, t] : namespaceThresholds_)
    if (ns == keyNamespace) return std::optional<double>(t);
  return gatewayThreshold_;
}

bool SemanticCache::eligible(const semantic::SemanticRequest& request) const {
  if (request.temperature && *request.temperature > maxTemperature_) return false;
  if (request.hasTools && !allowTools_) return false;
  return true;
}

net::awaitable<Result<std::shared_ptr<const semantic::Vector>>> SemanticCache::embed(
    std::string text, std::string credential) {
  if (auto known = embeddings_.find(embeddingsModel_, text)) co_return known;
  embedCalls_.fetch_add(1, std::memory_order_relaxed);
  upstream::Request request;
  request.url = embeddingsUrl_;
  request.body = semantic::embeddingsRequestBody(embeddingsModel_, text);
  request.connectTimeout = std::chrono::seconds(connectTimeoutSeconds_);
  request.totalTimeout = std::chrono::seconds(30);
  request.headers.push_back({"Content-Type", "application/json"});
  request.headers.push_back({"Accept-Encoding", "identity"});
  if (!embeddingsKey_.empty())
    request.headers.push_back({"Authorization", "Bearer " + embeddingsKey_});
  else if (!credential.empty())
    request.headers.push_back({"Authorization", std::move(credential)});
  auto call = UpstreamCall::start(client_, std::move(request), co_await net::this_coro::executor);
  int status = 0;
  std::string body;
  for (;;) {
    UpstreamCall::Step step = co_await call->next();
    if (step.head) status = step.head->status;
    body += step.data;
    if (body.size() > (size_t{64} << 20)) {
      call->cancel();
      embedFailures_.fetch_add(1, std::memory_order_relaxed);
      co_return makeError(Errc::TooLarge, "embeddings: the answer is too large");
    }
    if (step.done) {
      if (!*step.done) {
        embedFailures_.fetch_add(1, std::memory_order_relaxed);
        co_return step.done->error();
      }
      break;
    }
  }
  if (status != 200) {
    embedFailures_.fetch_add(1, std::memory_order_relaxed);
    co_return makeError(Errc::Unavailable,
                        "embeddings: the endpoint answered " + std::to_string(status));
  }
  auto vector = semantic::parseEmbeddingsResponse(body);
  if (!vector) {
    embedFailures_.fetch_add(1, std::memory_order_relaxed);
    co_return vector.error();
  }
  auto shared = std::make_shared<const semantic::Vector>(std::move(*vector));
  embeddings_.put(embeddingsModel_, text, shared);
  co_return shared;
}

bool SemanticCache::beginIndex() {
  size_t pending = pendingIndex_.load(std::memory_order_relaxed);
  do {
    if (pending >= maxPending_) {
      skippedIndex_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
  } while (!pendingIndex_.compare_exchange_weak(pending, pending + 1, std::memory_order_relaxed));
  return true;
}

void SemanticCache::countServed(std::string_view model, double similarity, double costSaved) {
  std::lock_guard lock(mutex_);
  auto it = served_.find(model);
  if (it == served_.end()) it = served_.emplace(std::string(model), Served{}).first;
  ++it->second.hits;
  it->second.costSaved += costSaved;
  it->second.similaritySum += similarity;
}

void SemanticCache::rememberAnswer(std::string_view cacheKey, std::string answerText) {
  if (answerText.size() > kMaxAnswerBytes) answerText.resize(kMaxAnswerBytes);
  std::lock_guard lock(mutex_);
  if (auto it = answers_.find(cacheKey); it != answers_.end()) {
    it->second = std::move(answerText);
    return;
  }
  if (answerOrder_.size() < kMaxRememberedAnswers) {
    answerOrder_.emplace_back(cacheKey);
  } else {
    answers_.erase(answerOrder_[answerNext_]);
    answerOrder_[answerNext_] = std::string(cacheKey);
    answerNext_ = (answerNext_ + 1) % kMaxRememberedAnswers;
  }
  answers_.emplace(std::string(cacheKey), std::move(answerText));
}

std::optional<std::string> SemanticCache::rememberedAnswer(std::string_view cacheKey) const {
  std::lock_guard lock(mutex_);
  auto it = answers_.find(cacheKey);
  if (it == answers_.end()) return std::nullopt;
  return it->second;
}

Json SemanticCache::report() const {
  Json config = Json::object();
  config.set("threshold", gatewayThreshold_ ? Json::number(*gatewayThreshold_) : Json::null());
  Json namespaces = Json::object();
  for (const auto& [ns, t] : namespaceThresholds_) namespaces.set(ns, Json::number(t));
  config.set("namespaces", std::move(namespaces));
  config.set("shadow", Json::boolean(shadow_));
  config.set("max_temperature", Json::number(maxTemperature_));
  config.set("ef", Json::integer(static_cast<int64_t>(index_.efSearch())));
  config.set("allow_tools", Json::boolean(allowTools_));
  config.set("embeddings_model", Json::string(embeddingsModel_));
  config.set("text",
             Json::string(textMode_ == semantic::TextMode::AllUser ? "all_user" : "last_user"));
  Json served = Json::object();
  uint64_t servedHits = 0;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [model, s] : served_) {
      servedHits += s.hits;
      served.set(model, Json::object()
                            .set("hits", Json::integer(static_cast<int64_t>(s.hits)))
                            .set("cost_saved", Json::number(s.costSaved))
                            .set("mean_similarity",
                                 Json::number(s.hits ? s.similaritySum / s.hits : 0.0)));
    }
  }
  Json index = Json::object()
                   .set("vectors", Json::integer(static_cast<int64_t>(index_.size())))
                   .set("partitions", Json::integer(static_cast<int64_t>(index_.partitions())))
                   .set("dimension", Json::integer(static_cast<int64_t>(index_.dimension())))
                   .set("memory_bytes", Json::integer(static_cast<int64_t>(index_.memoryBytes())))
                   .set("pending", Json::integer(static_cast<int64_t>(pendingIndex_.load())))
                   .set("skipped", Json::integer(static_cast<int64_t>(skippedIndex_.load())));
  Json embeddings = Json::object()
                        .set("calls", Json::integer(static_cast<int64_t>(embedCalls_.load())))
                        .set("failures", Json::integer(static_cast<int64_t>(embedFailures_.load())))
                        .set("cache_hits", Json::integer(static_cast<int64_t>(embeddings_.hits())))
                        .set("cached", Json::integer(static_cast<int64_t>(embeddings_.size())));
  return Json::object()
      .set("config", std::move(config))
      .set("index", std::move(index))
      .set("embeddings", std::move(embeddings))
      .set("served", Json::object()
                         .set("hits", Json::integer(static_cast<int64_t>(servedHits)))
                         .set("by_model", std::move(served)))
      .set("shadow", shadowStats_.report(target_));
}

}  // namespace llmcache::gateway
