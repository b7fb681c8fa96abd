#include "key/md5_lanes.h"

#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "common/json.h"
#include "key/keyspec_vectors.h"

namespace llmcache::key {
namespace {

// Every lane count the CPU has (16, 8, 1), each form checked against the one-shot MD5.
std::vector<size_t> laneCounts() {
  std::vector<size_t> out;
  const size_t was = limitMd5Lanes(16);
  for (size_t lanes : {16, 8, 1}) {
    limitMd5Lanes(lanes);
    if (md5Lanes() == lanes) out.push_back(lanes);
  }
  limitMd5Lanes(was);
  return out;
}

std::vector<std::string> hashMany(const std::vector<std::string>& texts) {
  std::vector<std::string_view> views(texts.begin(), texts.end());
  std::vector<std::string> hex(texts.size(), std::string(32, '?'));
  std::vector<char*> out;
  for (std::string& h : hex) out.push_back(h.data());
  md5HexMany(views.data(), out.data(), views.size());
  return hex;
}

std::string hashOne(std::string_view text) {
  std::string hex(32, '?');
  md5Hex(text, hex.data());
  return hex;
}

TEST(Md5, KnownDigests) {
  EXPECT_EQ(hashOne(""), "d41d8cd98f00b204e9800998ecf8427e");
  EXPECT_EQ(hashOne("abc"), "900150983cd24fb0d6963f7d28e17f72");
  const size_t was = limitMd5Lanes(16);
  for (size_t lanes : laneCounts()) {
    limitMd5Lanes(lanes);
    const auto h = hashMany({"", "abc", "message digest", std::string(1000, 'a')});
    EXPECT_EQ(h[0], "d41d8cd98f00b204e9800998ecf8427e") << lanes << " lanes";
    EXPECT_EQ(h[1], "900150983cd24fb0d6963f7d28e17f72") << lanes << " lanes";
    EXPECT_EQ(h[2], "f96b697d7cb7938d525a2f31aaf161d0") << lanes << " lanes";
    EXPECT_EQ(h[3], hashOne(std::string(1000, 'a'))) << lanes << " lanes";
  }
  limitMd5Lanes(was);
}

// Every length around the padding's edges (55, 56, 63, 64, ...) and random texts of random
// lengths in batches of every size up to a few times the lanes, so lanes finish and refill at
// every block.
TEST(Md5, LanesAgreeWithOneShot) {
  std::mt19937 rng(std::random_device{}());
  const size_t was = limitMd5Lanes(16);
  for (size_t lanes : laneCounts()) {
    limitMd5Lanes(lanes);
    std::vector<std::string> texts;
    for (size_t len = 0; len <= 300; ++len) texts.push_back(std::string(len, char('a' + len % 26)));
    auto hex = hashMany(texts);
    for (size_t i = 0; i < texts.size(); ++i)
      ASSERT_EQ(hex[i], hashOne(texts[i])) << lanes << " lanes, length " << i;
    for (int round = 0; round < 100; ++round) {
      texts.assign(rng() % 70, {});
      for (std::string& t : texts) {
        t.resize(rng() % (round < 10 ? 200 : 5000));
        for (char& c : t) c = static_cast<char>(rng());
      }
      hex = hashMany(texts);
      for (size_t i = 0; i < texts.size(); ++i)
        ASSERT_EQ(hex[i], hashOne(texts[i])) << lanes << " lanes, length " << texts[i].size();
    }
  }
  limitMd5Lanes(was);
}

// The key spec's request_hash of every vector, from its canonical text, hashed side by side.
TEST(Md5, VectorHashesInLanes) {
  std::ifstream in(testing::vectorsPath());
  ASSERT_TRUE(in);
  std::vector<std::string> canonical, expected;
  std::string line;
  while (std::getline(in, line)) {
    auto row = parseJson(line);
    ASSERT_TRUE(row);
    if (row->find("error")) continue;
    canonical.emplace_back(*row->getString("canonical"));
    expected.emplace_back(*row->getString("request_hash"));
  }
  ASSERT_GT(canonical.size(), 1000u);
  const size_t was = limitMd5Lanes(16);
  for (size_t lanes : laneCounts()) {
    limitMd5Lanes(lanes);
    EXPECT_EQ(hashMany(canonical), expected) << lanes << " lanes";
  }
  limitMd5Lanes(was);
}

}  // namespace
}  // namespace llmcache::key
