#include "api/request.h"

namespace llmcache::api {
namespace {

Error invalid(std::string message) { return makeError(Errc::InvalidArgument, std::move(message)); }

// messages: a non-empty array of objects, each with a string role (chat and Anthropic alike).
std::optional<Error> checkMessages(const Json& body) {
  const Json* messages = body.find("messages");
  if (!messages) return invalid("'messages' is required");
  if (!messages->isArray() || messages->size() == 0)
    return invalid("'messages' must be a non-empty array");
  for (size_t i = 0; i < messages->size(); ++i) {
    const Json& m = messages->items()[i];
    const std::string where = "'messages[" + std::to_string(i) + "]";
    if (!m.isObject()) return invalid(where + "' must be an object");
    const Json* role = m.find("role");
    if (!role) return invalid(where + ".role' is required");
    if (!role->isString()) return invalid(where + ".role' must be a string");
  }
  return std::nullopt;
}

std::optional<Error> checkEndpointFields(key::Endpoint endpoint, const Json& body) {
  switch (endpoint) {
    case key::Endpoint::OpenAiChat:
      return checkMessages(body);
    case key::Endpoint::OpenAiCompletions: {
      const Json* prompt = body.find("prompt");
      if (!prompt) return invalid("'prompt' is required");
      if (!prompt->isString() && !prompt->isArray())
        return invalid("'prompt' must be a string or an array");
      return std::nullopt;
    }
    case key::Endpoint::OpenAiEmbeddings: {
      const Json* input = body.find("input");
      if (!input) return invalid("'input' is required");
      if (input->isString()) {
        if (input->text().empty()) return invalid("'input' must not be empty");
      } else if (input->isArray()) {
        if (input->size() == 0) return invalid("'input' must be a non-empty array");
      } else {
        return invalid("'input' must be a string or an array");
      }
      if (const Json* s = body.find("stream"); s && !s->isNull())
        return invalid("'stream' is not supported for embeddings");
      return std::nullopt;
    }
    case key::Endpoint::OpenAiResponses: {
      // input may be absent (a stored prompt, previous_response_id): the upstream judges.
      if (const Json* input = body.find("input"); input && !input->isNull()) {
        if (!input->isString() && !input->isArray())
          return invalid("'input' must be a string or an array");
      }
      if (const Json* i = body.find("instructions"); i && !i->isNull() && !i->isString())
        return invalid("'instructions' must be a string");
      if (const Json* b = body.find("background"); b && !b->isNull() && !b->isBool())
        return invalid("'background' must be a boolean");
      return std::nullopt;
    }
    case key::Endpoint::AnthropicMessages: {
      if (auto e = checkMessages(body)) return e;
      const Json* maxTokens = body.find("max_tokens");
      if (!maxTokens) return invalid("'max_tokens' is required");
      auto n = maxTokens->isNumber() ? maxTokens->asInt64() : std::nullopt;
      if (!n) return invalid("'max_tokens' must be an integer");
      if (*n < 1) return invalid("'max_tokens' must be at least 1");
      return std::nullopt;
    }
  }
  return std::nullopt;
}

}  // namespace

Result<RequestInfo> validateRequest(key::Endpoint endpoint, const Json& body) {
  if (!body.isObject()) return invalid("the request body must be a JSON object");
  const Json* model = body.find("model");
  if (!model) return invalid("'model' is required");
  if (!model->isString() || model->text().empty())
    return invalid("'model' must be a non-empty string");
  if (auto e = checkEndpointFields(endpoint, body)) return *e;

  RequestInfo info{endpoint, std::string(model->text()), false, {}};
  if (const Json* stream = body.find("stream"); stream && !stream->isNull()) {
    if (!stream->isBool()) return invalid("'stream' must be a boolean");
    info.stream = stream->asBool();
  }
  if (endpoint == key::Endpoint::OpenAiResponses) {
    if (body.getBool("background") == std::optional<bool>(true)) {
      info.bypass = "background";
    } else if (const Json* c = body.find("conversation"); c && !c->isNull()) {
      info.bypass = "conversation";
    } else if (const Json* p = body.find("prompt");
               p && p->isObject() && (!p->find("version") || p->find("version")->isNull())) {
      info.bypass = "prompt without version";
    }
  }
  return info;
}

}  // namespace llmcache::api
