#include "upstream/platform.h"

#include <gtest/gtest.h>

namespace llmcache::upstream {
namespace {

TEST(Platforms, BuiltinsAreThere) {
  PlatformTable t;
  ASSERT_NE(t.find("openai"), nullptr);
  EXPECT_EQ(t.find("openai")->baseUrl, "https://api.openai.com/v1");
  EXPECT_EQ(t.find("openrouter")->baseUrl, "https://openrouter.ai/api/v1");
  EXPECT_EQ(t.find("anthropic")->baseUrl, "https://api.anthropic.com/v1");
  EXPECT_EQ(t.find("groq")->baseUrl, "https://api.groq.com/openai/v1");
  EXPECT_EQ(t.find("nope"), nullptr);
  EXPECT_EQ(t.find("OpenAI"), nullptr);  // names are lowercase by definition
  EXPECT_EQ(t.all().size(), 4u);
}

TEST(Platforms, ConfiguredPlatformsExtendAndOverrideBuiltins) {
  auto t = parsePlatforms(
      " local=http://127.0.0.1:8000/v1/ , openai=https://proxy.example.com/openai/v1");
  ASSERT_TRUE(t) << t.error().message;
  ASSERT_NE(t->find("local"), nullptr);
  EXPECT_EQ(t->find("local")->baseUrl, "http://127.0.0.1:8000/v1");  // trailing slash dropped
  EXPECT_EQ(t->find("openai")->baseUrl, "https://proxy.example.com/openai/v1");
  EXPECT_EQ(t->find("groq")->baseUrl, "https://api.groq.com/openai/v1");
  EXPECT_EQ(t->all().size(), 5u);
}

TEST(Platforms, AddReplacesInPlace) {
  PlatformTable t;
  const Platform* before = t.find("groq");
  t.add({"groq", "https://groq.internal/v1/"});
  EXPECT_EQ(t.find("groq"), before);
  EXPECT_EQ(before->baseUrl, "https://groq.internal/v1");
}

TEST(Platforms, EmptySpecMeansBuiltinsOnly) {
  auto t = parsePlatforms("");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->all().size(), 4u);
  ASSERT_TRUE(parsePlatforms("  "));
}

TEST(Platforms, BadSpecsAreRejectedWithTheEntryNamed) {
  for (const char* spec :
       {"noequals", "Bad=https://x/v1", "sp ace=https://x/v1", "=https://x/v1", "a=ftp://x/v1",
        "a=https:///v1", "a=", "a=https://x/v1,,b=https://y/v1", "a=https://x/v1,a=https://y/v1",
        "v1=https://x/v1", "cache=https://x/v1", "a=https://x/v1?key=1"}) {
    auto t = parsePlatforms(spec);
    ASSERT_FALSE(t) << spec;
    EXPECT_EQ(t.error().code, Errc::InvalidArgument);
    EXPECT_NE(t.error().message.find("platforms"), std::string::npos);
  }
  auto t = parsePlatforms("good=https://x/v1,BAD=https://y/v1");
  ASSERT_FALSE(t);
  EXPECT_NE(t.error().message.find("BAD"), std::string::npos);
}

TEST(Platforms, NamesAllowLowercaseDigitsDashAndUnderscore) {
  EXPECT_TRUE(isValidPlatformName("my_llm-2"));
  EXPECT_FALSE(isValidPlatformName("my.llm"));
  EXPECT_FALSE(isValidPlatformName(""));
  EXPECT_FALSE(isValidPlatformName("metrics"));
  EXPECT_FALSE(isValidPlatformName(std::string(65, 'a')));
}

}  // namespace
}  // namespace llmcache::upstream
