// The C++ key against the key spec v1 vectors: every row of the project's copy,
// tests/keyspec/vectors.jsonl, and, when the spec's Python reference is present (../shared/keyspec
// or LLMCACHE_KEYSPEC_DIR), fresh rows that make_vectors.py generates now with a seed that changes
// per run.
#include <gtest/gtest.h>

#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>

#include "key/cache_key.h"
#include "key/canonical.h"
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
  // Both ways to a key: the gateway's (parseRequest, then computeKey on the Json) and the
  // flat one (KeyBuilder on the body text, as `llmcache key` does).
  auto request = parseRequest(body);
  Result<CacheKey> key = request ? computeKey(*request, opts) : Result<CacheKey>(request.error());
  static KeyBuilder builder;
  auto flat = builder.key(body, opts);
  // And the batch form's (`llmcache key --jsonl`): the key without its hash, hashed later.
  static KeyBuilder unhashedBuilder;
  auto unhashed = unhashedBuilder.keyWithoutHash(body, opts);
  ++res.checked;
  if (row->find("error")) {
    ++res.errors;
    EXPECT_FALSE(key) << "line " << lineNo << " must be rejected (" << *row->getString("error")
                      << "): " << body;
    EXPECT_FALSE(flat) << "line " << lineNo << " must be rejected: " << body;
    EXPECT_FALSE(unhashed) << "line " << lineNo << " must be rejected: " << body;
    if (!flat && !unhashed) {
      EXPECT_EQ(flat.error().message, unhashed.error().message);
    }
    return;
  }
  ASSERT_TRUE(key) << "line " << lineNo << ": " << key.error().message << "\n" << body;
  EXPECT_EQ(key->canonical, *row->getString("canonical")) << "line " << lineNo << ": " << body;
  EXPECT_EQ(key->requestHash, *row->getString("request_hash")) << "line " << lineNo;
  EXPECT_EQ(key->cacheKey, *row->getString("cache_key")) << "line " << lineNo;
  ASSERT_TRUE(flat) << "line " << lineNo << ": " << flat.error().message << "\n" << body;
  EXPECT_EQ(flat->canonical, *row->getString("canonical")) << "line " << lineNo << ": " << body;
  EXPECT_EQ(flat->requestHash, *row->getString("request_hash")) << "line " << lineNo;
  EXPECT_EQ(flat->cacheKey, *row->getString("cache_key")) << "line " << lineNo;
  ASSERT_TRUE(unhashed) << "line " << lineNo << ": " << unhashed.error().message;
  EXPECT_EQ(unhashed->canonical, *row->getString("canonical")) << "line " << lineNo;
  EXPECT_TRUE(unhashed->requestHash.empty());
  EXPECT_EQ(
      std::string(unhashed->cacheKey) + std::string(row->getString("request_hash")->substr(0, 16)),
      *row->getString("cache_key"))
      << "line " << lineNo;
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

// openai.responses: the gateway's addition to key spec v1 (docs/keyspec.md). Every body field
// but the ones that never change the answer goes into extra, canonicalized; unlike the other
// endpoints, `store` is one of them.
TEST(ResponsesKey, EveryAnswerShapingFieldChangesTheKey) {
  KeyOptions r;
  r.endpoint = Endpoint::OpenAiResponses;
  const std::string base = R"({"model":"gpt-4o","instructions":"Be terse.","input":"hi")";
  const std::string plain = keyOf(base + "}", r).requestHash;
  for (const char* field :
       {R"("instructions":"Be verbose.")", R"("input":[{"role":"user","content":"hi"}])",
        R"("tools":[{"type":"function","name":"f"}])", R"("tool_choice":"required")",
        R"("text":{"format":{"type":"json_object"}})", R"("reasoning":{"effort":"low"})",
        R"("previous_response_id":"resp_1")", R"("include":["reasoning.encrypted_content"])",
        R"("temperature":0.5)", R"("top_p":0.5)", R"("max_output_tokens":64)",
        R"("truncation":"auto")", R"("parallel_tool_calls":false)", R"("store":false)",
        R"("prompt":{"id":"p","version":"1"})"}) {
    EXPECT_NE(keyOf(base + "," + field + "}", r).requestHash, plain) << field;
  }
  for (const char* field : {R"("stream":true)", R"("metadata":{"a":"b"})", R"("user":"u")",
                            R"("service_tier":"flex")", R"("stream_options":{})"}) {
    EXPECT_EQ(keyOf(base + "," + field + "}", r).requestHash, plain) << field;
  }
  // The endpoint is in the key: the same body on chat keys differently, and on chat `store`
  // stays out of it (the v1 vectors).
  EXPECT_NE(keyOf(base + "}").requestHash, plain);
  EXPECT_EQ(keyOf(base + R"(,"store":true})").requestHash, keyOf(base + "}").requestHash);
  auto k = keyOf(base + "}", r);
  auto req = parseRequest(base + "}");
  auto full = computeKey(*req, r);
  ASSERT_TRUE(full);
  EXPECT_NE(full->canonical.find(R"("endpoint": "openai.responses")"), std::string::npos);
  EXPECT_EQ(parseEndpoint("openai.responses"), Endpoint::OpenAiResponses);
  EXPECT_EQ(endpointName(Endpoint::OpenAiResponses), "openai.responses");
}

TEST(ResponsesKey, KeyBuilderAgreesWithComputeKey) {
  KeyOptions r;
  r.endpoint = Endpoint::OpenAiResponses;
  const std::string body = R"({"model":"gpt-4o","input":"hi","store":true,"metadata":{}})";
  KeyBuilder b;
  auto v = b.key(body, r);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->requestHash, keyOf(body, r).requestHash);
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

// The canonical text of a request body, by the gateway's way (Json) and the flat one, which must
// agree.
std::string canonicalOf(std::string_view body, const KeyOptions& opts = chat()) {
  const CacheKey k = keyOf(body, opts);
  KeyBuilder builder;
  auto flat = builder.key(body, opts);
  EXPECT_TRUE(flat) << body;
  if (flat) {
    EXPECT_EQ(flat->canonical, k.canonical) << body;
  }
  return k.canonical;
}

TEST(RequestContext, GoesUnderExtraSortedByName) {
  const char* body = R"({"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]})";
  KeyOptions opts;
  opts.context = {{"query", "api-version=2024-06-01"},
                  {"header:openai-beta", "assistants=v2"},
                  {"platform", "groq"}};
  EXPECT_EQ(canonicalOf(body, opts),
            "{\n    \"model\": \"gpt-4o\",\n    \"messages\": [\n        {\n"
            "            \"role\": \"user\",\n            \"content\": \"hi\"\n        }\n"
            "    ],\n    \"temperature\": null,\n    \"max_tokens\": null,\n"
            "    \"functions\": null,\n    \"extra\": {\n        \"@context\": {\n"
            "            \"header:openai-beta\": \"assistants=v2\",\n"
            "            \"platform\": \"groq\",\n"
            "            \"query\": \"api-version=2024-06-01\"\n        }\n    }\n}");
  // Sorted among the other members of extra ('@' sorts before letters), the order given does not
  // matter, and a context changes the key.
  KeyOptions reordered = opts;
  std::swap(reordered.context[0], reordered.context[2]);
  reordered.scope = "t1";
  const std::string withScope = canonicalOf(body, reordered);
  EXPECT_NE(withScope.find("\"extra\": {\n        \"@context\": {"), std::string::npos)
      << withScope;
  EXPECT_NE(withScope.find("        },\n        \"scope\": \"t1\"\n    }"), std::string::npos)
      << withScope;
  EXPECT_NE(keyOf(body, opts).requestHash, keyOf(body).requestHash);
}

TEST(RequestContext, NoContextIsTheSpecKey) {
  // The key spec's own example (docs/keyspec.md, 4): an empty context adds nothing.
  const char* body =
      R"({"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "Hello   World\n"}], "temperature": 0.7})";
  KeyOptions opts;
  opts.mode = NormalizeMode::Seed;
  ASSERT_TRUE(opts.context.empty());
  const CacheKey k = keyOf(body, opts);
  EXPECT_EQ(k.requestHash, "6a9c0f77bdf06f953f019e2f5c22ebaa");
  EXPECT_EQ(k.cacheKey, "openai_gpt-4o-mini_6a9c0f77bdf06f95");
  EXPECT_EQ(k.canonical.find("extra"), std::string::npos);
  EXPECT_EQ(canonicalOf(body, opts), k.canonical);
}

TEST(RequestContext, BodyMayNotUseTheReservedMember) {
  const char* body = R"({"model":"m","messages":[],"@context":{"platform":"groq"}})";
  auto req = parseRequest(body);
  ASSERT_TRUE(req);
  KeyOptions withContext;
  withContext.context = {{"platform", "groq"}};
  for (const KeyOptions& opts : {chat(), withContext}) {
    auto k = computeKey(*req, opts);
    ASSERT_FALSE(k);
    EXPECT_NE(k.error().message.find("'@context' is reserved"), std::string::npos);
    KeyBuilder builder;
    auto flat = builder.key(body, opts);
    ASSERT_FALSE(flat);
    EXPECT_EQ(flat.error().message, k.error().message);
  }
}

TEST(CacheKey, IntegerTemperatureIsAFloatWithoutNegativeZero) {
  // Python: round(float(-0), 2) is 0.0 (the int -0 is 0); round(-0.001, 2) is -0.0.
  EXPECT_NE(canonicalOf(R"({"model":"m","temperature":-0})").find("\"temperature\": 0.0,"),
            std::string::npos);
  EXPECT_NE(canonicalOf(R"({"model":"m","temperature":-0.001})").find("\"temperature\": -0.0,"),
            std::string::npos);
  EXPECT_NE(canonicalOf(R"({"model":"m","temperature":2})").find("\"temperature\": 2.0,"),
            std::string::npos);
}

// round(t, 2) takes a shortcut (n / 100 from t * 100) away from halves; every temperature must
// still read as the exact way spells it: printf's "%.2f" read back, written as Python's repr.
TEST(CacheKey, TemperatureRoundsAsPythonRoundAtHalvesAndEverywhere) {
  std::mt19937_64 rng(std::random_device{}());
  std::vector<double> temps = {0.005,       0.015,        0.025,         0.125,  2.675,
                               -2.675,      1.005,        -0.0,          0.0,    -0.001,
                               21474836.47, 21474836.475, -21474836.485, 1e-320, 5e-324,
                               1e300,       -1e16,        0.994999999,   0.995,  0.9950000001};
  std::uniform_real_distribution<double> small(-3, 3), wide(-3e7, 3e7);
  for (int i = 0; i < 3000; ++i) {
    temps.push_back(small(rng));
    temps.push_back(wide(rng));
    temps.push_back(static_cast<double>(static_cast<int>(rng() % 200001) - 100000) / 100 + 0.005);
    double bits;
    const uint64_t r = rng();
    std::memcpy(&bits, &r, sizeof bits);
    if (std::isfinite(bits)) temps.push_back(bits);
  }
  KeyBuilder builder;
  for (const double t : temps) {
    char buf[400];
    const auto r = std::to_chars(buf, buf + sizeof buf, t, std::chars_format::fixed, 2);
    double rounded = 0;
    std::from_chars(buf, r.ptr, rounded);
    const std::string want = "\"temperature\": " + pythonFloatRepr(rounded) + ",";
    char literal[64];
    const auto l = std::to_chars(literal, literal + sizeof literal, t);  // round-trips
    std::string spelled(literal, l.ptr);
    if (spelled.find_first_of(".e") == std::string::npos) spelled += ".0";  // a float ("-0.0")
    const std::string body = R"({"model":"m","temperature":)" + spelled + "}";
    auto k = builder.key(body, chat());
    ASSERT_TRUE(k) << body;
    EXPECT_NE(k->canonical.find(want), std::string::npos) << body << " wants " << want;
  }
}

TEST(CacheKey, RepeatedKeysKeepTheLastValue) {
  EXPECT_EQ(canonicalOf(
                R"({"model":"a","model":"b","messages":[{"role":"x","role":"user"}],"n":1,"n":2})"),
            canonicalOf(R"({"model":"b","messages":[{"role":"user"}],"n":2})"));
}

TEST(CacheKey, CanonicalCanBeDropped) {
  auto req = parseRequest(R"({"model":"m","messages":[]})");
  ASSERT_TRUE(req);
  auto kept = computeKey(*req, chat());
  auto dropped = computeKey(*req, chat(), Canonical::Drop);
  ASSERT_TRUE(kept && dropped);
  EXPECT_TRUE(dropped->canonical.empty());
  EXPECT_EQ(dropped->requestHash, kept->requestHash);
  EXPECT_EQ(dropped->cacheKey, kept->cacheKey);
}

TEST(KeyBuilder, SameErrorsAsParseRequestAndComputeKey) {
  const char* bodies[] = {"",
                          "{not json",
                          "[1]",
                          R"({"messages":[]})",
                          R"({"model":"m","messages":{}})",
                          R"({"model":"m","messages":[{"content":"x"}]})",
                          R"({"model":"m","temperature":true})",
                          R"({"model":"m","stream":1e400})",
                          R"({"model":"m","x":NaN})",
                          "{\"model\":\"caf\xe9\"}",
                          R"({"model":"m","x":"\ud800"})",
                          R"({"model":"m","temperature":1e400})"};
  KeyBuilder builder;
  for (const char* body : bodies) {
    auto req = parseRequest(body);
    Result<CacheKey> k = req ? computeKey(*req, chat()) : Result<CacheKey>(req.error());
    auto flat = builder.key(body, chat());
    ASSERT_FALSE(k) << body;
    ASSERT_FALSE(flat) << body;
    EXPECT_EQ(flat.error().message, k.error().message) << body;
  }
  std::string deep = R"({"model":"m","x":)" + std::string(200, '[') + std::string(200, ']') + "}";
  auto flat = builder.key(deep, chat());
  ASSERT_FALSE(flat);
  EXPECT_NE(flat.error().message.find("nesting"), std::string::npos);
}

}  // namespace
}  // namespace llmcache::key
