#include "gateway/key_memo.h"

#include <gtest/gtest.h>

namespace llmcache::gateway {
namespace {

std::shared_ptr<const KeyMemo::Value> value(std::string hash) {
  KeyMemo::Value v;
  v.key.requestHash = std::move(hash);
  return std::make_shared<const KeyMemo::Value>(v);
}

TEST(KeyMemo, TheSameInputsFindTheRememberedKey) {
  KeyMemo memo(100);
  const auto k = KeyMemo::memoKey(key::Endpoint::OpenAiChat, key::NormalizeMode::Seed, "t1", "", "{}");
  memo.put(k, value("h1"));
  auto found = memo.find(KeyMemo::memoKey(key::Endpoint::OpenAiChat, key::NormalizeMode::Seed, "t1", "", "{}"));
  ASSERT_TRUE(found);
  EXPECT_EQ(found->key.requestHash, "h1");
}

TEST(KeyMemo, EveryInputOfTheKeyTellsMemoKeysApart) {
  using E = key::Endpoint;
  using M = key::NormalizeMode;
  const std::string base = KeyMemo::memoKey(E::OpenAiChat, M::Seed, "t1", "ns", "{}");
  EXPECT_NE(base, KeyMemo::memoKey(E::AnthropicMessages, M::Seed, "t1", "ns", "{}"));
  EXPECT_NE(base, KeyMemo::memoKey(E::OpenAiChat, M::Exact, "t1", "ns", "{}"));
  EXPECT_NE(base, KeyMemo::memoKey(E::OpenAiChat, M::Seed, "t2", "ns", "{}"));
  EXPECT_NE(base, KeyMemo::memoKey(E::OpenAiChat, M::Seed, "t1", "", "{}"));
  EXPECT_NE(base, KeyMemo::memoKey(E::OpenAiChat, M::Seed, "t1", "ns", "{ }"));
  // Scope and namespace cannot be shifted into each other.
  EXPECT_NE(KeyMemo::memoKey(E::OpenAiChat, M::Seed, "ab", "c", "{}"),
            KeyMemo::memoKey(E::OpenAiChat, M::Seed, "a", "bc", "{}"));
}

TEST(KeyMemo, TheLeastRecentlyUsedGoesAtTheBound) {
  KeyMemo memo(2, 1);
  memo.put("a", value("a"));
  memo.put("b", value("b"));
  EXPECT_TRUE(memo.find("a"));  // a is now the most recent
  memo.put("c", value("c"));
  EXPECT_TRUE(memo.find("a"));
  EXPECT_FALSE(memo.find("b"));
  EXPECT_TRUE(memo.find("c"));
}

TEST(KeyMemo, ZeroEntriesTurnsItOffAndHugeBodiesAreNotKept) {
  KeyMemo off(0);
  off.put("a", value("a"));
  EXPECT_FALSE(off.find("a"));
  KeyMemo memo(10, 1);
  const std::string huge(KeyMemo::kMaxBodyBytes + 1, 'x');
  memo.put(huge, value("h"));
  EXPECT_FALSE(memo.find(huge));
}

}  // namespace
}  // namespace llmcache::gateway
