#include "api/response.h"

#include <string_view>

namespace llmcache::api {
namespace {

using key::Endpoint;

bool hasString(const Json& obj, std::string_view name, std::string_view value) {
  auto s = obj.getString(name);
  return s && *s == value;
}

bool goodFinishReason(const Json& choice) {
  auto reason = choice.getString("finish_reason");
  return reason && *reason != "error";
}

bool choicesStorable(const Json& body, bool chat) {
  const Json* choices = body.find("choices");
  if (!choices || !choices->isArray() || choices->size() == 0) return false;
  for (const Json& choice : choices->items()) {
    if (!choice.isObject() || !goodFinishReason(choice)) return false;
    if (chat) {
      const Json* message = choice.find("message");
      if (!message || !message->isObject()) return false;
    } else if (!choice.getString("text")) {
      return false;
    }
  }
  return true;
}

bool embeddingsStorable(const Json& body) {
  const Json* data = body.find("data");
  if (!data || !data->isArray() || data->size() == 0) return false;
  for (const Json& item : data->items()) {
    const Json* embedding = item.isObject() ? item.find("embedding") : nullptr;
    if (!embedding) return false;
    const bool ok = (embedding->isArray() && embedding->size() > 0) ||
                    (embedding->isString() && !embedding->text().empty());
    if (!ok) return false;
  }
  return true;
}

int64_t tokens(const Json* usage, std::string_view name) {
  if (!usage || !usage->isObject()) return 0;
  const Json* v = usage->find(name);
  if (!v || !v->isNumber()) return 0;
  auto n = v->asInt64();
  return n && *n > 0 ? *n : 0;
}

}  // namespace

bool isStorableResponse(Endpoint endpoint, const Json& body) {
  if (!body.isObject()) return false;
  if (const Json* error = body.find("error"); error && !error->isNull()) return false;
  switch (endpoint) {
    case Endpoint::OpenAiChat:
      return hasString(body, "object", "chat.completion") && choicesStorable(body, true);
    case Endpoint::OpenAiCompletions:
      return hasString(body, "object", "text_completion") && choicesStorable(body, false);
    case Endpoint::OpenAiEmbeddings:
      return hasString(body, "object", "list") && embeddingsStorable(body);
    case Endpoint::OpenAiResponses: {
      const Json* output = body.find("output");
      return hasString(body, "object", "response") && hasString(body, "status", "completed") &&
             output && output->isArray();
    }
    case Endpoint::AnthropicMessages: {
      const Json* content = body.find("content");
      return hasString(body, "type", "message") && content && content->isArray() &&
             body.getString("stop_reason").has_value();
    }
  }
  return false;
}

Usage extractUsage(Endpoint endpoint, const Json& body) {
  Usage u;
  const Json* usage = body.isObject() ? body.find("usage") : nullptr;
  if (endpoint == Endpoint::AnthropicMessages) {
    u.inputTokens = tokens(usage, "input_tokens") + tokens(usage, "cache_creation_input_tokens") +
                    tokens(usage, "cache_read_input_tokens");
    u.outputTokens = tokens(usage, "output_tokens");
    return u;
  }
  if (endpoint == Endpoint::OpenAiResponses) {
    u.inputTokens = tokens(usage, "input_tokens");
    u.outputTokens = tokens(usage, "output_tokens");
  } else {
    u.inputTokens = tokens(usage, "prompt_tokens");
    if (endpoint != Endpoint::OpenAiEmbeddings) u.outputTokens = tokens(usage, "completion_tokens");
  }
  if (usage && usage->isObject()) {
    if (const Json* cost = usage->find("cost"); cost && cost->isNumber()) {
      if (auto v = cost->asDouble(); v && *v >= 0) u.reportedCostUsd = *v;
    }
  }
  return u;
}

}  // namespace llmcache::api
