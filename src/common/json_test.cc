#include "common/json.h"

#include <gtest/gtest.h>

namespace llmcache {
namespace {

TEST(Json, NumbersKeepTheirLiteralSpelling) {
  auto v = parseJson(
      R"({"a": 123456789012345678901234567890, "b": 1E2, "c": -0, "d": 0.10000000000000001})");
  ASSERT_TRUE(v) << v.error().message;
  EXPECT_EQ(v->find("a")->text(), "123456789012345678901234567890");
  EXPECT_TRUE(v->find("a")->isIntegerNumber());
  EXPECT_EQ(v->find("b")->text(), "1E2");
  EXPECT_FALSE(v->find("b")->isIntegerNumber());
  EXPECT_EQ(v->find("c")->text(), "-0");
  EXPECT_EQ(toJson(*v),
            R"({"a":123456789012345678901234567890,"b":1E2,"c":-0,"d":0.10000000000000001})");
}

TEST(Json, DuplicateKeyKeepsFirstPositionAndLastValue) {
  auto v = parseJson(R"({"a": 1, "b": 2, "a": 3})");
  ASSERT_TRUE(v);
  ASSERT_EQ(v->keys().size(), 2u);
  EXPECT_EQ(v->keys()[0], "a");
  EXPECT_EQ(v->items()[0].text(), "3");
}

TEST(Json, MalformedInputIsAnErrorWithAnOffset) {
  for (const char* bad : {"", "{", "{\"a\":}", "[1,2", "nul", "{} x", "NaN", "{\"a\": Infinity}"}) {
    auto v = parseJson(bad);
    ASSERT_FALSE(v) << bad;
    EXPECT_NE(v.error().message.find("invalid JSON"), std::string::npos) << bad;
  }
}

TEST(Json, InvalidUtf8IsRejected) {
  EXPECT_FALSE(parseJson("\"\xff\xfe\""));
  EXPECT_FALSE(parseJson("\"\xc3\""));
  EXPECT_TRUE(parseJson("\"caf\xc3\xa9\""));
}

TEST(Json, DeepNestingIsAnErrorNotACrash) {
  std::string deep(100000, '[');
  auto v = parseJson(deep);
  ASSERT_FALSE(v);
  EXPECT_NE(v.error().message.find("nesting deeper"), std::string::npos);
  std::string ok = std::string(60, '[') + std::string(60, ']');
  EXPECT_TRUE(parseJson(ok));
}

TEST(Json, CompactWriterEscapesControlCharactersAndKeepsUtf8) {
  Json o = Json::object();
  o.set("k", Json::string("a\"b\\c\n\x01 caf\xc3\xa9"));
  EXPECT_EQ(toJson(o), "{\"k\":\"a\\\"b\\\\c\\n\\u0001 caf\xc3\xa9\"}");
  auto back = parseJson(toJson(o));
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, o);
}

TEST(Json, TypedGettersReturnNothingForTheWrongKind) {
  auto v = parseJson(R"({"s": "x", "i": 7, "f": 1.5, "b": true, "big": 99999999999999999999})");
  ASSERT_TRUE(v);
  EXPECT_EQ(v->getString("s"), "x");
  EXPECT_FALSE(v->getString("i"));
  EXPECT_EQ(v->getInt("i"), 7);
  EXPECT_FALSE(v->getInt("f"));
  EXPECT_FALSE(v->getInt("big"));
  EXPECT_EQ(v->getDouble("f"), 1.5);
  EXPECT_EQ(v->getBool("b"), true);
}

}  // namespace
}  // namespace llmcache
