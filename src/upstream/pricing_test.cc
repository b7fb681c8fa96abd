#include "upstream/pricing.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "common/json.h"

namespace llmcache::upstream {
namespace {

const PricingTable& table() { return PricingTable::builtin(); }

TEST(Pricing, TheShippedTableParsesAndNamesItsDate) {
  EXPECT_GT(table().size(), 50u);
  EXPECT_FALSE(table().pricesAsOf().empty());
}

TEST(Pricing, TheShippedTableCoversTheCommonModels) {
  for (const char* model : {"gpt-4o",
                            "gpt-4o-mini",
                            "gpt-4.1",
                            "gpt-4.1-mini",
                            "gpt-4.1-nano",
                            "o1",
                            "o3",
                            "o3-mini",
                            "o4-mini",
                            "gpt-3.5-turbo",
                            "gpt-3.5-turbo-instruct",
                            "text-embedding-3-small",
                            "text-embedding-3-large",
                            "text-embedding-ada-002",
                            "gpt-5",
                            "gpt-5-mini",
                            "gpt-5-nano",
                            "claude-3-5-sonnet",
                            "claude-3-5-haiku",
                            "claude-3-7-sonnet",
                            "claude-sonnet-4",
                            "claude-opus-4",
                            "claude-3-opus",
                            "claude-3-haiku",
                            "gemini-2.0-flash",
                            "gemini-2.0-flash-lite",
                            "gemini-1.5-pro",
                            "gemini-1.5-flash",
                            "gemini-2.5-pro",
                            "gemini-2.5-flash",
                            "llama-3.1-8b-instruct",
                            "llama-3.1-70b-instruct",
                            "llama-3.3-70b-instruct",
                            "mistral-small",
                            "mistral-large",
                            "mistral-medium",
                            "codestral",
                            "deepseek-chat",
                            "deepseek-reasoner",
                            "qwen-2.5-72b-instruct",
                            "qwen-max",
                            "qwen-plus",
                            "qwen-turbo"}) {
    EXPECT_TRUE(table().find(model).has_value()) << model;
  }
}

TEST(Pricing, ExactModelHasItsListPrice) {
  EXPECT_EQ(table().find("gpt-4o"), (Price{2.5, 10}));
  EXPECT_EQ(table().find("gpt-4o-mini"), (Price{0.15, 0.6}));
  EXPECT_EQ(table().find("claude-3-5-sonnet"), (Price{3, 15}));
}

TEST(Pricing, DatedVariantsTakeTheirBaseModelsPrice) {
  EXPECT_EQ(table().find("gpt-4o-2024-08-06"), table().find("gpt-4o"));
  EXPECT_EQ(table().find("claude-3-5-sonnet-20241022"), table().find("claude-3-5-sonnet"));
  EXPECT_EQ(table().find("claude-3-5-sonnet-latest"), table().find("claude-3-5-sonnet"));
  EXPECT_EQ(table().find("o3-mini-2025-01-31"), table().find("o3-mini"));
  EXPECT_EQ(table().find("gemini-2.0-flash-001"), table().find("gemini-2.0-flash"));
}

TEST(Pricing, TheLongestMatchingPrefixWins) {
  EXPECT_EQ(table().find("gpt-4o-mini-2024-07-18"), (Price{0.15, 0.6}));
  EXPECT_EQ(table().find("gemini-2.0-flash-lite-001"), table().find("gemini-2.0-flash-lite"));
  EXPECT_EQ(table().find("gpt-4-turbo-2024-04-09"), (Price{10, 30}));
  EXPECT_EQ(table().find("gpt-4-0613"), (Price{30, 60}));
  // A snapshot priced differently from its family is listed whole and wins over the prefix.
  EXPECT_EQ(table().find("gpt-4o-2024-05-13"), (Price{5, 15}));
}

TEST(Pricing, PrefixMatchesOnlyAtADashBoundary) {
  PricingTable t;
  t.set("gpt-4", Price{30, 60});
  EXPECT_EQ(t.find("gpt-4o"), std::nullopt);
  EXPECT_EQ(t.find("gpt-4-0613"), (Price{30, 60}));
}

TEST(Pricing, VendorPrefixIsIgnoredAndCaseToo) {
  EXPECT_EQ(table().find("openai/gpt-4o-mini"), table().find("gpt-4o-mini"));
  EXPECT_EQ(table().find("meta-llama/llama-3.1-8b-instruct"),
            table().find("llama-3.1-8b-instruct"));
  EXPECT_EQ(table().find("Meta-Llama/Llama-3.1-8B-Instruct"),
            table().find("llama-3.1-8b-instruct"));
  EXPECT_EQ(table().find("models/gemini-1.5-pro"), table().find("gemini-1.5-pro"));
  EXPECT_EQ(table().find("mistralai/mistral-large-2411"), table().find("mistral-large"));
}

TEST(Pricing, OpenRouterDottedClaudeNamesMapToAnthropicIds) {
  EXPECT_EQ(table().find("anthropic/claude-3.5-sonnet"), table().find("claude-3-5-sonnet"));
  EXPECT_EQ(table().find("anthropic/claude-3.7-sonnet:thinking"),
            table().find("claude-3-7-sonnet"));
  EXPECT_EQ(table().find("anthropic/claude-opus-4.5"), (Price{5, 25}));
}

TEST(Pricing, FreeVariantCostsNothing) {
  EXPECT_EQ(table().find("meta-llama/llama-3.3-70b-instruct:free"), (Price{0, 0}));
  EXPECT_EQ(table().find("some-lab/unknown-model:free"), (Price{0, 0}));
  EXPECT_EQ(table().find("deepseek/deepseek-chat:beta"), table().find("deepseek-chat"));
}

TEST(Pricing, UnknownModelIsNullopt) {
  EXPECT_EQ(table().find("totally-unknown-model"), std::nullopt);
  EXPECT_EQ(table().find(""), std::nullopt);
  EXPECT_EQ(table().find("openai/"), std::nullopt);
  // Fine-tunes cost more than their base model: unknown unless listed whole.
  EXPECT_EQ(table().find("ft:gpt-4o-mini-2024-07-18:acme::abc123"), std::nullopt);
}

TEST(Pricing, CostIsTokensTimesPricePerMillion) {
  Cost c = costOf(Price{2.5, 10}, 1000, 500);
  EXPECT_DOUBLE_EQ(c.input, 0.0025);
  EXPECT_DOUBLE_EQ(c.output, 0.005);
  EXPECT_DOUBLE_EQ(c.total, c.input + c.output);
  EXPECT_NEAR(c.total, 0.0075, 1e-15);
  Cost big = costOf(Price{15, 75}, 1'000'000, 2'000'000);
  EXPECT_DOUBLE_EQ(big.input, 15);
  EXPECT_DOUBLE_EQ(big.output, 150);
  EXPECT_DOUBLE_EQ(big.total, 165);
  Cost none = costOf(Price{2.5, 10}, -5, 0);
  EXPECT_EQ(none.total, 0);
}

TEST(Pricing, ProviderIsTheVendorPrefix) {
  EXPECT_EQ(providerOf("openai/gpt-4o"), "openai");
  EXPECT_EQ(providerOf("Meta-Llama/llama-3.1-8b-instruct"), "meta-llama");
  EXPECT_EQ(providerOf("gpt-4o"), "");
  EXPECT_EQ(providerOf("a/b/c"), "a");
}

TEST(Pricing, FromJsonRejectsWhatItCannotUse) {
  EXPECT_FALSE(PricingTable::fromJson("not json"));
  EXPECT_FALSE(PricingTable::fromJson(R"({"version":2,"models":{}})"));
  EXPECT_FALSE(PricingTable::fromJson(R"({"version":1})"));
  EXPECT_FALSE(PricingTable::fromJson(R"({"version":1,"models":{"m":{"input":1}}})"));
  EXPECT_FALSE(PricingTable::fromJson(R"({"version":1,"models":{"m":{"input":-1,"output":1}}})"));
  auto bad = PricingTable::fromJson(R"({"version":1,"models":{"m":{"input":"1","output":1}}})");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, Errc::InvalidArgument);
  EXPECT_NE(bad.error().message.find("\"m\""), std::string::npos);
  auto ok = PricingTable::fromJson(
      R"({"version":1,"models":{"My-Model":{"input":1,"output":2,"note":"x"}}})");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->find("my-model"), (Price{1, 2}));
  EXPECT_EQ(ok->find("gpt-4o"), std::nullopt);  // fromJson is the text's models only
}

class TempFile {
 public:
  explicit TempFile(const std::string& content) {
    path_ = std::filesystem::temp_directory_path() /
            ("llmcache_pricing_test_" + std::to_string(getpid()) + "_" +
             std::to_string(counter_++) + ".json");
    std::ofstream(path_) << content;
  }
  ~TempFile() { std::filesystem::remove(path_); }
  const std::filesystem::path& path() const { return path_; }

 private:
  static inline int counter_ = 0;
  std::filesystem::path path_;
};

TEST(Pricing, AFileOverridesAndExtendsTheBuiltinTable) {
  TempFile file(R"({"version":1,"prices_as_of":"2030-01-01","models":{
      "gpt-4o":{"input":1,"output":4},
      "in-house-model":{"input":0.5,"output":0.5},
      "ft:gpt-4o-mini-2024-07-18:acme::abc123":{"input":0.3,"output":1.2}}})");
  auto loaded = PricingTable::loadFile(file.path());
  ASSERT_TRUE(loaded) << loaded.error().message;
  EXPECT_EQ(loaded->find("gpt-4o"), (Price{1, 4}));
  EXPECT_EQ(loaded->find("gpt-4o-2024-08-06"), (Price{1, 4}));
  EXPECT_EQ(loaded->find("in-house-model"), (Price{0.5, 0.5}));
  EXPECT_EQ(loaded->find("ft:gpt-4o-mini-2024-07-18:acme::abc123"), (Price{0.3, 1.2}));
  EXPECT_EQ(loaded->find("claude-3-haiku"), table().find("claude-3-haiku"));
  EXPECT_EQ(loaded->pricesAsOf(), "2030-01-01");
  EXPECT_EQ(table().find("gpt-4o"), (Price{2.5, 10}));  // the builtin table is untouched
}

TEST(Pricing, LoadFileReportsMissingAndBrokenFiles) {
  auto missing = PricingTable::loadFile("/nonexistent/llmcache/pricing.json");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, Errc::Io);
  TempFile broken(R"({"version":1,"models":{"x":{}}})");
  auto bad = PricingTable::loadFile(broken.path());
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, Errc::InvalidArgument);
  EXPECT_NE(bad.error().message.find(broken.path().string()), std::string::npos);
}

TEST(Pricing, TheEmbeddedTableIsTheSourceFileByteForByte) {
  const char* dir = std::getenv("LLMCACHE_SOURCE_DIR");
  if (dir == nullptr) GTEST_SKIP() << "LLMCACHE_SOURCE_DIR is not set";
  std::ifstream in(std::filesystem::path(dir) / "src/upstream/pricing.json", std::ios::binary);
  std::string source((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(detail::kBuiltinPricingJson, source) << "re-run cmake after editing pricing.json";
}

}  // namespace
}  // namespace llmcache::upstream
