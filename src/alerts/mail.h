#pragma once
// One plain-text e-mail and its delivery over SMTP (libcurl).
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/result.h"

namespace llmcache::alerts {

struct Mail {
  std::string from;             // an address: name@host (no display name)
  std::vector<std::string> to;  // addresses
  std::string subject;          // one line; UTF-8 is encoded (RFC 2047)
  std::string body;             // plain UTF-8 text, lines separated by \n
};

// The RFC 5322 message of `mail`: Date (of `date`), From, To, Subject, Message-ID, MIME-Version,
// Content-Type text/plain; charset=utf-8, 8bit, then the body; CRLF line ends throughout. CR and LF
// inside header values are replaced by spaces (no header injection). Dot-stuffing is left to the
// SMTP client (libcurl does it).
std::string formatMessage(const Mail& mail, TimePoint date);

// Sends `mail` through the SMTP server at url: smtp://host[:port] (STARTTLS when the server offers
// it) or smtps://host[:port] (TLS from the start); user:password@ in the URL logs in. Blocking, at
// most ~30 s (10 s to connect). Errors: Unavailable (connect, TLS, a refused sender or recipient,
// a timeout) with libcurl's message, InvalidArgument (no recipient).
Result<void> sendSmtp(const std::string& url, const Mail& mail);

}  // namespace llmcache::alerts
