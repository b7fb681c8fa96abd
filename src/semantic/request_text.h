#pragma once
// What of a request is embedded, and the partition it may match in (docs/semantic.md).
//
// The embedded text is the last user turn (TextMode::LastUser, the default) or every user turn
// (AllUser), never the system prompt, the tools or the assistant's turns. The partition is the
// request's key (key spec v1, with the request's KeyOptions: endpoint, tenant scope, namespace,
// context) computed with the embedded text blanked: two requests share a partition exactly when
// they differ in nothing but that text, so a semantic hit never crosses a tenant, a model, a
// tool set, a system prompt, a temperature or an earlier turn.
#include <optional>
#include <string>
#include <string_view>

#include "common/json.h"
#include "common/result.h"
#include "key/cache_key.h"

namespace llmcache::semantic {

enum class TextMode { LastUser, AllUser };
std::optional<TextMode> parseTextMode(std::string_view name);  // "last_user", "all_user"

struct SemanticRequest {
  std::string text;       // what is embedded (user turns joined by "\n")
  std::string partition;  // the blanked request's request_hash
  std::optional<double> temperature;
  bool hasTools = false;  // a non-empty `tools` array
};

// nullopt: nothing to embed (the embeddings endpoint, no user text). InvalidArgument: the
// blanked request cannot be keyed (it could not have been keyed either).
Result<std::optional<SemanticRequest>> describeRequest(const Json& request,
                                                       const key::KeyOptions& options,
                                                       TextMode mode = TextMode::LastUser);

// The text of an answer, for comparing two answers (shadow mode): the assistant's text and any
// tool call's name and arguments, of chat, completions, Anthropic messages and Responses
// answers. Empty when there is none.
std::string answerText(key::Endpoint endpoint, const Json& response);

}  // namespace llmcache::semantic
