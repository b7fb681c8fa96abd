#include "alerts/mail.h"

#include <gtest/gtest.h>

namespace llmcache::alerts {
namespace {

TEST(MailFormat, HeadersFollowRfc5322AndLinesEndInCrlf) {
  Mail m{"llmcache@gw.example",
         {"a@example.com", "b@example.com"},
         "hit rate low",
         "line one\nline two"};
  const std::string msg = formatMessage(m, fromUnixMillis(1767225600000));  // Thursday 2026-01-01
  EXPECT_EQ(msg.find("Date: Thu, 01 Jan 2026 00:00:00 +0000\r\n"), 0u) << msg;
  EXPECT_NE(msg.find("\r\nFrom: llmcache@gw.example\r\n"), std::string::npos);
  EXPECT_NE(msg.find("\r\nTo: a@example.com, b@example.com\r\n"), std::string::npos);
  EXPECT_NE(msg.find("\r\nSubject: hit rate low\r\n"), std::string::npos);
  EXPECT_NE(msg.find("\r\nMessage-ID: <"), std::string::npos);
  EXPECT_NE(msg.find("@gw.example>\r\n"), std::string::npos);
  EXPECT_NE(msg.find("\r\nContent-Type: text/plain; charset=utf-8\r\n"), std::string::npos);
  EXPECT_TRUE(msg.ends_with("\r\n\r\nline one\r\nline two\r\n")) << msg;
  for (size_t i = 0; i < msg.size(); ++i) {
    if (msg[i] == '\n') {
      ASSERT_EQ(msg[i - 1], '\r') << "bare LF at " << i;
    }
  }
}

TEST(MailFormat, LineBreaksInHeaderValuesCannotInjectHeaders) {
  Mail m{"x@example.com",
         {"a@example.com\r\nBcc: evil@example.com"},
         "one\r\nBcc: evil@example.com",
         "b"};
  const std::string msg = formatMessage(m, fromUnixMillis(0));
  EXPECT_EQ(msg.find("\r\nBcc:"), std::string::npos) << msg;
}

TEST(MailFormat, ANonAsciiSubjectIsEncoded) {
  Mail m{"x@example.com", {"a@example.com"}, "caché", "b"};
  EXPECT_NE(formatMessage(m, fromUnixMillis(0)).find("\r\nSubject: =?UTF-8?B?Y2FjaMOp?=\r\n"),
            std::string::npos);
}

TEST(MailSend, AMailWithoutRecipientsIsRefusedBeforeConnecting) {
  auto r = sendSmtp("smtp://127.0.0.1:1", Mail{"x@example.com", {}, "s", "b"});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::InvalidArgument);
}

}  // namespace
}  // namespace llmcache::alerts
