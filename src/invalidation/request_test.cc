#include "invalidation/request.h"

#include <gtest/gtest.h>

namespace llmcache::invalidation {
namespace {

using namespace std::chrono_literals;
using Kind = Criterion::Kind;

Request parseOk(std::string_view body) {
  auto r = parseRequest(body);
  EXPECT_TRUE(r) << body << ": " << (r ? "" : r.error().message);
  return r ? *r : Request{};
}

TEST(ParseRequest, EachCriterionParsesToItsKindAndValue) {
  struct Case {
    const char* body;
    Kind kind;
    const char* value;
  } cases[] = {
      {R"({"model":"gpt-4o"})", Kind::Model, "gpt-4o"},
      {R"({"pattern":"gpt-4o*"})", Kind::Pattern, "gpt-4o*"},
      {R"({"key":"gpt-4o:0011223344556677"})", Kind::Key, "gpt-4o:0011223344556677"},
      {R"({"tag":"eval"})", Kind::Tag, "eval"},
      {R"({"namespace":"tenant-1"})", Kind::Namespace, "tenant-1"},
      {R"({"cache_id":"00112233445566778899aabbccddeeff"})", Kind::CacheId,
       "00112233445566778899aabbccddeeff"},
  };
  for (const auto& c : cases) {
    const Request r = parseOk(c.body);
    EXPECT_EQ(r.criterion.kind, c.kind) << c.body;
    EXPECT_EQ(r.criterion.value, c.value) << c.body;
    EXPECT_FALSE(r.dryRun);
  }
}

TEST(ParseRequest, OlderThanTakesADurationOrAnInstant) {
  Request r = parseOk(R"({"older_than":"7d","dry_run":true})");
  EXPECT_EQ(r.criterion.kind, Kind::OlderThan);
  EXPECT_EQ(r.criterion.age, std::chrono::milliseconds(24h * 7));
  EXPECT_TRUE(r.dryRun);
  r = parseOk(R"({"dry_run":false,"older_than":"2026-01-01T00:00:00Z"})");
  ASSERT_TRUE(r.criterion.before);
  EXPECT_EQ(*r.criterion.before, fromUnixMillis(1767225600000));
  EXPECT_FALSE(r.criterion.age);
}

TEST(ParseDuration, AcceptsEveryUnit) {
  EXPECT_EQ(parseDuration("45s").value(), 45s);
  EXPECT_EQ(parseDuration("90m").value(), 90min);
  EXPECT_EQ(parseDuration("12h").value(), 12h);
  EXPECT_EQ(parseDuration("7d").value(), 24h * 7);
  EXPECT_EQ(parseDuration("2w").value(), 24h * 14);
  EXPECT_EQ(parseDuration("0s").value(), 0s);
}

TEST(ParseDuration, RejectsMalformedOnes) {
  for (const char* bad :
       {"", "d", "7", "7x", "-7d", "7 d", "1h30m", "7D", "+7d", "7.5h", "99999999999w"}) {
    auto r = parseDuration(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, Errc::InvalidArgument);
  }
}

TEST(ValidateGlob, AcceptsWellFormedGlobs) {
  for (const char* ok : {"*", "gpt-4o*", "gpt-?o", "gpt-[34]*", "[!a]*", "[]]x", "[!]]x", "a\\*b"})
    EXPECT_TRUE(validateGlob(ok)) << ok;
}

TEST(ValidateGlob, RejectsUnclosedBracketsTrailingEscapesAndEmptiness) {
  for (const char* bad : {"", "gpt-[34", "[", "[]", "[!]", "abc\\"}) {
    auto r = validateGlob(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, Errc::InvalidArgument);
  }
}

TEST(ParseRequest, BadInputIsInvalidArgumentNamingTheProblem) {
  struct Case {
    std::string_view body;
    const char* mentions;
  } cases[] = {
      {"", "empty body"},
      {"  \n", "empty body"},
      {"{", "not valid JSON"},
      {"[]", "JSON object"},
      {"{}", "no criterion"},
      {R"({"dry_run":true})", "no criterion"},
      {R"({"modle":"gpt-4o"})", "unknown criterion \"modle\""},
      {R"({"model":"gpt-4o","tag":"x"})", "exactly one criterion"},
      {R"({"model":""})", "model must not be empty"},
      {R"({"model":4})", "model must be a string"},
      {R"({"older_than":"7 days"})", "older_than \"7 days\""},
      {R"({"older_than":"2026-13-01T00:00:00Z"})", "older_than"},
      {R"({"pattern":"gpt-[4"})", "never closed"},
      {R"({"model":"gpt-4o","dry_run":"yes"})", "dry_run must be true or false"},
  };
  for (const auto& c : cases) {
    auto r = parseRequest(c.body);
    ASSERT_FALSE(r) << c.body;
    EXPECT_EQ(r.error().code, Errc::InvalidArgument) << c.body;
    EXPECT_NE(r.error().message.find(c.mentions), std::string::npos)
        << c.body << " -> " << r.error().message;
  }
}

}  // namespace
}  // namespace llmcache::invalidation
