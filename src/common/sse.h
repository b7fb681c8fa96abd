#pragma once
// SseEvent: one server-sent event, the unit in which streamed answers are recorded and replayed.
#include <string>

namespace llmcache {

// The `event:` name (empty when absent) and the `data:` payload (several data lines joined
// with '\n', as the SSE specification assembles them).
struct SseEvent {
  std::string event;
  std::string data;
  friend bool operator==(const SseEvent&, const SseEvent&) = default;
};

}  // namespace llmcache
