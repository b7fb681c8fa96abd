#include <gtest/gtest.h>

#include "gateway/context.h"

namespace llmcache::gateway {
namespace {

TEST(KeyHeaderValue, AKeyOfPrintableCharactersIsSentUnchanged) {
  EXPECT_EQ(keyHeaderValue("openai/gpt-4o:0123456789abcdef"), "openai/gpt-4o:0123456789abcdef");
  EXPECT_EQ(keyHeaderValue("mod\xc3\xa8le:01"), "mod\xc3\xa8le:01");  // UTF-8 is not a control
}

TEST(KeyHeaderValue, ControlCharactersDelAndPercentArePercentEncodedInUpperCase) {
  // Raw, "\r\n" in a model id would split the response's header block.
  EXPECT_EQ(keyHeaderValue("gpt\r\nx-evil: 1"), "gpt%0D%0Ax-evil: 1");
  EXPECT_EQ(keyHeaderValue(std::string_view("a\0b", 3)), "a%00b");
  EXPECT_EQ(keyHeaderValue("\x1f\x7f"), "%1F%7F");
  EXPECT_EQ(keyHeaderValue("100%"), "100%25");  // so an encoded key cannot be mistaken for one
}

}  // namespace
}  // namespace llmcache::gateway
