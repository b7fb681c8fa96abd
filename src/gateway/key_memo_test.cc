#include "gateway/key_memo.h"

#include <gtest/gtest.h>

namespace llmcache::gateway {
namespace {

key::KeyOptions options(key::Endpoint e, key::NormalizeMode m, std::string_view scope,
                        std::string_view ns,
                        std::vector<std::pair<std::string, std::string>> context = {}) {
  return {.endpoint = e,
          .mode = m,
          .scope = std::string(scope),
          .keyNamespace = std::string(ns),
          .context = std::move(context)};
}

std::string text(key::Endpoint e, key::NormalizeMode m, std::string_view scope, std::string_view ns,
                 std::string_view body,
                 std::vector<std::pair<std::string, std::string>> context = {}) {
  return KeyMemo::probe(options(e, m, scope, ns, std::move(context)), body).text();
}

KeyMemo::Probe plain(std::string_view body) {
  return KeyMemo::probe(options(key::Endpoint::OpenAiChat, key::NormalizeMode::Seed, "", ""), body);
}

std::shared_ptr<const KeyMemo::Value> value(std::string hash) {
  KeyMemo::Value v;
  v.key.requestHash = std::move(hash);
  return std::make_shared<const KeyMemo::Value>(v);
}

TEST(KeyMemo, TheSameInputsFindTheRememberedKey) {
  KeyMemo memo(100);
  std::string body = "{}";
  memo.put(
      KeyMemo::probe(options(key::Endpoint::OpenAiChat, key::NormalizeMode::Seed, "t1", ""), body),
      value("h1"));
  body = "xx";  // the memo kept its own copy of the body
  const std::string again = "{}";
  auto found = memo.find(KeyMemo::probe(
      options(key::Endpoint::OpenAiChat, key::NormalizeMode::Seed, "t1", ""), again));
  ASSERT_TRUE(found);
  EXPECT_EQ(found->key.requestHash, "h1");
}

TEST(KeyMemo, EveryInputOfTheKeyTellsMemoKeysApart) {
  using E = key::Endpoint;
  using M = key::NormalizeMode;
  const std::string base = text(E::OpenAiChat, M::Seed, "t1", "ns", "{}");
  EXPECT_NE(base, text(E::AnthropicMessages, M::Seed, "t1", "ns", "{}"));
  EXPECT_NE(base, text(E::OpenAiChat, M::Exact, "t1", "ns", "{}"));
  EXPECT_NE(base, text(E::OpenAiChat, M::Seed, "t2", "ns", "{}"));
  EXPECT_NE(base, text(E::OpenAiChat, M::Seed, "t1", "", "{}"));
  EXPECT_NE(base, text(E::OpenAiChat, M::Seed, "t1", "ns", "{ }"));
  EXPECT_NE(base, text(E::OpenAiChat, M::Seed, "t1", "ns", "{}", {{"platform", "groq"}}));
  EXPECT_NE(text(E::OpenAiChat, M::Seed, "t1", "ns", "{}", {{"query", "a=1"}}),
            text(E::OpenAiChat, M::Seed, "t1", "ns", "{}", {{"query", "a=2"}}));
  // Scope, namespace and context cannot be shifted into each other.
  EXPECT_NE(text(E::OpenAiChat, M::Seed, "ab", "c", "{}"),
            text(E::OpenAiChat, M::Seed, "a", "bc", "{}"));
  EXPECT_NE(text(E::OpenAiChat, M::Seed, "t1", "", "{}", {{"ab", "c"}}),
            text(E::OpenAiChat, M::Seed, "t1", "", "{}", {{"a", "bc"}}));
}

TEST(KeyMemo, ABodyThatOnlySharesTheHashOrAPrefixIsNotFound) {
  KeyMemo memo(100, size_t{1} << 20, 1);
  memo.put(plain("{\"a\":1}"), value("h1"));
  EXPECT_FALSE(memo.find(plain("{\"a\":1} ")));
  EXPECT_FALSE(memo.find(plain("{\"a\":1")));
  KeyMemo::Probe forged = plain("{\"a\":2}");
  forged.hash = plain("{\"a\":1}").hash;  // a collision must still compare the bytes
  EXPECT_FALSE(memo.find(forged));
}

TEST(KeyMemo, TheLeastRecentlyUsedGoesAtTheBound) {
  KeyMemo memo(2, size_t{1} << 20, 1);
  memo.put(plain("a"), value("a"));
  memo.put(plain("b"), value("b"));
  EXPECT_TRUE(memo.find(plain("a")));  // a is now the most recent
  memo.put(plain("c"), value("c"));
  EXPECT_TRUE(memo.find(plain("a")));
  EXPECT_FALSE(memo.find(plain("b")));
  EXPECT_TRUE(memo.find(plain("c")));
}

TEST(KeyMemo, ZeroEntriesTurnsItOffAndHugeBodiesAreNotKept) {
  KeyMemo off(0);
  off.put(plain("a"), value("a"));
  EXPECT_FALSE(off.find(plain("a")));
  KeyMemo memo(10, size_t{1} << 20, 1);
  const std::string huge(KeyMemo::kMaxBodyBytes + 1, 'x');
  memo.put(plain(huge), value("h"));
  EXPECT_FALSE(memo.find(plain(huge)));
}

TEST(KeyMemo, TheByteBoundHoldsWhateverTheEntryBound) {
  // Regression (issue 15): 6,000 distinct 60 KB bodies under the entry bound held ~800 MB.
  const size_t maxBytes = 1 << 20;
  KeyMemo memo(10000, maxBytes, 1);
  std::vector<std::string> bodies;
  for (int i = 0; i < 100; ++i)
    bodies.push_back(std::string(60 << 10, char('a' + i % 26)) + std::to_string(i));
  for (const auto& b : bodies) memo.put(plain(b), value("h"));
  size_t kept = 0;
  for (const auto& b : bodies) kept += memo.find(plain(b)) ? 1 : 0;
  EXPECT_LE(kept * (60 << 10), maxBytes);
  EXPECT_GT(kept, 0u);
  EXPECT_TRUE(memo.find(plain(bodies.back())));  // the most recent stay
}

}  // namespace
}  // namespace llmcache::gateway
