#pragma once
// Server-sent events on the wire: an incremental parser (WHATWG HTML, "Parsing an event
// stream") and the writer used to replay recorded events.
#include <string>
#include <string_view>
#include <vector>

#include "common/sse.h"

namespace llmcache::api {

// Turns a byte stream into events. Bytes may arrive in chunks split anywhere: inside a line,
// inside a UTF-8 sequence, between the '\r' and '\n' of a CRLF, inside a leading BOM.
//   - lines end with "\n", "\r\n" or "\r"; a UTF-8 BOM at the very start is skipped
//   - "field: value": one space after the colon is dropped; a line without a colon is a field
//     with an empty value; lines starting with ':' are comments
//   - "event" sets the name, "data" appends a line (lines joined with '\n'); "id" and "retry"
//     are accepted and ignored; unknown fields are ignored
//   - a blank line dispatches; an event without any data line is dropped (per the spec)
// A trailing event not ended by a blank line is never dispatched (the spec discards it when
// the stream ends); idle() tells whether such a partial event is pending.
// Not thread-safe. Memory grows with the longest line / event: callers bound the body size.
class SseParser {
 public:
  // The events completed by these bytes, in order.
  std::vector<SseEvent> feed(std::string_view bytes);

  // True when no partial line and no partial event is buffered: the bytes so far ended at an
  // event boundary (comments after it are fine). A stream that ends while !idle() was cut.
  bool idle() const;

 private:
  void processLine(std::string_view line, std::vector<SseEvent>& out);

  std::string line_;       // the unfinished line
  std::string event_;      // event type buffer
  std::string data_;       // data buffer (each data line followed by '\n')
  bool skipLf_ = false;    // the last byte was '\r': a following '\n' belongs to it
  size_t bomChecked_ = 0;  // bytes of the leading BOM matched so far (3 = done)
  bool bomDone_ = false;
};

// One event in wire form: "event: NAME\n" (only when the name is non-empty), one
// "data: LINE\n" per '\n'-separated line of data, then a blank line. Parsing the output yields
// the same event, provided the name holds no line break and the data no '\r'.
std::string formatSse(const SseEvent& event);

// formatSse of each event, concatenated.
std::string formatSse(const std::vector<SseEvent>& events);

}  // namespace llmcache::api
