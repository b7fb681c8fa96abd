// The C++ key against the key spec v1 vectors: every row of the project's copy,
// tests/keyspec/vectors.jsonl, and, when the spec's Python reference is present (../shared/keyspec
// or LLMCACHE_KEYSPEC_DIR), fresh rows that make_vectors.py generates now with a seed that changes
// per run.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>

#include "key/cache_key.h"
#include "key/keyspec_vectors.h"

namespace llmcache::key {
namespace {

struct RowResult {
  int checked = 0;
  int errors = 0;  // rows the reference rejects
};

// Checks one vector line; records a test failure naming the line on any mismatch.
void checkRow(const std::string& line, size_t lineNo, RowResult& res) {
  auto row = parseJson(line);
  ASSERT_TRUE(row) << "line " << lineNo << ": " << row.error().message;
  KeyOptions opts;
  opts.endpoint = *parseEndpoint(*row->getString("endpoint"));
  opts.mode = *parseNormalizeMode(*row->getString("normalize"));
  if (auto s = row->getString("scope")) opts.scope = std::string(*s);
  if (auto n = row->getString("namespace")) opts.keyNamespace = std::string(*n);
  const std::string body(*row->getString("request"));
  auto request = parseRequest(body);
  Result<CacheKey> key = request ? computeKey(*request, opts) : Result<CacheKey>(request.error());
  ++res.checked;
  if (row->find("error")) {
    ++res.errors;
    EXPECT_FALSE(key) << "line " << lineNo << " must be rejected (" << *row->getString("error")
                      << "): " << body;
    return;
  }
  ASSERT_TRUE(key) << "line " << lineNo << ": " << key.error().message << "\n" << body;
  EXPECT_EQ(key->canonical, *row->getString("canonical")) << "line " << lineNo << ": " << body;
  EXPECT_EQ(key->requestHash, *row->getString("request_hash")) << "line " << lineNo;
  EXPECT_EQ(key->cacheKey, *row->getString("cache_key")) << "line " << lineNo;
}

TEST(KeySpecVectors, EveryRowOfTheProjectVectorsMatches) {
  const auto path = testing::vectorsPath();
  std::ifstream in(path);
  ASSERT_TRUE(in) << "cannot read " << path;
  std::string line;
  RowResult res;
  size_t n = 0;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    checkRow(line, ++n, res);
  }
  EXPECT_GE(res.checked, 1034);
  EXPECT_GT(res.errors, 0);
}

TEST(KeySpecVectors, FreshRowsFromTheGeneratorMatch) {
  if (!testing::hasReference())
    GTEST_SKIP() << "no key spec reference (make_vectors.py, cache_key.py) in "
                 << testing::keyspecDir() << ": only the project's vectors are checked";
  unsigned seed = std::random_device{}();
  if (const char* s = std::getenv("LLMCACHE_KEY_SEED")) seed = static_cast<unsigned>(std::stoul(s));
  std::printf("make_vectors.py seed %u (replay: LLMCACHE_KEY_SEED=%u)\n", seed, seed);
  const auto script = testing::keyspecDir() / "make_vectors.py";
  const std::string cmd = "python3 '" + script.string() + "' --no-hand --seed " +
                          std::to_string(seed) + " --count 2000";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string all;
  char buf[65536];
  size_t got;
  while ((got = fread(buf, 1, sizeof buf, p)) > 0) all.append(buf, got);
  ASSERT_EQ(pclose(p), 0) << "generator failed: " << cmd;
  std::istringstream lines(all);
  std::string line;
  RowResult res;
  size_t n = 0;
  while (std::getline(lines, line)) checkRow(line, ++n, res);
  EXPECT_EQ(res.checked, 2000) << "seed " << seed;
}

KeyOptions chat() { return KeyOptions{}; }

CacheKey keyOf(std::string_view body, KeyOptions opts = chat()) {
  auto req = parseRequest(body);
  EXPECT_TRUE(req) << body;
  auto k = computeKey(*req, opts);
  EXPECT_TRUE(k) << body << ": " << (k ? "" : k.error().message);
  return *k;
}

TEST(CacheKey, ScopeSeparatesTenants) {
  const char* body = R"({"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]})";
  KeyOptions a, b;
  a.scope = "tenant-a";
  b.scope = "tenant-b";
  EXPECT_NE(keyOf(body, a).requestHash, keyOf(body, b).requestHash);
  EXPECT_NE(keyOf(body, a).requestHash, keyOf(body).requestHash);
}

TEST(CacheKey, StreamAndUserDoNotChangeTheKey) {
  EXPECT_EQ(keyOf(R"({"model":"m","messages":[],"stream":true,"user":"u1"})").requestHash,
            keyOf(R"({"model":"m","messages":[]})").requestHash);
}

TEST(CacheKey, InvalidRequestsAreClearErrors) {
  struct Case {
    const char* body;
    const char* message;
  } cases[] = {
      {"[1]", "must be a JSON object"},
      {R"({"messages":[]})", "'model'"},
      {R"({"model":"m","messages":{}})", "'messages' must be an array"},
      {R"({"model":"m","messages":[{"content":"x"}]})", "'role'"},
      {R"({"model":"m","temperature":true})", "'temperature' must be a number"},
  };
  for (const auto& c : cases) {
    auto req = parseRequest(c.body);
    ASSERT_TRUE(req);
    auto k = computeKey(*req, chat());
    ASSERT_FALSE(k) << c.body;
    EXPECT_NE(k.error().message.find(c.message), std::string::npos) << k.error().message;
  }
}

TEST(CacheKey, OverflowingFloatAnywhereIsRejectedAtParse) {
  EXPECT_FALSE(parseRequest(R"({"model":"m","stream":1e400})"));
  EXPECT_TRUE(parseRequest(R"({"model":"m","x":1e-400})"));
  EXPECT_FALSE(parseRequest(R"({"model":"m","x":NaN})"));
}

TEST(CacheKey, DeepNestingIsRejected) {
  std::string body = R"({"model":"m","x":)" + std::string(200, '[') + std::string(200, ']') + "}";
  auto r = parseRequest(body);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("nesting"), std::string::npos);
}

}  // namespace
}  // namespace llmcache::key
