#include "key/canonical.h"

#include <gtest/gtest.h>

#include "key/text.h"

namespace llmcache::key {
namespace {

TEST(PythonFloatRepr, MatchesPythonRepr) {
  struct {
    double v;
    const char* repr;
  } cases[] = {
      {0.0, "0.0"},
      {-0.0, "-0.0"},
      {1.0, "1.0"},
      {0.1, "0.1"},
      {2.67, "2.67"},
      {1e16, "1e+16"},
      {1e15, "1000000000000000.0"},
      {123456789012345678.0, "1.2345678901234568e+17"},
      {1e-05, "1e-05"},
      {0.0001, "0.0001"},
      {1.5e300, "1.5e+300"},
      {-3.5e-300, "-3.5e-300"},
      {5e-324, "5e-324"},
      {100.0, "100.0"},
      {2e21, "2e+21"},
      {1.7976931348623157e308, "1.7976931348623157e+308"},
      {0.30000000000000004, "0.30000000000000004"},
      {-1.25, "-1.25"},
  };
  for (const auto& c : cases) EXPECT_EQ(pythonFloatRepr(c.v), c.repr);
}

TEST(PythonString, EnsureAsciiEscapes) {
  std::string out;
  writePythonString("a\"\\\n\r\t\b\f\x01\x7f caf\xc3\xa9 \xf0\x9f\x98\x80", out);
  EXPECT_EQ(out, "\"a\\\"\\\\\\n\\r\\t\\b\\f\\u0001\\u007f caf\\u00e9 \\ud83d\\ude00\"");
}

TEST(Canonical, IndentsLikeJsonDumpsIndent4) {
  auto v = parseJson(R"({"a":[1,{"b":null}],"c":{},"d":[],"e":-0,"f":1E2})");
  ASSERT_TRUE(v);
  std::string out;
  ASSERT_TRUE(writeCanonical(*v, out));
  EXPECT_EQ(out,
            "{\n    \"a\": [\n        1,\n        {\n            \"b\": null\n        }\n    ],\n"
            "    \"c\": {},\n    \"d\": [],\n    \"e\": 0,\n    \"f\": 100.0\n}");
}

TEST(TextNormalization, CollapsesPythonWhitespaceOnly) {
  EXPECT_EQ(normalizeText("  a\u00a0\u3000b\u200bc\t\n", NormalizeMode::Whitespace), "a b\u200bc");
  EXPECT_EQ(normalizeText("  Keep  CASE ", NormalizeMode::Whitespace), "Keep CASE");
  EXPECT_EQ(normalizeText("  Keep  CASE ", NormalizeMode::Exact), "  Keep  CASE ");
}

TEST(TextNormalization, StripsPythonWhitespaceOnly) {
  EXPECT_EQ(pythonStrip("\u3000 a b\u00a0\t\x1f"), "a b");
  EXPECT_EQ(pythonStrip("\u200b x \u200b"), "\u200b x \u200b");  // U+200B is not a space
  EXPECT_EQ(pythonStrip(" \u2028\u0085 "), "");
  EXPECT_EQ(pythonStrip("caf\xc3\xa9\xe2\x80\x83"), "caf\xc3\xa9");  // U+2003 after an é
  EXPECT_EQ(pythonStrip("\xc3\xa9"), "\xc3\xa9");
  EXPECT_EQ(pythonStrip(""), "");
}

TEST(TextNormalization, LowercasesLikePython) {
  EXPECT_EQ(pythonLower("\xc4\xb0stanbul"), "i\xcc\x87stanbul");  // İ -> i + U+0307
  EXPECT_EQ(pythonLower("\xce\xa3\xce\x9f\xce\xa6\xce\x9f\xce\xa3"),  // ΣΟΦΟΣ -> σοφος (final ς)
            "\xcf\x83\xce\xbf\xcf\x86\xce\xbf\xcf\x82");
  EXPECT_EQ(pythonLower("HeLLo"), "hello");
}

}  // namespace
}  // namespace llmcache::key
