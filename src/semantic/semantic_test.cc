#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "semantic/embeddings.h"
#include "semantic/index_observer.h"
#include "semantic/request_text.h"
#include "semantic/shadow.h"
#include "semantic/vector_index.h"

namespace llmcache::semantic {
namespace {

namespace fs = std::filesystem;

Json parse(std::string_view s) { return parseJson(s).value(); }

key::KeyOptions opts(key::Endpoint endpoint, std::string scope = "") {
  key::KeyOptions o;
  o.endpoint = endpoint;
  o.scope = std::move(scope);
  return o;
}

std::string partitionOf(std::string_view body, const key::KeyOptions& opts = {}) {
  auto d = describeRequest(parse(body), opts);
  EXPECT_TRUE(d.has_value());
  EXPECT_TRUE(d->has_value());
  return (d && *d) ? (*d)->partition : "";
}

TEST(RequestText, TheLastUserTurnIsEmbeddedAndBlankedInThePartition) {
  auto d = describeRequest(parse(R"({"model":"m","messages":[
      {"role":"system","content":"be brief"},
      {"role":"user","content":"first question"},
      {"role":"assistant","content":"an answer"},
      {"role":"user","content":[{"type":"text","text":"capital of France?"}]}]})"),
                           {});
  ASSERT_TRUE(d && *d);
  EXPECT_EQ((*d)->text, "capital of France?");
  // Only the embedded text may differ within a partition.
  EXPECT_EQ(partitionOf(R"({"model":"m","messages":[{"role":"user","content":"a"}]})"),
            partitionOf(R"({"model":"m","messages":[{"role":"user","content":"b c"}]})"));
}

TEST(RequestText, EverythingButTheEmbeddedTextSeparatesPartitions) {
  const std::string base =
      partitionOf(R"({"model":"m","messages":[{"role":"user","content":"q"}]})");
  EXPECT_NE(base, partitionOf(R"({"model":"m2","messages":[{"role":"user","content":"q"}]})"));
  EXPECT_NE(base, partitionOf(R"({"model":"m","messages":[{"role":"system","content":"s"},
      {"role":"user","content":"q"}]})"));
  EXPECT_NE(base, partitionOf(R"({"model":"m","temperature":0,"messages":[
      {"role":"user","content":"q"}]})"));
  EXPECT_NE(base, partitionOf(R"({"model":"m","tools":[{"type":"function","function":{"name":"f"}}],
      "messages":[{"role":"user","content":"q"}]})"));
  EXPECT_NE(base, partitionOf(R"({"model":"m","messages":[{"role":"user","content":"earlier"},
      {"role":"assistant","content":"x"},{"role":"user","content":"q"}]})"));
  EXPECT_NE(base, partitionOf(R"({"model":"m","messages":[{"role":"user","content":"q"}]})",
                              opts(key::Endpoint::OpenAiChat, "tenant-b")));
  EXPECT_NE(base, partitionOf(R"({"model":"m","messages":[{"role":"user","content":"q"}]})",
                              opts(key::Endpoint::AnthropicMessages)));
}

TEST(RequestText, AllUserModeEmbedsEveryUserTurn) {
  auto d = describeRequest(parse(R"({"model":"m","messages":[{"role":"user","content":"one"},
      {"role":"assistant","content":"x"},{"role":"user","content":"two"}]})"),
                           {}, TextMode::AllUser);
  ASSERT_TRUE(d && *d);
  EXPECT_EQ((*d)->text, "one\ntwo");
}

TEST(RequestText, CompletionsPromptsAndResponsesInputsAreEmbedded) {
  auto c = describeRequest(parse(R"({"model":"m","prompt":"say hi"})"),
                           opts(key::Endpoint::OpenAiCompletions));
  ASSERT_TRUE(c && *c);
  EXPECT_EQ((*c)->text, "say hi");
  auto r = describeRequest(parse(R"({"model":"m","input":"hello there"})"),
                           opts(key::Endpoint::OpenAiResponses));
  ASSERT_TRUE(r && *r);
  EXPECT_EQ((*r)->text, "hello there");
}

TEST(RequestText, EmbeddingsRequestsAndRequestsWithoutUserTextAreNotSemantic) {
  auto e =
      describeRequest(parse(R"({"model":"m","input":"x"})"), opts(key::Endpoint::OpenAiEmbeddings));
  ASSERT_TRUE(e);
  EXPECT_FALSE(e->has_value());
  auto none =
      describeRequest(parse(R"({"model":"m","messages":[{"role":"system","content":"s"}]})"), {});
  ASSERT_TRUE(none);
  EXPECT_FALSE(none->has_value());
}

TEST(RequestText, TemperatureAndToolsAreReported) {
  auto d = describeRequest(parse(R"({"model":"m","temperature":1.5,"tools":[{"type":"function"}],
      "messages":[{"role":"user","content":"q"}]})"),
                           {});
  ASSERT_TRUE(d && *d);
  EXPECT_EQ((*d)->temperature, 1.5);
  EXPECT_TRUE((*d)->hasTools);
}

TEST(AnswerText, ReadsEveryProvidersAnswerShape) {
  EXPECT_EQ(answerText(key::Endpoint::OpenAiChat,
                       parse(R"({"choices":[{"message":{"content":"Paris"}}]})")),
            "Paris");
  EXPECT_EQ(answerText(key::Endpoint::AnthropicMessages,
                       parse(R"({"content":[{"type":"text","text":"Madrid"}]})")),
            "Madrid");
  EXPECT_EQ(answerText(key::Endpoint::OpenAiResponses,
                       parse(R"({"output":[{"content":[{"type":"output_text","text":"Rome"}]}]})")),
            "Rome");
}

TEST(Embeddings, ParsesTheFirstVector) {
  auto v = parseEmbeddingsResponse(R"({"data":[{"embedding":[0.5,-1,2]}]})");
  ASSERT_TRUE(v);
  EXPECT_EQ(*v, (Vector{0.5f, -1.0f, 2.0f}));
  EXPECT_FALSE(parseEmbeddingsResponse(R"({"data":[]})"));
  EXPECT_FALSE(parseEmbeddingsResponse("not json"));
}

TEST(Embeddings, TheCacheIsBoundedAndKeyedByModelAndText) {
  EmbeddingCache cache(2);
  cache.put("m", "a", std::make_shared<Vector>(Vector{1}));
  cache.put("m", "b", std::make_shared<Vector>(Vector{2}));
  EXPECT_EQ(cache.find("other", "a"), nullptr);
  ASSERT_NE(cache.find("m", "a"), nullptr);  // a is now the most recent
  cache.put("m", "c", std::make_shared<Vector>(Vector{3}));
  EXPECT_EQ(cache.find("m", "b"), nullptr);
  EXPECT_NE(cache.find("m", "a"), nullptr);
  EXPECT_EQ(cache.size(), 2u);
}

TEST(Threshold, ASimilarityEqualToTheThresholdMeetsIt) {
  EXPECT_TRUE(meetsThreshold(0.9f, 0.9));
  EXPECT_TRUE(meetsThreshold(0.95f, 0.9));
  EXPECT_FALSE(meetsThreshold(0.899f, 0.9));
}

Vector unit(size_t dim, size_t i) {
  Vector v(dim, 0.0f);
  v[i] = 1.0f;
  return v;
}

TEST(VectorIndex, FindsTheNearestVectorOfItsPartitionOnly) {
  VectorIndex index;
  ASSERT_TRUE(index.add("p1", "k1", "h1", unit(4, 0)));
  ASSERT_TRUE(index.add("p1", "k2", "h2", unit(4, 1)));
  ASSERT_TRUE(index.add("p2", "k3", "h3", Vector{1, 0.1f, 0, 0}));
  auto m = index.nearest("p1", Vector{1, 0.2f, 0, 0});
  ASSERT_TRUE(m);
  EXPECT_EQ(m->cacheKey, "k1");
  EXPECT_EQ(m->requestHash, "h1");
  EXPECT_NEAR(m->similarity, 1.0 / std::sqrt(1.04), 1e-5);
  EXPECT_FALSE(index.nearest("p3", unit(4, 0)));
  auto other = index.nearest("p2", unit(4, 1));
  ASSERT_TRUE(other);
  EXPECT_EQ(other->cacheKey, "k3");
  EXPECT_EQ(index.size(), 3u);
  EXPECT_EQ(index.partitions(), 2u);
}

TEST(VectorIndex, ExcludesAKeyWhenAsked) {
  VectorIndex index;
  ASSERT_TRUE(index.add("p", "self", "h", unit(4, 0)));
  EXPECT_FALSE(index.nearest("p", unit(4, 0), "self"));
  ASSERT_TRUE(index.add("p", "other", "h2", unit(4, 1)));
  auto m = index.nearest("p", unit(4, 0), "self");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->cacheKey, "other");
}

TEST(VectorIndex, RemovedVectorsAreNeverFoundAndReAddingReplaces) {
  VectorIndex index;
  ASSERT_TRUE(index.add("p", "k1", "h1", unit(4, 0)));
  ASSERT_TRUE(index.add("p", "k2", "h2", unit(4, 1)));
  EXPECT_TRUE(index.remove("k1"));
  EXPECT_FALSE(index.remove("k1"));
  auto m = index.nearest("p", unit(4, 0));
  ASSERT_TRUE(m);
  EXPECT_EQ(m->cacheKey, "k2");
  ASSERT_TRUE(index.add("p", "k2", "h2b", unit(4, 2)));  // replaced
  EXPECT_EQ(index.size(), 1u);
  EXPECT_NEAR(index.nearest("p", unit(4, 2))->similarity, 1.0, 1e-5);
  EXPECT_EQ(index.nearest("p", unit(4, 2))->requestHash, "h2b");
}

TEST(VectorIndex, RejectsAnotherDimensionAndZeroVectors) {
  VectorIndex index;
  ASSERT_TRUE(index.add("p", "k", "h", unit(4, 0)));
  EXPECT_FALSE(index.add("p", "k2", "h", unit(3, 0)));
  EXPECT_FALSE(index.add("p", "k3", "h", Vector(4, 0.0f)));
  EXPECT_FALSE(index.nearest("p", unit(3, 0)));
}

TEST(VectorIndex, GrowsPastItsFirstCapacity) {
  VectorIndex index;
  std::mt19937 rng(7);
  std::normal_distribution<float> dist;
  std::vector<Vector> vs;
  for (int i = 0; i < 500; ++i) {
    Vector v(16);
    for (float& f : v) f = dist(rng);
    vs.push_back(v);
    ASSERT_TRUE(index.add("p", "k" + std::to_string(i), "h", v));
  }
  int exact = 0;
  for (int i = 0; i < 500; ++i)
    exact += index.nearest("p", vs[static_cast<size_t>(i)])->cacheKey == "k" + std::to_string(i);
  EXPECT_GE(exact, 490);  // HNSW is approximate; its own vector is nearly always found
  EXPECT_GT(index.memoryBytes(), 500u * 16 * 4);
}

class TempDir {
 public:
  TempDir()
      : path_(fs::temp_directory_path() /
              ("semantic_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter_++))) {
    fs::remove_all(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }

 private:
  static inline int counter_ = 0;
  fs::path path_;
};

TEST(VectorIndex, SavedAndLoadedIndexFindsTheSameAndForgetsRemovals) {
  TempDir dir;
  {
    VectorIndex index;
    ASSERT_TRUE(index.add("p1", "k1", "h1", unit(4, 0)));
    ASSERT_TRUE(index.add("p1", "k2", "h2", unit(4, 1)));
    ASSERT_TRUE(index.add("p2", "k3", "h3", unit(4, 2)));
    index.remove("k2");
    ASSERT_TRUE(index.save(dir.path()));
    ASSERT_TRUE(index.save(dir.path()));  // a second generation replaces the first
  }
  size_t graphs = 0;
  for (const auto& f : fs::directory_iterator(dir.path()))
    graphs += f.path().extension() == ".hnsw";
  EXPECT_EQ(graphs, 2u);
  VectorIndex loaded;
  ASSERT_TRUE(loaded.load(dir.path()));
  EXPECT_EQ(loaded.size(), 2u);
  EXPECT_EQ(loaded.dimension(), 4u);
  EXPECT_EQ(loaded.nearest("p1", unit(4, 1))->cacheKey, "k1");
  EXPECT_EQ(loaded.nearest("p2", unit(4, 2))->cacheKey, "k3");
  ASSERT_TRUE(loaded.add("p1", "k4", "h4", unit(4, 1)));  // still writable after a load
  EXPECT_EQ(loaded.nearest("p1", unit(4, 1))->cacheKey, "k4");
}

TEST(VectorIndex, LoadSaysWhenThereIsNothingOrSomethingBroken) {
  TempDir dir;
  VectorIndex index;
  auto missing = index.load(dir.path());
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, Errc::NotFound);
  fs::create_directories(dir.path());
  std::ofstream(dir.path() / "manifest.json") << R"({"version":99})";
  auto corrupt = index.load(dir.path());
  ASSERT_FALSE(corrupt);
  EXPECT_EQ(corrupt.error().code, Errc::Corrupt);
}

TEST(IndexObserver, ErasedAndLastTierEvictionsDropVectors) {
  VectorIndex index;
  IndexObserver observer(index, cache::TierId::Disk);
  ASSERT_TRUE(index.add("p", "k1", "h", unit(4, 0)));
  ASSERT_TRUE(index.add("p", "k2", "h", unit(4, 1)));
  observer.onTierEvent(
      {.kind = cache::TierEvent::Kind::Evicted, .tier = cache::TierId::Memory, .cacheKey = "k1"});
  EXPECT_TRUE(index.contains("k1"));  // still on disk
  observer.onTierEvent(
      {.kind = cache::TierEvent::Kind::Evicted, .tier = cache::TierId::Disk, .cacheKey = "k1"});
  EXPECT_FALSE(index.contains("k1"));
  observer.onTierEvent(
      {.kind = cache::TierEvent::Kind::Erased, .tier = cache::TierId::Memory, .cacheKey = "k2"});
  EXPECT_FALSE(index.contains("k2"));
}

TEST(ShadowStats, CountsExtraHitsAgreementAndSavingsPerThreshold) {
  ShadowStats stats(0.95);
  for (int i = 0; i < 4; ++i) stats.observeMiss("m");
  stats.record(
      {.model = "m", .similarity = 0.97f, .exactEqual = true, .answerSimilarity = 1, .cost = 0.5});
  stats.record({.model = "m",
                .similarity = 0.85f,
                .exactEqual = false,
                .answerSimilarity = 0.8f,
                .cost = 0.25});
  Json r = stats.report(0.98);
  const Json& m = *r.find("models")->find("m");
  EXPECT_EQ(m.getInt("misses"), 4);
  EXPECT_EQ(m.getInt("pairs"), 2);
  const auto rows = m.find("thresholds")->items();
  ASSERT_EQ(rows.size(), 20u);
  EXPECT_EQ(rows[0].getDouble("threshold"), 0.8);
  EXPECT_EQ(rows[0].getInt("extra_hits"), 2);
  EXPECT_EQ(rows[0].getDouble("extra_hit_rate"), 0.5);
  EXPECT_EQ(rows[0].getDouble("cost_saved"), 0.75);
  EXPECT_EQ(rows[0].getDouble("agreement"), 0.5);
  EXPECT_EQ(rows[5].getInt("extra_hits"), 2);  // 0.85: met by both
  EXPECT_EQ(rows[6].getInt("extra_hits"), 1);  // 0.86: only the 0.97 pair
  EXPECT_EQ(rows[6].getDouble("agreement"), 1.0);
  EXPECT_EQ(rows[17].getInt("extra_hits"), 1);  // 0.97
  EXPECT_EQ(rows[18].getInt("extra_hits"), 0);  // 0.98
  EXPECT_TRUE(rows[18].find("agreement")->isNull());
  EXPECT_EQ(m.getDouble("suggested_threshold"), 0.86);
  EXPECT_EQ(r.getDouble("suggested_threshold"), 0.86);
}

TEST(ShadowStats, NoSuggestionWhenNoThresholdMeetsTheTarget) {
  ShadowStats stats;
  stats.observeMiss("m");
  stats.record({.model = "m",
                .similarity = 0.99f,
                .exactEqual = false,
                .answerSimilarity = 0.1f,
                .cost = 0});
  EXPECT_TRUE(stats.report(0.98).find("suggested_threshold")->isNull());
}

// Kept across a restart: a state() restored into fresh stats reports the same figures, through
// its text form (the file the gateway writes), totals included.
TEST(ShadowStats, StateRestoredReportsTheSameFigures) {
  ShadowStats stats(0.95);
  for (int i = 0; i < 3; ++i) stats.observeMiss("m");
  stats.observeMiss("n");
  stats.record(
      {.model = "m", .similarity = 0.97f, .exactEqual = true, .answerSimilarity = 1, .cost = 0.5});
  stats.record({.model = "n",
                .similarity = 0.88f,
                .exactEqual = false,
                .answerSimilarity = 0.2f,
                .cost = 0.125});
  auto text = parseJson(toJson(stats.state()));
  ASSERT_TRUE(text);
  ShadowStats again(0.95);
  again.observeMiss("other");  // replaced, not added to
  ASSERT_TRUE(again.restore(*text));
  EXPECT_EQ(toJson(again.report(0.98)), toJson(stats.report(0.98)));
  EXPECT_EQ(again.report(0.98).find("all")->getInt("misses"), 4);
  EXPECT_EQ(again.report(0.98).find("all")->getInt("pairs"), 2);
}

TEST(ShadowStats, ACorruptStateIsRefusedAndChangesNothing) {
  ShadowStats stats;
  stats.observeMiss("m");
  const std::string before = toJson(stats.report(0.98));
  for (const char* bad :
       {R"({"version":2,"models":{}})", R"({"version":1})", R"({"version":1,"models":{"m":{}}})",
        R"({"version":1,"models":{"m":{"misses":1,"pairs":0,"at":[[1,1,1,0]]}}})",
        R"({"version":1,"models":{"m":{"misses":-1,"pairs":0,"at":[]}}})", "[]"}) {
    auto parsed = parseJson(bad);
    ASSERT_TRUE(parsed) << bad;
    auto r = stats.restore(*parsed);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, Errc::Corrupt);
  }
  EXPECT_EQ(toJson(stats.report(0.98)), before);
}

}  // namespace
}  // namespace llmcache::semantic
