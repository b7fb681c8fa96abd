#include "semantic/embeddings.h"

#include "common/json.h"

namespace llmcache::semantic {

namespace {
std::string cacheKeyOf(std::string_view model, std::string_view text) {
  std::string k;
  k.reserve(model.size() + 1 + text.size());
  k.append(model).push_back('\0');
  k.append(text);
  return k;
}
}  // namespace

std::string embeddingsRequestBody(std::string_view model, std::string_view text) {
  return toJson(Json::object()
                    .set("model", Json::string(model))
                    .set("input", Json::string(text))
                    .set("encoding_format", Json::string("float")));
}

Result<Vector> parseEmbeddingsResponse(std::string_view body) {
  auto parsed = parseJson(body);
  if (!parsed || !parsed->isObject())
    return makeError(Errc::Corrupt, "embeddings: the answer is not a JSON object");
  const Json* data = parsed->find("data");
  if (!data || !data->isArray() || data->size() == 0)
    return makeError(Errc::Corrupt, "embeddings: the answer has no data");
  const Json* embedding = data->items()[0].find("embedding");
  if (!embedding || !embedding->isArray() || embedding->size() == 0)
    return makeError(Errc::Corrupt, "embeddings: data[0] has no embedding array");
  Vector v;
  v.reserve(embedding->size());
  for (const Json& x : embedding->items()) {
    auto d = x.asDouble();
    if (!d) return makeError(Errc::Corrupt, "embeddings: a non-number in the embedding");
    v.push_back(static_cast<float>(*d));
  }
  return v;
}

std::shared_ptr<const Vector> EmbeddingCache::find(std::string_view model, std::string_view text) {
  const std::string k = cacheKeyOf(model, text);
  std::lock_guard lock(mutex_);
  auto it = map_.find(k);
  if (it == map_.end()) {
    ++misses_;
    return nullptr;
  }
  ++hits_;
  lru_.splice(lru_.begin(), lru_, it->second);
  return it->second->second;
}

void EmbeddingCache::put(std::string_view model, std::string_view text,
                         std::shared_ptr<const Vector> v) {
  if (max_ == 0) return;
  std::string k = cacheKeyOf(model, text);
  std::lock_guard lock(mutex_);
  if (auto it = map_.find(k); it != map_.end()) {
    it->second->second = std::move(v);
    lru_.splice(lru_.begin(), lru_, it->second);
    return;
  }
  lru_.emplace_front(k, std::move(v));
  map_.emplace(std::move(k), lru_.begin());
  while (lru_.size() > max_) {
    map_.erase(lru_.back().first);
    lru_.pop_back();
  }
}

uint64_t EmbeddingCache::hits() const {
  std::lock_guard lock(mutex_);
  return hits_;
}
uint64_t EmbeddingCache::misses() const {
  std::lock_guard lock(mutex_);
  return misses_;
}
size_t EmbeddingCache::size() const {
  std::lock_guard lock(mutex_);
  return lru_.size();
}

}  // namespace llmcache::semantic
