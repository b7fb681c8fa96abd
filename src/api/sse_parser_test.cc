#include "api/sse_parser.h"

#include <gtest/gtest.h>

#include <random>

namespace llmcache::api {
namespace {

std::vector<SseEvent> parseAll(std::string_view bytes) {
  SseParser p;
  return p.feed(bytes);
}

// Feeds bytes one at a time: every possible split point at once.
std::vector<SseEvent> parseByteByByte(std::string_view bytes) {
  SseParser p;
  std::vector<SseEvent> out;
  for (char c : bytes)
    for (auto& e : p.feed(std::string_view(&c, 1))) out.push_back(std::move(e));
  return out;
}

TEST(SseParser, DataLinesAreDispatchedOnABlankLine) {
  auto events = parseAll("data: hello\n\n");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0], (SseEvent{"", "hello"}));
}

TEST(SseParser, EventFieldSetsTheName) {
  auto events = parseAll("event: message_start\ndata: {\"a\":1}\n\n");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0], (SseEvent{"message_start", "{\"a\":1}"}));
}

TEST(SseParser, SeveralDataLinesAreJoinedWithNewlines) {
  auto events = parseAll("data: one\ndata: two\ndata:\ndata: four\n\n");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].data, "one\ntwo\n\nfour");
}

TEST(SseParser, OnlyOneLeadingSpaceIsRemoved) {
  auto events = parseAll("data:no space\n\ndata:  two spaces\n\n");
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].data, "no space");
  EXPECT_EQ(events[1].data, " two spaces");
}

TEST(SseParser, CommentLinesAreIgnored) {
  auto events =
      parseAll(": OPENROUTER PROCESSING\n\n:keep-alive\ndata: x\n: mid-event comment\n\n");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].data, "x");
}

TEST(SseParser, EventWithoutDataIsNotDispatched) {
  auto events = parseAll("event: ping\n\ndata: after\n\n");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0], (SseEvent{"", "after"}));  // the name was reset by the blank line
}

TEST(SseParser, EmptyDataLineStillDispatches) {
  auto events = parseAll("data:\n\n");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].data, "");
}

TEST(SseParser, CrLfAndLoneCrEndLinesLikeLf) {
  auto events = parseAll("event: a\r\ndata: 1\r\n\r\nevent: b\rdata: 2\r\rdata: 3\n\n");
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0], (SseEvent{"a", "1"}));
  EXPECT_EQ(events[1], (SseEvent{"b", "2"}));
  EXPECT_EQ(events[2], (SseEvent{"", "3"}));
}

TEST(SseParser, ChunkSplitInsideCrLfStillParses) {
  SseParser p;
  EXPECT_TRUE(p.feed("data: x\r").empty());
  auto events = p.feed("\n\r");
  ASSERT_EQ(events.size(), 1u);  // "\r\n" ended the line once, the next "\r" is the blank line
  EXPECT_EQ(events[0].data, "x");
  EXPECT_TRUE(p.feed("\n").empty());  // the LF of that CRLF, not another blank line
  EXPECT_TRUE(p.idle());
}

TEST(SseParser, ChunksSplitAnywhereGiveTheSameEvents) {
  const std::string stream =
      "\xEF\xBB\xBF"
      "event: message_start\r\ndata: {\"type\":\"message_start\"}\r\n\r\n"
      ": comment\r\n"
      "event: content_block_delta\ndata: {\"text\":\"h\xC3\xA9llo\"}\n\n"
      "data: multi\rdata: line\r\r"
      "data: [DONE]\n\n";
  const auto expected = parseAll(stream);
  ASSERT_EQ(expected.size(), 4u);
  EXPECT_EQ(expected[0].event, "message_start");
  EXPECT_EQ(expected[2].data, "multi\nline");
  EXPECT_EQ(parseByteByByte(stream), expected);

  std::mt19937 rng(12345);
  for (int round = 0; round < 200; ++round) {
    SseParser p;
    std::vector<SseEvent> got;
    size_t pos = 0;
    while (pos < stream.size()) {
      const size_t n = std::uniform_int_distribution<size_t>(1, 7)(rng);
      for (auto& e : p.feed(std::string_view(stream).substr(pos, n))) got.push_back(std::move(e));
      pos += n;
    }
    ASSERT_EQ(got, expected) << "round " << round;
  }
}

TEST(SseParser, LeadingBomIsSkippedEvenWhenSplit) {
  SseParser p;
  EXPECT_TRUE(p.feed("\xEF").empty());
  EXPECT_TRUE(p.feed("\xBB").empty());
  auto events = p.feed(
      "\xBF"
      "data: x\n\n");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].data, "x");
}

TEST(SseParser, BomLaterInTheStreamIsContent) {
  auto events = parseAll(
      "data: a\n\n\xEF\xBB\xBF"
      "data: b\n\n");
  ASSERT_EQ(events.size(), 1u);  // the second line's field name is "\xEF\xBB\xBF" "data"
  EXPECT_EQ(events[0].data, "a");
}

TEST(SseParser, LineWithoutColonIsAFieldWithEmptyValue) {
  auto events = parseAll("data\n\n");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].data, "");
}

TEST(SseParser, IdRetryAndUnknownFieldsAreIgnored) {
  auto events = parseAll("id: 7\nretry: 1000\nfoo: bar\ndata: x\n\n");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0], (SseEvent{"", "x"}));
}

TEST(SseParser, UnterminatedEventIsHeldBackAndNotIdle) {
  SseParser p;
  EXPECT_TRUE(p.feed("data: partial\n").empty());
  EXPECT_FALSE(p.idle());
  auto events = p.feed("\n");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_TRUE(p.idle());
}

TEST(SseParser, PartialLineIsNotIdle) {
  SseParser p;
  p.feed("data: x\n\nda");
  EXPECT_FALSE(p.idle());
}

TEST(FormatSse, WritesEventNameOnlyWhenPresent) {
  EXPECT_EQ(formatSse(SseEvent{"", "[DONE]"}), "data: [DONE]\n\n");
  EXPECT_EQ(formatSse(SseEvent{"message_stop", "{\"type\":\"message_stop\"}"}),
            "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
}

TEST(FormatSse, MultiLineDataBecomesSeveralDataLines) {
  EXPECT_EQ(formatSse(SseEvent{"", "a\n\nb"}), "data: a\ndata: \ndata: b\n\n");
}

TEST(FormatSse, ParsingTheOutputGivesBackTheEvents) {
  const std::vector<SseEvent> events = {
      {"", "{\"x\":1}"}, {"message_start", "two\nlines"}, {"", ""}, {"", " leading space"}};
  EXPECT_EQ(parseAll(formatSse(events)), events);
}

}  // namespace
}  // namespace llmcache::api
