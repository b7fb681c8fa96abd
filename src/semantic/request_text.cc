#include "semantic/request_text.h"

#include <vector>

namespace llmcache::semantic {

namespace {

// Appends the text of content (a string, or an array of strings and {"text": ...} parts) and
// blanks it in place.
void takeContent(Json& content, std::string& out) {
  auto append = [&out](std::string_view t) {
    if (!out.empty()) out.push_back('\n');
    out.append(t);
  };
  if (content.isString()) {
    append(content.text());
    content = Json::string("");
  } else if (content.isArray()) {
    for (Json& part : content.items()) {
      if (part.isString()) {
        append(part.text());
        part = Json::string("");
      } else if (part.isObject()) {
        if (auto t = part.getString("text")) {
          append(*t);
          part.set("text", Json::string(""));
        }
      }
    }
  }
}

// The user turns of a messages (or Responses input) array, last first.
std::vector<Json*> userTurns(Json& list) {
  std::vector<Json*> out;
  auto items = list.items();
  for (auto it = items.rbegin(); it != items.rend(); ++it)
    if (it->isObject() && it->getString("role") == std::optional<std::string_view>("user"))
      if (Json* content = it->find("content")) out.push_back(content);
  return out;
}

}  // namespace

std::optional<TextMode> parseTextMode(std::string_view name) {
  if (name == "last_user") return TextMode::LastUser;
  if (name == "all_user") return TextMode::AllUser;
  return std::nullopt;
}

Result<std::optional<SemanticRequest>> describeRequest(const Json& request,
                                                       const key::KeyOptions& options,
                                                       TextMode mode) {
  if (!request.isObject() || options.endpoint == key::Endpoint::OpenAiEmbeddings)
    return std::optional<SemanticRequest>{};
  Json blanked = request;
  SemanticRequest out;
  Json* list = blanked.find("messages");
  if (!list) {
    if (Json* prompt = blanked.find("prompt"); prompt && prompt->isString()) {
      out.text = std::string(prompt->text());
      *prompt = Json::string("");
    }
    if (Json* input = blanked.find("input")) {
      if (input->isString()) {
        out.text = std::string(input->text());
        *input = Json::string("");
      } else if (input->isArray()) {
        list = input;
      }
    }
  }
  if (list && list->isArray()) {
    std::vector<Json*> turns = userTurns(*list);
    if (mode == TextMode::LastUser && turns.size() > 1) turns.resize(1);
    // Oldest first in the joined text.
    for (auto it = turns.rbegin(); it != turns.rend(); ++it) takeContent(**it, out.text);
  }
  if (out.text.empty()) return std::optional<SemanticRequest>{};
  if (auto t = request.getDouble("temperature")) out.temperature = *t;
  if (const Json* tools = request.find("tools"); tools && tools->isArray() && tools->size() > 0)
    out.hasTools = true;
  auto key = key::computeKey(blanked, options, key::Canonical::Drop);
  if (!key) return key.error();
  out.partition = std::move(key->requestHash);
  return std::optional<SemanticRequest>(std::move(out));
}

std::string answerText(key::Endpoint endpoint, const Json& response) {
  std::string out;
  auto append = [&out](std::string_view t) {
    if (t.empty()) return;
    if (!out.empty()) out.push_back('\n');
    out.append(t);
  };
  if (!response.isObject()) return out;
  if (const Json* choices = response.find("choices"); choices && choices->isArray()) {
    for (const Json& c : choices->items()) {
      if (auto t = c.getString("text")) append(*t);
      const Json* message = c.find("message");
      if (!message) continue;
      if (auto t = message->getString("content")) append(*t);
      if (const Json* calls = message->find("tool_calls"); calls && calls->isArray())
        for (const Json& call : calls->items())
          if (const Json* fn = call.find("function")) {
            append(fn->getString("name").value_or(""));
            append(fn->getString("arguments").value_or(""));
          }
    }
    return out;
  }
  if (const Json* content = response.find("content"); content && content->isArray()) {
    for (const Json& part : content->items()) {
      if (auto t = part.getString("text")) append(*t);
      if (part.getString("type") == std::optional<std::string_view>("tool_use")) {
        append(part.getString("name").value_or(""));
        if (const Json* input = part.find("input")) append(toJson(*input));
      }
    }
    return out;
  }
  if (const Json* output = response.find("output"); output && output->isArray()) {
    for (const Json& item : output->items()) {
      if (const Json* content = item.find("content"); content && content->isArray())
        for (const Json& part : content->items())
          if (auto t = part.getString("text")) append(*t);
      if (item.getString("type") == std::optional<std::string_view>("function_call")) {
        append(item.getString("name").value_or(""));
        append(item.getString("arguments").value_or(""));
      }
    }
  }
  (void)endpoint;
  return out;
}

}  // namespace llmcache::semantic
