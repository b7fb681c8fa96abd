#include "api/provider.h"

#include "common/json.h"

namespace llmcache::api {

Provider providerOf(key::Endpoint endpoint) {
  switch (endpoint) {
    case key::Endpoint::OpenAiChat:
    case key::Endpoint::OpenAiCompletions:
    case key::Endpoint::OpenAiEmbeddings:
    case key::Endpoint::OpenAiResponses:
      return Provider::OpenAi;
    case key::Endpoint::AnthropicMessages:
      return Provider::Anthropic;
  }
  return Provider::OpenAi;
}

std::optional<key::Endpoint> endpointForPath(std::string_view path) {
  if (auto q = path.find('?'); q != std::string_view::npos) path = path.substr(0, q);
  if (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  if (path == "/v1/chat/completions") return key::Endpoint::OpenAiChat;
  if (path == "/v1/completions") return key::Endpoint::OpenAiCompletions;
  if (path == "/v1/embeddings") return key::Endpoint::OpenAiEmbeddings;
  if (path == "/v1/messages") return key::Endpoint::AnthropicMessages;
  if (path == "/v1/responses") return key::Endpoint::OpenAiResponses;
  return std::nullopt;
}

std::string errorBody(Provider provider, std::string_view type, std::string_view message) {
  if (provider == Provider::Anthropic) {
    return toJson(Json::object()
                      .set("type", Json::string("error"))
                      .set("error", Json::object()
                                        .set("type", Json::string(std::string(type)))
                                        .set("message", Json::string(std::string(message)))));
  }
  return toJson(Json::object().set("error", Json::object()
                                                .set("message", Json::string(std::string(message)))
                                                .set("type", Json::string(std::string(type)))
                                                .set("param", Json::null())
                                                .set("code", Json::null())));
}

std::string_view errorTypeForStatus(Provider provider, int status) {
  const bool anthropic = provider == Provider::Anthropic;
  switch (status) {
    case 400:
      return "invalid_request_error";
    case 401:
      return "authentication_error";
    case 402:
      return anthropic ? "billing_error" : "invalid_request_error";
    case 403:
      return "permission_error";
    case 404:
      return "not_found_error";
    case 408:
      return anthropic ? "timeout_error" : "invalid_request_error";
    case 413:
      return "request_too_large";
    case 429:
      return "rate_limit_error";
    case 500:
      return anthropic ? "api_error" : "server_error";
    case 502:
      return anthropic ? "api_error" : "server_error";
    case 503:
      return anthropic ? "overloaded_error" : "server_error";
    case 504:
      return anthropic ? "timeout_error" : "server_error";
    case 529:
      return anthropic ? "overloaded_error" : "server_error";
    default:
      break;
  }
  if (status >= 500) return anthropic ? "api_error" : "server_error";
  return "invalid_request_error";
}

}  // namespace llmcache::api
