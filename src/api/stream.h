#pragma once
// Streamed answers: is a recorded stream complete, the non-streamed body it amounts to, and
// the reverse (a stream that replays a non-streamed body to a client that asked to stream).
//
// Events are SseEvent{event, data} as SseParser produces them. OpenAI streams carry no event
// names (each data is a chunk object, the last is "[DONE]"); Anthropic names every event
// (message_start, content_block_start/delta/stop, message_delta, message_stop, ping, error) and
// repeats the name as the data's "type"; so does the Responses API (response.created,
// response.output_item.added, response.output_text.delta, ..., response.completed, each data
// with a sequence_number). Embeddings never stream.
#include <vector>

#include "common/json.h"
#include "common/result.h"
#include "common/sse.h"
#include "key/cache_key.h"

namespace llmcache::api {

// True when the events are a whole, successful answer, the only kind worth storing:
//   OpenAI chat/completions: the last event is "data: [DONE]", every chunk parses, none carries
//     an "error", and every choice seen has a finish_reason (not null, not "error"; at least
//     one choice).
//   Anthropic: message_start and message_stop present, no "error" event.
//   Responses: every event parses, a response.completed whose response has status
//     "completed", and no "error", response.failed or response.incomplete event.
//   Embeddings: always false.
bool streamCompleted(key::Endpoint endpoint, const std::vector<SseEvent>& events);

// The non-streamed response body the events add up to, as the provider would have sent it:
//   OpenAI chat: {id, object:"chat.completion", created, model, choices:[{index,
//     message:{role, content (concatenated; null if no content delta), refusal (null if none),
//     tool_calls (merged by index; only if any), function_call (legacy; only if any)},
//     logprobs (arrays concatenated; null if none), finish_reason}], usage (if a chunk had it),
//     service_tier, system_fingerprint (if present)}
//   OpenAI completions: {id, object:"text_completion", created, model, choices:[{text, index,
//     logprobs, finish_reason}], usage, system_fingerprint}
//   Anthropic: message_start's message with content built from the blocks (text_delta,
//     input_json_delta parsed into "input", thinking_delta, signature_delta, citations_delta)
//     and message_delta's delta and usage merged in.
//   Responses: the response of the last lifecycle event (response.completed's carries the
//     whole answer; the deltas add up to it); when that response has no output array, the
//     items of the output_item.done events, by output_index.
// Completeness is not required (a cut stream assembles to what arrived, finish_reason null /
// stop_reason null): use streamCompleted or isStorableResponse to decide about storing.
// Errc::InvalidArgument when the events are not a stream of that endpoint: a chunk that is
// not a JSON object, an error event or chunk, no chunk / no message_start, a delta for a block
// never started or of the wrong kind, tool input JSON that does not parse; embeddings always.
Result<Json> assembleStream(key::Endpoint endpoint, const std::vector<SseEvent>& events);

// Events that replay a non-streamed body, shaped like the provider's own streams so that the
// official SDKs' stream parsers accept them, and assembling back to the same body:
//   OpenAI chat, per choice: a role chunk (delta {role, content:""|null, refusal:null}), a
//     content chunk (with the choice's logprobs), a refusal chunk, per tool call a chunk with
//     id/type/name then one with the arguments, a finish chunk (delta {}, finish_reason);
//     then a usage chunk (choices []) when the body has usage; then "[DONE]". No event names.
//   OpenAI completions, per choice: a text chunk, a finish chunk; usage chunk; "[DONE]".
//   Anthropic: message_start (content [], stop_reason null), per block content_block_start
//     (text "", tool input {}, thinking ""), content_block_delta(s), content_block_stop, then
//     message_delta {stop_reason, stop_sequence; usage {output_tokens}} and message_stop, each
//     with its event name.
//   Responses: response.created and response.in_progress (status "in_progress", output [],
//     usage null), per output item output_item.added (a message without content, a
//     function_call without arguments, a reasoning item without summary), per message part
//     content_part.added, output_text.delta (the whole text in one) and output_text.done (or
//     refusal.delta/.done), content_part.done; a function call's arguments.delta/.done; a
//     reasoning summary's part and text events; other items whole; output_item.done; then
//     response.completed with the body itself. Named events, data.type and a sequence_number
//     from 0, as OpenAI sends them.
// Embeddings: no events. The body is assumed storable (isStorableResponse); missing members
// are skipped, never invented beyond what the SDKs require.
std::vector<SseEvent> synthesizeStream(key::Endpoint endpoint, const Json& response);

// A replayed OpenAI stream shaped for the client that asked for it: stream_options is not part
// of the cache key, so a recorded stream may carry the usage-only chunk (choices: []) that a
// client without stream_options.include_usage does not expect (and would choke on), or lack the
// one a client with it does expect. Without includeUsage the usage-only chunks are dropped;
// with it, one is added before [DONE] from `assembled`'s usage when the events have none.
// Anthropic streams are returned unchanged (usage is always part of them).
// An OpenAI usage-only chunk: `choices` empty and `usage` an object (what
// stream_options.include_usage adds before [DONE]).
bool isUsageOnlyChunk(const SseEvent& event);

// A streamed OpenAI chat or completions request body rewritten to ask for usage
// (stream_options.include_usage: true, other stream_options kept), so that every stored stream
// records its tokens and cost; nullopt when it already asks, when stream_options is not an
// object, or for another endpoint. The gateway then hides the usage-only chunk from a client
// that did not ask (its other chunks carry the provider's `"usage": null`).
std::optional<std::string> askForStreamUsage(key::Endpoint endpoint, std::string_view body);

std::vector<SseEvent> fitUsageToRequest(key::Endpoint endpoint, std::vector<SseEvent> events,
                                        bool includeUsage, const Json& assembled);

}  // namespace llmcache::api
