// The key's fast paths against the general ones they stand in for: the 64-byte string loops
// (json_text.h) against Boost.JSON (reading) and the one-character-at-a-time writer (writing),
// and FlatJson's own parser against its Boost.JSON parser, on random and mutated input.
#include "key/json_text.h"

#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "key/canonical.h"
#include "key/flat_json.h"
#include "key/keyspec_vectors.h"
#include "key/text.h"

namespace llmcache::key {
namespace {

// Pieces a JSON string's inside is made of: plain text, escapes (valid, invalid, surrogates),
// UTF-8 (well-formed and not), control characters. No bare quote: the string ends at the one
// the test puts after it.
const std::vector<std::string>& pieces() {
  static const std::vector<std::string> p = {"a",
                                             "Hello world ",
                                             "x",
                                             "0123456789abcdef",
                                             std::string(40, 'z'),
                                             " ",
                                             "/",
                                             "\\\"",
                                             "\\\\",
                                             "\\/",
                                             "\\n",
                                             "\\r",
                                             "\\t",
                                             "\\b",
                                             "\\f",
                                             "\\u00e9",
                                             "\\u00E9",
                                             "\\u0000",
                                             "\\u001f",
                                             "\\ud83d\\ude00",
                                             "\\uD83D\\uDE00",
                                             "\\ud800",
                                             "\\udc00",
                                             "\\ud800x",
                                             "\\ud800\\u0041",
                                             "\\x",
                                             "\\u12",
                                             "\\u12g4",
                                             "\\",
                                             "\\\\\\",
                                             "\xc3\xa9",
                                             "\xe2\x98\x95",
                                             "\xf0\x9f\x98\x80",
                                             "\xe6\x97\xa5\xe6\x9c\xac",
                                             "\x7f",
                                             "\x01",
                                             "\x1f",
                                             "\t",
                                             "\x80",
                                             "\xc0\x80",
                                             "\xc3",
                                             "\xe2\x98",
                                             "\xed\xa0\x80",
                                             "\xf4\x90\x80\x80",
                                             "\xf5",
                                             "\xff",
                                             "\xef\xbb\xbf"};
  return p;
}

std::string randomInside(std::mt19937& rng, size_t maxPieces) {
  std::string s;
  const size_t n = std::uniform_int_distribution<size_t>(0, maxPieces)(rng);
  for (size_t i = 0; i < n; ++i) {
    // Mostly the well-behaved pieces, so that long valid strings are common.
    const auto& p = pieces();
    const size_t k = std::uniform_int_distribution<size_t>(0, p.size() - 1)(rng);
    const size_t safe = std::uniform_int_distribution<size_t>(0, 15)(rng);
    s += (k >= 20 && safe < 12) ? p[safe % 7] : p[k];
  }
  return s;
}

bool hasLoneSurrogateEscape(const std::string& s) {
  for (size_t i = 0; i + 6 <= s.size(); ++i)
    if (s[i] == '\\' && (s[i + 1] == 'u') && (s[i + 2] == 'd' || s[i + 2] == 'D')) return true;
  return false;
}

void readStringsAsBoostJsonDoes() {
  std::mt19937 rng(20240601);
  int accepted = 0, rejected = 0;
  for (int t = 0; t < 40000; ++t) {
    const std::string inside = randomInside(rng, t % 4 == 0 ? 60 : 12);
    const std::string literal = "\"" + inside + "\"";
    // After the string: more JSON, or the end of the input (where the padding starts).
    const std::string tail = t % 3 == 0 ? "" : ", 1, {}] ";  // no quote
    TextBuffer in;
    in.append(literal + tail);
    in.room(kPadding);
    const char* begin = in.data() + 1;
    const char* end = in.data() + in.size();
    TextBuffer out;
    char* o = out.room(in.size() + 64);
    char* const o0 = o;
    const char* got = unescapeJsonString(begin, end, o);
    const char* skipped = skipJsonString(begin, end);
    EXPECT_EQ(got, skipped) << literal;

    if (got) {
      // The string ends where the first unescaped quote is (a lone backslash piece can make a
      // bare quote of the next one): Boost.JSON must read that much as the same string.
      ++accepted;
      auto ref = parseJson(std::string_view(in.data(), static_cast<size_t>(got - in.data())));
      ASSERT_TRUE(ref) << "accepted what Boost.JSON rejects: " << literal;
      ASSERT_TRUE(ref->isString());
      EXPECT_EQ(std::string(o0, o), ref->text()) << literal;
    } else {
      ++rejected;
      // Rejected: Boost.JSON rejects it too, or it holds a surrogate escape (left to Boost.JSON,
      // whose word is final).
      auto ref = parseJson(literal);
      EXPECT_TRUE(!ref || hasLoneSurrogateEscape(inside)) << literal;
    }
  }
  EXPECT_GT(accepted, 10000);
  EXPECT_GT(rejected, 1000);
}

TEST(JsonText, StringsReadAsBoostJsonReadsThem) { readStringsAsBoostJsonDoes(); }

TEST(JsonText, StringsReadAsBoostJsonReadsThemWithoutAvx512) {
  const bool was = useWideSimd(false);
  readStringsAsBoostJsonDoes();
  useWideSimd(was);
}

// Every UTF-8 shape (well-formed and not) at every offset around the 64-byte blocks' edges,
// after plain text or after escapes, both forms: read as Boost.JSON reads it.
TEST(JsonText, Utf8AtEveryOffsetAcrossBlockEdgesReadsAsBoostJson) {
  const std::vector<std::string> shapes = {
      "\xc3\xa9",         "\xe6\x97\xa5",     "\xf0\x9f\x98\x80",
      "\xef\xbf\xbf",     "\xf4\x8f\xbf\xbf", "\xc3",
      "\xe6\x97",         "\xf0\x9f\x98",     "\x80",
      "\xbf\xbf",         "\xc0\x80",         "\xc1\xbf",
      "\xe0\x80\x80",     "\xed\xa0\x80",     "\xf0\x80\x80\x80",
      "\xf4\x90\x80\x80", "\xf5\x80\x80\x80", "\xff",
      "\xc3\xa9\x80",     "\xe6\x97\xa5\xa5", "\xc3\"",
      "\xe6\x97\"x"};
  for (const bool wide : {true, false}) {
    const bool was = useWideSimd(wide);
    for (const std::string& before : {std::string(), std::string("\\n\\\"")})
      for (size_t off = 0; off < 140; ++off)
        for (const std::string& shape : shapes) {
          const std::string inside = before + std::string(off, 'a') + shape + "bc\\/\\u00e9";
          const std::string literal = "\"" + inside + "\"";
          TextBuffer in;
          in.append(literal);
          in.room(kPadding);
          TextBuffer out;
          char* o = out.room(in.size() + 64);
          char* const o0 = o;
          const char* got = unescapeJsonString(in.data() + 1, in.data() + in.size(), o);
          EXPECT_EQ(got, skipJsonString(in.data() + 1, in.data() + in.size()));
          auto ref = parseJson(literal);
          // A quote inside the shape ends the string early: compare what each reads as one.
          if (shape.find('"') != std::string::npos) {
            EXPECT_EQ(got != nullptr, got && parseJson(std::string_view(
                                                 in.data(), static_cast<size_t>(got - in.data()))))
                << "wide " << wide << " off " << off;
            continue;
          }
          ASSERT_EQ(got != nullptr, static_cast<bool>(ref))
              << "wide " << wide << " off " << off << ": " << literal;
          if (got) {
            EXPECT_EQ(std::string(o0, o), ref->text()) << "wide " << wide << " off " << off;
          }
        }
    useWideSimd(was);
  }
}

TEST(JsonText, WideWhitespaceCollapseMatchesTheScalarNormalizer) {
  // Random ASCII text of words and every kind of ASCII whitespace (runs, leading, trailing,
  // across the 64-byte block edges), in seed and whitespace modes: the AVX-512 collapse (when the
  // CPU has it) gives what the general path gives; a non-ASCII byte leaves it to that path.
  std::mt19937 rng(7);
  const std::string alphabet = " \t\n\v\f\r\x1c\x1d\x1e\x1f aZbYzA09!~_";
  for (int round = 0; round < 3000; ++round) {
    std::string text(rng() % 300, ' ');
    for (char& c : text) c = alphabet[rng() % alphabet.size()];
    if (round % 50 == 0) text += "\xc3\x89";  // one non-ASCII letter
    for (NormalizeMode mode : {NormalizeMode::Seed, NormalizeMode::Whitespace}) {
      const bool was = useWideSimd(false);
      const std::string want = normalizeText(text, mode);
      useWideSimd(was);
      std::string got = "prefix";
      if (collapseAsciiWide(text, mode == NormalizeMode::Seed, got)) {
        EXPECT_EQ(got, "prefix" + want) << round;
      } else {
        EXPECT_EQ(got, "prefix");  // unchanged
      }
      EXPECT_EQ(normalizeText(text, mode), want) << round;
    }
  }
}

TEST(JsonText, FindStringSpecialFindsTheFirst) {
  std::mt19937 rng(7);
  for (int t = 0; t < 20000; ++t) {
    std::string s = randomInside(rng, t % 4 == 0 ? 150 : 20);
    if (t % 2) s += "\"";
    TextBuffer in;
    in.append(s);
    in.room(kPadding);
    size_t want = 0;
    while (want < s.size()) {
      const unsigned char c = static_cast<unsigned char>(s[want]);
      if (c == '"' || c == '\\' || c < 0x20 || c >= 0x80) break;
      ++want;
    }
    for (bool wide : {false, true}) {  // both forms (the wide one where the CPU has it)
      const bool was = useWideSimd(wide);
      EXPECT_EQ(findStringSpecial(in.data(), in.data() + s.size()) - in.data(),
                static_cast<ptrdiff_t>(want));
      useWideSimd(was);
    }
  }
}

TEST(JsonText, PaddedEscapingMatchesTheScalarWriter) {
  std::mt19937 rng(11);
  const std::vector<std::string> chars = {
      "a", "Z", " ", "\"", "\\", "\n", "\r", "\t", "\b", "\f", "\x01", "\x7f", "\xc3\xa9",
      "\xe2\x98\x95", "\xf0\x9f\x98\x80", "/", "text", std::string(70, 'q'), "\xef\xbf\xbf",
      "\xc2\x80",
      // Not UTF-8: the writers must read it alike.
      "\xc3", "\xe2\x98", "\xc0\x8a", "\xe0\x80\x8a", "\x80", "\xf8\x88\x80\x80"};
  for (int t = 0; t < 20000; ++t) {
    std::string s;
    const size_t n = std::uniform_int_distribution<size_t>(0, t % 5 == 0 ? 200 : 30)(rng);
    for (size_t i = 0; i < n; ++i)
      s += chars[std::uniform_int_distribution<size_t>(0, chars.size() - 1)(rng)];
    TextBuffer in;
    in.append(s);
    in.room(kPadding);
    std::string scalar(escapeRoom(s.size()), '\0');
    scalar.resize(static_cast<size_t>(escapePythonString(s, scalar.data()) - scalar.data()));
    for (bool wide : {false, true}) {  // both forms (the wide one where the CPU has it)
      const bool was = useWideSimd(wide);
      TextBuffer padded;
      appendPaddedPythonString(in.view(), padded);
      useWideSimd(was);
      EXPECT_EQ(std::string(padded.view()), scalar) << "wide " << wide;
    }
  }
  std::string out;
  writePythonString("\xc3\xa9\"\n\x7f", out);
  EXPECT_EQ(out, "\"\\u00e9\\\"\\n\\u007f\"");
}

// Structure and texts of the nodes, for comparing two parses.
std::string dump(const FlatJson& doc) {
  std::string s;
  for (uint32_t i = 0; i < doc.size(); ++i) {
    const auto& n = doc[i];
    s += std::to_string(static_cast<int>(n.kind)) + "/" + std::to_string(n.end) + "/" +
         std::string(n.key) + "=" + std::string(n.text) + "\n";
  }
  return s;
}

std::vector<std::string> vectorBodies() {
  std::vector<std::string> out;
  std::ifstream in(testing::vectorsPath());
  std::string line;
  while (std::getline(in, line)) {
    auto row = parseJson(line);
    if (row && row->getString("request")) out.emplace_back(*row->getString("request"));
  }
  return out;
}

TEST(FlatJson, OwnParserAgreesWithBoostJson) {
  const auto bodies = vectorBodies();
  ASSERT_GT(bodies.size(), 1000u);
  std::mt19937 rng(3);
  const std::string inserts[] = {
      "\"",          "\\",   "{",    "}",   "[",     "]",   ",",
      ":",           " ",    "1",    "-",   ".",     "e",   "0",
      "\xc3",        "\x01", "true", "nul", "1e400", "\\u", "\xe2\x98\x95",
      "\"\\ud800\"", "[[[[", "]]]]"};
  FlatJson fast, boost;
  int same = 0, failed = 0;
  for (int t = 0; t < 30000; ++t) {
    std::string body = bodies[static_cast<size_t>(t) % bodies.size()];
    const int edits = t < static_cast<int>(bodies.size()) ? 0 : 1 + t % 3;
    for (int e = 0; e < edits && !body.empty(); ++e) {
      const size_t at = std::uniform_int_distribution<size_t>(0, body.size() - 1)(rng);
      switch (rng() % 3) {
        case 0:
          body.erase(at, 1 + rng() % 3);
          break;
        case 1:
          body.insert(at, inserts[rng() % std::size(inserts)]);
          break;
        default:
          body[at] = static_cast<char>(rng() % 128);
      }
    }
    TextBuffer in;
    in.append(body);
    in.room(kPadding);
    auto a = fast.parse(in.view(), 64);
    auto b = boost.parse(in.view(), 64, /*fast=*/false);
    ASSERT_EQ(static_cast<bool>(a), static_cast<bool>(b)) << body;
    if (a) {
      EXPECT_EQ(dump(fast), dump(boost)) << body;
      ++same;
    } else {
      EXPECT_EQ(a.error().message, b.error().message) << body;
      ++failed;
    }
  }
  EXPECT_GT(same, 1000);
  EXPECT_GT(failed, 1000);
}

}  // namespace
}  // namespace llmcache::key
