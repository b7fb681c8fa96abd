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

namespace llmcache {
namespace {

std::string objectOfKeys(size_t n, const std::string& prefix = "k") {
  std::string text = "{";
  for (size_t i = 0; i < n; ++i) {
    if (i) text += ',';
    text += "\"" + prefix + std::to_string(i) + "\":" + std::to_string(i);
  }
  return text + "}";
}

TEST(JsonLargeObjects, AnObjectAtTheMemberCapParsesWithEveryMemberFound) {
  auto parsed = parseJson(objectOfKeys(kMaxJsonObjectMembers));
  ASSERT_TRUE(parsed) << parsed.error().message;
  EXPECT_EQ(parsed->size(), kMaxJsonObjectMembers);
  EXPECT_EQ(parsed->getInt("k0"), 0);
  EXPECT_EQ(parsed->getInt("k9999"), 9999);
  EXPECT_EQ(parsed->find("k10000"), nullptr);
}

TEST(JsonLargeObjects, ADuplicateKeyPastTheIndexThresholdKeepsTheFirstPositionAndTheLastValue) {
  std::string text = objectOfKeys(40);
  text.back() = ',';
  text += "\"k3\":\"last\",\"k39\":\"again\"}";
  auto parsed = parseJson(text);
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->size(), 40u);
  EXPECT_EQ(parsed->keys()[3], "k3");
  EXPECT_EQ(parsed->getString("k3"), "last");
  EXPECT_EQ(parsed->getString("k39"), "again");
}

TEST(JsonLargeObjects, ACopyAndAnEraseKeepLookupsRight) {
  auto parsed = parseJson(objectOfKeys(100));
  ASSERT_TRUE(parsed);
  Json copy = *parsed;  // no index: lookups fall back to the scan
  EXPECT_EQ(copy.getInt("k57"), 57);
  copy.set("k57", Json::integer(-1));
  EXPECT_EQ(copy.getInt("k57"), -1);
  EXPECT_EQ(parsed->getInt("k57"), 57);
  EXPECT_TRUE(parsed->erase("k10"));
  EXPECT_EQ(parsed->find("k10"), nullptr);
  EXPECT_EQ(parsed->getInt("k99"), 99);  // positions moved after the erase
  parsed->set("new", Json::integer(7));
  EXPECT_EQ(parsed->getInt("new"), 7);
  EXPECT_EQ(parsed->getInt("k11"), 11);
}

TEST(JsonLimits, AnObjectAboveTheMemberCapIsAClearError) {
  auto parsed = parseJson(objectOfKeys(kMaxJsonObjectMembers + 1));
  ASSERT_FALSE(parsed);
  EXPECT_NE(parsed.error().message.find("members"), std::string::npos) << parsed.error().message;
}

TEST(JsonLimits, ADocumentAboveTheValueCapIsAClearError) {
  std::string text = "[";
  for (int i = 0; i < 1001; ++i) text += i ? ",1" : "1";
  text += "]";
  auto refused = parseJson(text, {.maxValues = 1000});
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("more than 1000 values"), std::string::npos)
      << refused.error().message;
  EXPECT_TRUE(parseJson(text, {.maxValues = 1002}));
}

}  // namespace
}  // namespace llmcache
