#include "cache/cassette/cassette_tier.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "cache/test_entry.h"
#include "cache/tier_conformance.h"

namespace llmcache::cache {
namespace {

namespace fs = std::filesystem;
using test::CacheTierConformance;
using test::makeTestEntry;
using test::TierFactory;

fs::path freshDir() {
  static std::mt19937_64 rng{std::random_device{}()};
  fs::path d = fs::temp_directory_path() / ("llmcache-cassette-test-" + std::to_string(rng()));
  fs::create_directories(d);
  return d;
}

std::string readText(const fs::path& p) {
  std::ifstream in(p);
  return {std::istreambuf_iterator<char>(in), {}};
}

TierFactory cassetteFactory() {
  struct Dirs {
    fs::path current;
    std::vector<fs::path> all;
  };
  auto dirs = std::make_shared<Dirs>();
  TierFactory f;
  f.name = "Cassette";
  f.make = [dirs] {
    dirs->current = freshDir();
    dirs->all.push_back(dirs->current);
    return std::make_unique<CassetteTier>(CassetteTierOptions{.dir = dirs->current});
  };
  // Unbounded (never evicts) and keeps an unreadable file (the user's): those cases are skipped.
  f.reopen = [dirs] {
    return std::make_unique<CassetteTier>(CassetteTierOptions{.dir = dirs->current});
  };
  f.cleanup = [dirs] {
    std::error_code ec;
    for (const auto& d : dirs->all) fs::remove_all(d, ec);
    dirs->all.clear();
  };
  return f;
}

INSTANTIATE_TEST_SUITE_P(Cassette, CacheTierConformance, ::testing::Values(cassetteFactory()),
                         test::tierFactoryName);

class CassetteTierTest : public ::testing::Test {
 protected:
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  fs::path dir_ = freshDir();
};

TEST_F(CassetteTierTest, EntryIsAPrettyPrintedFileNamedByItsKey) {
  CassetteTier tier({.dir = dir_});
  auto e = std::make_shared<const Entry>(makeTestEntry("gpt-4o-mini:00112233aabbccdd"));
  ASSERT_TRUE(tier.insert(e));
  const fs::path p = dir_ / "entries" / "gpt-4o-mini_00112233aabbccdd.json";
  ASSERT_TRUE(fs::exists(p));
  const std::string text = readText(p);
  EXPECT_NE(text.find("\n  \"cache_key\": \"gpt-4o-mini:00112233aabbccdd\",\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("\"request\": {\n"), std::string::npos) << "the body embedded as JSON";
  EXPECT_TRUE(fs::exists(dir_ / "cassette.json"));
}

TEST_F(CassetteTierTest, UnreadableFileIsAMissAndIsKept) {
  CassetteTier tier({.dir = dir_});
  const fs::path p = CassetteTier::entryPath(dir_, "m:1");
  std::ofstream(p) << "{ not json";
  auto r = tier.lookup("m:1");
  ASSERT_TRUE(r);
  EXPECT_FALSE(*r);
  EXPECT_TRUE(fs::exists(p));
  EXPECT_EQ(tier.unreadable(), 1u);
}

TEST_F(CassetteTierTest, ReplayRunListsTheKeysItServedAndStartsEmpty) {
  {
    CassetteTier tier({.dir = dir_});
    ASSERT_TRUE(tier.insert(std::make_shared<const Entry>(makeTestEntry("m:aa"))));
    ASSERT_TRUE(tier.insert(std::make_shared<const Entry>(makeTestEntry("m:bb"))));
  }
  {
    CassetteTier replay({.dir = dir_, .trackUse = true});
    ASSERT_TRUE(replay.lookup("m:bb"));
    ASSERT_TRUE(replay.lookup("m:zz"));  // a miss is not a use
    auto used = CassetteTier::lastReplayKeys(dir_);
    ASSERT_TRUE(used);
    EXPECT_EQ(*used, (std::set<std::string>{"m:bb"}));
  }
  CassetteTier again({.dir = dir_, .trackUse = true});
  auto used = CassetteTier::lastReplayKeys(dir_);
  ASSERT_TRUE(used);
  EXPECT_TRUE(used->empty());
}

TEST_F(CassetteTierTest, AnotherFormatVersionIsRefused) {
  std::ofstream(dir_ / "cassette.json") << R"({"format":"llmcache-cassette","version":99})";
  EXPECT_THROW(CassetteTier({.dir = dir_}), std::runtime_error);
}

TEST(PrettyJson, IndentsAndKeepsNumbersAsWritten) {
  auto j = parseJson(R"({"a":[1,2.50],"b":{},"c":"x\ny"})");
  ASSERT_TRUE(j);
  EXPECT_EQ(prettyJson(*j),
            "{\n  \"a\": [\n    1,\n    2.50\n  ],\n  \"b\": {},\n  \"c\": \"x\\ny\"\n}\n");
}

}  // namespace
}  // namespace llmcache::cache
