#include "trace/trace.h"

#include <gtest/gtest.h>

#include <sstream>

namespace llmcache::trace {
namespace {

TraceEvent sample() {
  TraceEvent e;
  e.timeMs = 1767225600123;
  e.key = "gpt-4o:00112233445566778899aabbccddeeff";
  e.bytes = 1834;
  e.cost = 0.00425;
  e.latencyMs = 2210;
  e.tenant = hashTenant("t1");
  e.model = "gpt-4o";
  return e;
}

TEST(Trace, AnEventLineReadsBackTheSame) {
  const TraceEvent e = sample();
  std::stringstream in(headerLine({"synth", "{\"seed\":1}"}) + "\n" + eventLine(e) + "\n\n");
  auto events = readTrace(in);
  ASSERT_TRUE(events) << events.error().message;
  ASSERT_EQ(events->size(), 1u);
  EXPECT_EQ((*events)[0], e);
}

TEST(Trace, TheLineFormatIsStable) {
  EXPECT_EQ(eventLine(sample()),
            "{\"t\":1767225600123,\"key\":\"gpt-4o:00112233445566778899aabbccddeeff\","
            "\"size\":1834,\"cost\":0.00425,\"latency_ms\":2210,\"tenant\":\"" +
                hashTenant("t1") + "\",\"model\":\"gpt-4o\"}");
  EXPECT_EQ(hashTenant(""), "");
  EXPECT_EQ(hashTenant("t1").size(), 16u);
  EXPECT_NE(hashTenant("t1"), hashTenant("t2"));
}

TEST(Trace, OptionalFieldsMayBeLeftOut) {
  std::stringstream in("{\"t\":5,\"key\":\"k\",\"size\":10}\n");
  auto events = readTrace(in);
  ASSERT_TRUE(events) << events.error().message;
  ASSERT_EQ(events->size(), 1u);
  EXPECT_EQ((*events)[0].cost, 0);
  EXPECT_EQ((*events)[0].tenant, "");
}

TEST(Trace, BadLinesAreRefusedWithTheirLineNumber) {
  const std::pair<const char*, const char*> cases[] = {
      {"{\"t\":5,\"key\":\"k\",\"size\":10}\nnot json\n", "trace line 2: not JSON"},
      {"[1]\n", "trace line 1: not a JSON object"},
      {"{\"key\":\"k\",\"size\":10}\n", "trace line 1: \"t\""},
      {"{\"t\":5,\"size\":10}\n", "trace line 1: \"key\""},
      {"{\"t\":5,\"key\":\"k\",\"size\":-1}\n", "trace line 1: \"size\""},
      {"{\"t\":5,\"key\":\"k\",\"size\":1,\"cost\":\"x\"}\n", "trace line 1: \"cost\""},
      {"{\"format\":\"llmcache-trace\",\"version\":2}\n", "trace line 1: trace format version 2"},
  };
  for (const auto& [text, message] : cases) {
    std::stringstream in(text);
    auto events = readTrace(in);
    ASSERT_FALSE(events) << text;
    EXPECT_EQ(events.error().code, Errc::InvalidArgument);
    EXPECT_NE(events.error().message.find(message), std::string::npos) << events.error().message;
  }
}

}  // namespace
}  // namespace llmcache::trace
