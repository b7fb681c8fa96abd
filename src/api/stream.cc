#include "api/stream.h"

#include <boost/algorithm/string/classification.hpp>
#include <boost/algorithm/string/trim.hpp>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace llmcache::api {
namespace {

using key::Endpoint;

Error invalid(std::string message) { return makeError(Errc::InvalidArgument, std::move(message)); }

const Json* member(const Json& obj, std::string_view name) {
  return obj.isObject() ? obj.find(name) : nullptr;
}
const Json* nonNull(const Json* j) { return j && !j->isNull() ? j : nullptr; }
// A string member's text (a copy: a short text lives inside its Json), or nothing.
class OwnedText {
 public:
  OwnedText() = default;
  explicit OwnedText(std::string_view s) : text_(std::string(s)) {}
  explicit operator bool() const { return text_.has_value(); }
  const std::string& operator*() const { return *text_; }
  const std::string* operator->() const { return &*text_; }

 private:
  std::optional<std::string> text_;
};
OwnedText stringMember(const Json& obj, std::string_view name) {
  const Json* j = member(obj, name);
  return j && j->isString() ? OwnedText(j->text()) : OwnedText();
}

std::string_view trim(std::string_view s) {  // spaces and tabs only
  return boost::algorithm::trim_copy_if(s, boost::algorithm::is_any_of(" \t"));
}
bool isDone(const SseEvent& e) { return trim(e.data) == "[DONE]"; }

std::string errorText(const Json& error) {
  if (error.isString()) return std::string(error.text());
  std::string out;
  if (auto t = stringMember(error, "type")) out += *t;
  if (auto m = stringMember(error, "message")) out += (out.empty() ? "" : ": ") + *m;
  return out.empty() ? toJson(error) : out;
}

// Appends the arrays of `more` to those of `acc` (logprobs arrive piecewise: content /
// refusal for chat, tokens / token_logprobs / top_logprobs / text_offset for completions).
void mergeLogprobs(Json& acc, const Json& more) {
  if (!more.isObject()) return;
  if (!acc.isObject()) {
    acc = more;
    return;
  }
  for (size_t i = 0; i < more.keys().size(); ++i) {
    const Json& v = more.items()[i];
    Json* mine = acc.find(more.keys()[i]);
    if (!mine || mine->isNull()) {
      acc.set(more.keys()[i], v);
    } else if (mine->isArray() && v.isArray()) {
      for (const Json& item : v.items()) mine->push(item);
    }
  }
}

// ---------------------------------------------------------------- OpenAI

struct ToolCallAcc {
  Json id, type;
  std::optional<std::string> name;
  std::string arguments;
};

struct ChoiceAcc {
  Json index;
  std::optional<std::string> role;
  std::optional<std::string> content;  // chat
  std::optional<std::string> refusal;
  std::map<int64_t, ToolCallAcc> toolCalls;
  std::optional<ToolCallAcc> functionCall;
  std::string text;  // completions
  Json logprobs;
  Json finishReason;
};

// One OpenAI chunk: a JSON object that is not an error.
Result<Json> parseChunk(const SseEvent& e, size_t position) {
  auto chunk = parseJson(e.data);
  if (!chunk) return invalid("event " + std::to_string(position) + ": " + chunk.error().message);
  if (!chunk->isObject()) return invalid("event " + std::to_string(position) + " is not an object");
  if (const Json* err = nonNull(chunk->find("error")))
    return invalid("the stream carries an error: " + errorText(*err));
  return chunk;
}

void mergeChatDelta(ChoiceAcc& acc, const Json& delta) {
  if (auto r = stringMember(delta, "role")) acc.role = *r;
  if (auto c = stringMember(delta, "content")) acc.content = acc.content.value_or("") + *c;
  if (auto r = stringMember(delta, "refusal")) acc.refusal = acc.refusal.value_or("") + *r;
  if (const Json* calls = member(delta, "tool_calls"); calls && calls->isArray()) {
    for (size_t i = 0; i < calls->size(); ++i) {
      const Json& call = calls->items()[i];
      // Some OpenAI-compatible servers omit the index of their only call.
      const int64_t index = call.getInt("index").value_or(static_cast<int64_t>(i));
      ToolCallAcc& tc = acc.toolCalls[index];
      if (auto id = stringMember(call, "id"); id && !id->empty()) tc.id = Json::string(*id);
      if (auto t = stringMember(call, "type"); t && !t->empty()) tc.type = Json::string(*t);
      if (const Json* fn = member(call, "function")) {
        if (auto n = stringMember(*fn, "name"); n && !n->empty()) tc.name = *n;
        if (auto a = stringMember(*fn, "arguments")) tc.arguments += *a;
      }
    }
  }
  if (const Json* fc = nonNull(member(delta, "function_call"))) {
    if (!acc.functionCall) acc.functionCall.emplace();
    if (auto n = stringMember(*fc, "name"); n && !n->empty()) acc.functionCall->name = *n;
    if (auto a = stringMember(*fc, "arguments")) acc.functionCall->arguments += *a;
  }
}

Json chatMessage(const ChoiceAcc& acc) {
  Json msg = Json::object();
  msg.set("role", Json::string(acc.role.value_or("assistant")));
  msg.set("content", acc.content ? Json::string(*acc.content) : Json::null());
  // Always present, as in the API's own non-streamed bodies (SDK types declare it
  // `string | null`; a missing member would read as undefined, not null).
  msg.set("refusal", acc.refusal ? Json::string(*acc.refusal) : Json::null());
  if (!acc.toolCalls.empty()) {
    Json calls = Json::array();
    for (const auto& [index, tc] : acc.toolCalls) {
      calls.push(Json::object()
                     .set("id", tc.id)
                     .set("type", tc.type.isNull() ? Json::string("function") : tc.type)
                     .set("function", Json::object()
                                          .set("name", Json::string(tc.name.value_or("")))
                                          .set("arguments", Json::string(tc.arguments))));
    }
    msg.set("tool_calls", std::move(calls));
  }
  if (acc.functionCall) {
    msg.set("function_call", Json::object()
                                 .set("name", Json::string(acc.functionCall->name.value_or("")))
                                 .set("arguments", Json::string(acc.functionCall->arguments)));
  }
  return msg;
}

Result<Json> assembleOpenAi(Endpoint endpoint, const std::vector<SseEvent>& events) {
  const bool chat = endpoint == Endpoint::OpenAiChat;
  std::map<int64_t, ChoiceAcc> choices;
  Json id, created, model, serviceTier, fingerprint, usage;
  size_t chunks = 0;
  for (size_t i = 0; i < events.size(); ++i) {
    const SseEvent& e = events[i];
    if (trim(e.data).empty()) continue;
    if (isDone(e)) break;
    auto chunk = parseChunk(e, i);
    if (!chunk) return chunk.error();
    ++chunks;
    // The first real value: Azure opens with a prompt_filter_results chunk whose id and model
    // are "" and created is 0.
    auto firstOf = [&](Json& slot, std::string_view name) {
      if (!slot.isNull()) return;
      const Json* v = nonNull(chunk->find(name));
      if (v && !((v->isString() || v->isNumber()) && (v->text().empty() || v->text() == "0")))
        slot = *v;
    };
    firstOf(id, "id");
    firstOf(created, "created");
    firstOf(model, "model");
    firstOf(serviceTier, "service_tier");
    firstOf(fingerprint, "system_fingerprint");
    if (const Json* u = nonNull(chunk->find("usage")); u && u->isObject()) usage = *u;

    const Json* list = chunk->find("choices");
    if (!list) continue;  // e.g. a usage-only chunk from a server that omits "choices"
    if (!list->isArray())
      return invalid("event " + std::to_string(i) + ": 'choices' is not an array");
    for (size_t c = 0; c < list->size(); ++c) {
      const Json& choice = list->items()[c];
      if (!choice.isObject())
        return invalid("event " + std::to_string(i) + ": a choice is not an object");
      const int64_t index = choice.getInt("index").value_or(static_cast<int64_t>(c));
      ChoiceAcc& acc = choices[index];
      acc.index = Json::integer(index);
      if (chat) {
        if (const Json* delta = choice.find("delta")) mergeChatDelta(acc, *delta);
      } else if (auto t = stringMember(choice, "text")) {
        acc.text += *t;
      }
      if (const Json* lp = nonNull(choice.find("logprobs"))) mergeLogprobs(acc.logprobs, *lp);
      if (const Json* fr = nonNull(choice.find("finish_reason"))) acc.finishReason = *fr;
    }
  }
  if (chunks == 0) return invalid("the stream holds no chunks");

  Json out = Json::object();
  if (!id.isNull()) out.set("id", id);
  out.set("object", Json::string(chat ? "chat.completion" : "text_completion"));
  if (!created.isNull()) out.set("created", created);
  if (!model.isNull()) out.set("model", model);
  Json list = Json::array();
  for (const auto& [index, acc] : choices) {
    if (chat) {
      list.push(Json::object()
                    .set("index", acc.index)
                    .set("message", chatMessage(acc))
                    .set("logprobs", acc.logprobs)
                    .set("finish_reason", acc.finishReason));
    } else {
      list.push(Json::object()
                    .set("text", Json::string(acc.text))
                    .set("index", acc.index)
                    .set("logprobs", acc.logprobs)
                    .set("finish_reason", acc.finishReason));
    }
  }
  out.set("choices", std::move(list));
  if (!usage.isNull()) out.set("usage", usage);
  if (!serviceTier.isNull()) out.set("service_tier", serviceTier);
  if (!fingerprint.isNull()) out.set("system_fingerprint", fingerprint);
  return out;
}

bool openAiCompleted(const std::vector<SseEvent>& events) {
  std::map<int64_t, bool> finished;  // choice index -> has a good finish_reason
  const SseEvent* last = nullptr;
  for (const SseEvent& e : events) {
    if (trim(e.data).empty()) continue;
    last = &e;
    if (isDone(e)) break;
    auto chunk = parseChunk(e, 0);
    if (!chunk) return false;
    const Json* list = chunk->find("choices");
    if (!list || !list->isArray()) continue;
    for (size_t c = 0; c < list->size(); ++c) {
      const Json& choice = list->items()[c];
      const int64_t index = choice.getInt("index").value_or(static_cast<int64_t>(c));
      bool& done = finished[index];
      const Json* fr = nonNull(member(choice, "finish_reason"));
      if (fr) done = !(fr->isString() && fr->text() == "error");
    }
  }
  if (!last || !isDone(*last) || finished.empty()) return false;
  for (const auto& [index, done] : finished)
    if (!done) return false;
  return true;
}

// ---------------------------------------------------------------- Anthropic

struct BlockAcc {
  Json block;
  std::string partialJson;
  bool hasPartialJson = false;
};

// Anthropic names each event and repeats the name as data.type; either will do.
std::string anthropicType(const SseEvent& e, const Json& data) {
  if (!e.event.empty()) return e.event;
  if (auto t = stringMember(data, "type")) return *t;
  return {};
}

Result<void> appendString(Json& block, std::string_view field, const Json& delta,
                          std::string_view deltaField) {
  const OwnedText piece = stringMember(delta, deltaField);
  if (!piece) return invalid(std::string("a delta lacks its '") + std::string(deltaField) + "'");
  Json* mine = block.find(field);
  if (!mine || mine->isNull()) {
    block.set(std::string(field), Json::string(*piece));
  } else if (mine->isString()) {
    *mine = Json::string(std::string(mine->text()) + *piece);
  } else {
    return invalid("block field '" + std::string(field) + "' is not a string");
  }
  return {};
}

Result<void> applyBlockDelta(BlockAcc& acc, const Json& delta) {
  const OwnedText type = stringMember(delta, "type");
  const OwnedText blockType = stringMember(acc.block, "type");
  if (!type || !blockType) return invalid("a content block or delta has no type");
  auto mismatch = [&] { return invalid(*type + " for a block of type " + *blockType); };
  if (*type == "text_delta") {
    if (*blockType != "text") return mismatch();
    return appendString(acc.block, "text", delta, "text");
  }
  if (*type == "input_json_delta") {
    if (!acc.block.find("input")) return mismatch();  // tool_use, server_tool_use, mcp_tool_use
    const OwnedText piece = stringMember(delta, "partial_json");
    if (!piece) return invalid("an input_json_delta lacks 'partial_json'");
    acc.partialJson += *piece;
    acc.hasPartialJson = true;
    return {};
  }
  if (*type == "thinking_delta") {
    if (*blockType != "thinking") return mismatch();
    return appendString(acc.block, "thinking", delta, "thinking");
  }
  if (*type == "signature_delta") {
    if (*blockType != "thinking") return mismatch();
    return appendString(acc.block, "signature", delta, "signature");
  }
  if (*type == "citations_delta") {
    if (*blockType != "text") return mismatch();
    const Json* citation = member(delta, "citation");
    if (!citation) return invalid("a citations_delta lacks 'citation'");
    Json* list = acc.block.find("citations");
    if (!list || !list->isArray()) {
      acc.block.set("citations", Json::array());
      list = acc.block.find("citations");
    }
    list->push(*citation);
    return {};
  }
  // An unknown delta would be dropped silently and the assembled answer be wrong: refuse.
  return invalid("unknown content_block_delta type '" + *type + "'");
}

Result<Json> assembleAnthropic(const std::vector<SseEvent>& events) {
  std::optional<Json> message;
  std::map<int64_t, BlockAcc> blocks;
  for (size_t i = 0; i < events.size(); ++i) {
    const SseEvent& e = events[i];
    if (trim(e.data).empty()) continue;
    const std::string where = "event " + std::to_string(i);
    auto data = parseJson(e.data);
    if (!data) return invalid(where + ": " + data.error().message);
    if (!data->isObject()) return invalid(where + " is not an object");
    const std::string type = anthropicType(e, *data);

    if (type == "error") {
      const Json* err = data->find("error");
      return invalid("the stream carries an error: " + (err ? errorText(*err) : e.data));
    }
    if (type == "message_start") {
      if (message) return invalid(where + ": a second message_start");
      const Json* m = data->find("message");
      if (!m || !m->isObject()) return invalid(where + ": message_start without a message");
      message = *m;
      continue;
    }
    if (type != "content_block_start" && type != "content_block_delta" &&
        type != "content_block_stop" && type != "message_delta") {
      continue;  // ping, message_stop, and event types newer than this code
    }
    if (!message) return invalid(where + ": " + type + " before message_start");
    if (type == "message_delta") {
      if (const Json* delta = data->find("delta"); delta && delta->isObject()) {
        for (size_t k = 0; k < delta->keys().size(); ++k)
          message->set(delta->keys()[k], delta->items()[k]);
      }
      if (const Json* u = data->find("usage"); u && u->isObject()) {
        Json* mine = message->find("usage");
        if (!mine || !mine->isObject()) {
          message->set("usage", Json::object());
          mine = message->find("usage");
        }
        // message_delta usage is cumulative; its nulls mean "not reported here".
        for (size_t k = 0; k < u->keys().size(); ++k)
          if (!u->items()[k].isNull()) mine->set(u->keys()[k], u->items()[k]);
      }
      continue;
    }
    auto index = data->getInt("index");
    if (!index) return invalid(where + ": " + type + " without an integer index");
    if (type == "content_block_start") {
      const Json* block = data->find("content_block");
      if (!block || !block->isObject()) return invalid(where + ": no content_block");
      if (blocks.count(*index))
        return invalid(where + ": block " + std::to_string(*index) + " started twice");
      blocks[*index].block = *block;
      continue;
    }
    auto it = blocks.find(*index);
    if (it == blocks.end())
      return invalid(where + ": " + type + " for block " + std::to_string(*index) +
                     " never started");
    if (type == "content_block_delta") {
      const Json* delta = data->find("delta");
      if (!delta || !delta->isObject())
        return invalid(where + ": content_block_delta without a delta");
      if (auto r = applyBlockDelta(it->second, *delta); !r)
        return invalid(where + ": " + r.error().message);
    }
    // content_block_stop: nothing to do; the block is complete as it is.
  }
  if (!message) return invalid("the stream has no message_start");

  Json content = Json::array();
  if (const Json* start = message->find("content"); start && start->isArray()) content = *start;
  for (auto& [index, acc] : blocks) {
    if (acc.hasPartialJson && !trim(acc.partialJson).empty()) {
      auto input = parseJson(acc.partialJson);
      if (!input)
        return invalid("block " + std::to_string(index) +
                       ": tool input is not JSON: " + input.error().message);
      acc.block.set("input", std::move(*input));
    }
    content.push(std::move(acc.block));
  }
  message->set("content", std::move(content));
  return std::move(*message);
}

bool anthropicCompleted(const std::vector<SseEvent>& events) {
  bool started = false, stopped = false;
  for (const SseEvent& e : events) {
    std::string type = e.event;
    if (type.empty()) {
      auto data = parseJson(e.data);
      if (!data) continue;
      type = anthropicType(e, *data);
    }
    if (type == "error") return false;
    if (type == "message_start") started = true;
    if (type == "message_stop") stopped = true;
  }
  return started && stopped;
}

// ---------------------------------------------------------------- synthesis

SseEvent dataEvent(const Json& j) { return SseEvent{"", toJson(j)}; }
SseEvent namedEvent(std::string name, const Json& j) {
  return SseEvent{std::move(name), toJson(j)};
}

Json copyOrNull(const Json* j) { return j ? *j : Json::null(); }

std::vector<SseEvent> synthesizeOpenAi(Endpoint endpoint, const Json& response) {
  const bool chat = endpoint == Endpoint::OpenAiChat;
  Json base = Json::object();
  if (const Json* id = member(response, "id")) base.set("id", *id);
  base.set("object", Json::string(chat ? "chat.completion.chunk" : "text_completion"));
  if (const Json* created = member(response, "created")) base.set("created", *created);
  if (const Json* model = member(response, "model")) base.set("model", *model);
  if (const Json* tier = nonNull(member(response, "service_tier"))) base.set("service_tier", *tier);
  if (const Json* fp = nonNull(member(response, "system_fingerprint")))
    base.set("system_fingerprint", *fp);

  std::vector<SseEvent> out;
  auto emit = [&](Json choice) {
    Json chunk = base;
    chunk.set("choices", Json::array().push(std::move(choice)));
    out.push_back(dataEvent(chunk));
  };
  auto chatChoice = [](const Json& index, Json delta, Json logprobs, Json finish) {
    return Json::object()
        .set("index", index)
        .set("delta", std::move(delta))
        .set("logprobs", std::move(logprobs))
        .set("finish_reason", std::move(finish));
  };
  auto textChoice = [](std::string text, const Json& index, Json logprobs, Json finish) {
    return Json::object()
        .set("text", Json::string(std::move(text)))
        .set("index", index)
        .set("logprobs", std::move(logprobs))
        .set("finish_reason", std::move(finish));
  };

  const Json* choices = member(response, "choices");
  const size_t n = choices && choices->isArray() ? choices->size() : 0;
  for (size_t c = 0; c < n; ++c) {
    const Json& choice = choices->items()[c];
    const Json index = copyOrNull(member(choice, "index")).isNull()
                           ? Json::integer(static_cast<int64_t>(c))
                           : *member(choice, "index");
    const Json logprobs = copyOrNull(nonNull(member(choice, "logprobs")));
    const Json finish = copyOrNull(member(choice, "finish_reason"));
    if (!chat) {
      const OwnedText text = stringMember(choice, "text");
      emit(textChoice(text ? *text : "", index, logprobs, Json::null()));
      emit(textChoice("", index, Json::null(), finish));
      continue;
    }
    const Json* message = member(choice, "message");
    const Json empty = Json::object();
    const Json& msg = message && message->isObject() ? *message : empty;
    const OwnedText role = stringMember(msg, "role");
    const OwnedText content = stringMember(msg, "content");
    emit(chatChoice(index,
                    Json::object()
                        .set("role", Json::string(role ? *role : "assistant"))
                        .set("content", content ? Json::string("") : Json::null())
                        .set("refusal", Json::null()),
                    Json::null(), Json::null()));
    if ((content && !content->empty()) || !logprobs.isNull()) {
      Json delta = Json::object();
      if (content && !content->empty()) delta.set("content", Json::string(*content));
      emit(chatChoice(index, std::move(delta), logprobs, Json::null()));
    }
    if (const OwnedText refusal = stringMember(msg, "refusal")) {
      emit(chatChoice(index, Json::object().set("refusal", Json::string(*refusal)), Json::null(),
                      Json::null()));
    }
    if (const Json* calls = member(msg, "tool_calls"); calls && calls->isArray()) {
      for (size_t t = 0; t < calls->size(); ++t) {
        const Json& call = calls->items()[t];
        const Json* fn = member(call, "function");
        const OwnedText name = fn ? stringMember(*fn, "name") : OwnedText();
        const OwnedText args = fn ? stringMember(*fn, "arguments") : OwnedText();
        const Json callIndex = Json::integer(static_cast<int64_t>(t));
        Json head = Json::object().set("index", callIndex);
        if (const Json* id = member(call, "id")) head.set("id", *id);
        head.set("type", copyOrNull(member(call, "type")).isNull() ? Json::string("function")
                                                                   : *member(call, "type"));
        head.set("function", Json::object()
                                 .set("name", Json::string(name ? *name : ""))
                                 .set("arguments", Json::string("")));
        emit(chatChoice(index, Json::object().set("tool_calls", Json::array().push(head)),
                        Json::null(), Json::null()));
        if (args && !args->empty()) {
          Json piece = Json::object()
                           .set("index", callIndex)
                           .set("function", Json::object().set("arguments", Json::string(*args)));
          emit(chatChoice(index, Json::object().set("tool_calls", Json::array().push(piece)),
                          Json::null(), Json::null()));
        }
      }
    }
    if (const Json* fc = nonNull(member(msg, "function_call"))) {
      emit(chatChoice(index, Json::object().set("function_call", *fc), Json::null(), Json::null()));
    }
    emit(chatChoice(index, Json::object(), Json::null(), finish));
  }
  if (const Json* usage = nonNull(member(response, "usage"))) {
    Json chunk = base;
    chunk.set("choices", Json::array());
    chunk.set("usage", *usage);
    out.push_back(dataEvent(chunk));
  }
  out.push_back(SseEvent{"", "[DONE]"});
  return out;
}

std::vector<SseEvent> synthesizeAnthropic(const Json& response) {
  std::vector<SseEvent> out;
  auto emit = [&](std::string name, Json data) {
    Json full = Json::object().set("type", Json::string(name));
    for (size_t k = 0; k < data.keys().size(); ++k) full.set(data.keys()[k], data.items()[k]);
    out.push_back(namedEvent(std::move(name), full));
  };

  Json start = response.isObject() ? response : Json::object();
  start.set("content", Json::array());
  start.set("stop_reason", Json::null());
  start.set("stop_sequence", Json::null());
  emit("message_start", Json::object().set("message", std::move(start)));

  const Json* content = member(response, "content");
  const size_t n = content && content->isArray() ? content->size() : 0;
  for (size_t i = 0; i < n; ++i) {
    const Json& block = content->items()[i];
    const Json index = Json::integer(static_cast<int64_t>(i));
    const OwnedText type = stringMember(block, "type");
    Json head = block;
    std::vector<Json> deltas;
    if (type && *type == "text") {
      head.set("text", Json::string(""));
      if (const OwnedText text = stringMember(block, "text"); text && !text->empty())
        deltas.push_back(Json::object()
                             .set("type", Json::string("text_delta"))
                             .set("text", Json::string(*text)));
      if (const Json* cites = member(block, "citations"); cites && cites->isArray()) {
        head.set("citations", Json::array());
        for (const Json& c : cites->items())
          deltas.push_back(
              Json::object().set("type", Json::string("citations_delta")).set("citation", c));
      }
    } else if (type && *type == "thinking") {
      head.set("thinking", Json::string(""));
      head.set("signature", Json::string(""));
      if (const OwnedText t = stringMember(block, "thinking"); t && !t->empty())
        deltas.push_back(Json::object()
                             .set("type", Json::string("thinking_delta"))
                             .set("thinking", Json::string(*t)));
      if (const OwnedText s = stringMember(block, "signature"); s && !s->empty())
        deltas.push_back(Json::object()
                             .set("type", Json::string("signature_delta"))
                             .set("signature", Json::string(*s)));
    } else if (const Json* input = member(block, "input")) {
      // tool_use, server_tool_use, mcp_tool_use: the input arrives as JSON text.
      head.set("input", Json::object());
      if (!(input->isObject() && input->size() == 0))
        deltas.push_back(Json::object()
                             .set("type", Json::string("input_json_delta"))
                             .set("partial_json", Json::string(toJson(*input))));
    }
    // Other blocks (redacted_thinking, *_tool_result, ...) arrive whole in their start.
    emit("content_block_start", Json::object().set("index", index).set("content_block", head));
    for (Json& d : deltas)
      emit("content_block_delta", Json::object().set("index", index).set("delta", std::move(d)));
    emit("content_block_stop", Json::object().set("index", index));
  }

  Json usage = Json::object();
  if (const Json* u = member(response, "usage"))
    if (const Json* o = member(*u, "output_tokens")) usage.set("output_tokens", *o);
  emit("message_delta",
       Json::object()
           .set("delta", Json::object()
                             .set("stop_reason", copyOrNull(member(response, "stop_reason")))
                             .set("stop_sequence", copyOrNull(member(response, "stop_sequence"))))
           .set("usage", std::move(usage)));
  emit("message_stop", Json::object());
  return out;
}

// ---------------------------------------------------------------- OpenAI Responses API

// Responses events are named (event: response.output_text.delta) and repeat the name as
// data.type, like Anthropic's; either will do.
std::string responsesType(const SseEvent& e, const Json* data) {
  if (!e.event.empty()) return e.event;
  if (data)
    if (auto t = stringMember(*data, "type")) return *t;
  return {};
}

bool isLifecycle(std::string_view type) {
  return type == "response.created" || type == "response.queued" ||
         type == "response.in_progress" || type == "response.completed" ||
         type == "response.failed" || type == "response.incomplete";
}

bool responsesCompleted(const std::vector<SseEvent>& events) {
  bool completed = false;
  for (const SseEvent& e : events) {
    if (trim(e.data).empty()) continue;
    auto data = parseJson(e.data);
    if (!data || !data->isObject()) return false;
    const std::string type = responsesType(e, &*data);
    if (type == "error" || type == "response.failed" || type == "response.incomplete") return false;
    if (type == "response.completed") {
      const Json* r = data->find("response");
      if (!r || !r->isObject()) return false;
      auto status = stringMember(*r, "status");
      completed = status && *status == "completed";
    }
  }
  return completed;
}

Result<Json> assembleResponses(const std::vector<SseEvent>& events) {
  std::optional<Json> response;       // the last lifecycle event's response
  std::map<int64_t, Json> doneItems;  // output_item.done, by output_index
  for (size_t i = 0; i < events.size(); ++i) {
    const SseEvent& e = events[i];
    if (trim(e.data).empty()) continue;
    const std::string where = "event " + std::to_string(i);
    auto data = parseJson(e.data);
    if (!data) return invalid(where + ": " + data.error().message);
    if (!data->isObject()) return invalid(where + " is not an object");
    const std::string type = responsesType(e, &*data);
    if (type == "error") {
      const Json* err = nonNull(data->find("error"));
      return invalid("the stream carries an error: " + errorText(err ? *err : *data));
    }
    if (isLifecycle(type)) {
      const Json* r = data->find("response");
      if (!r || !r->isObject()) return invalid(where + ": " + type + " without a response");
      response = *r;
      continue;
    }
    if (type == "response.output_item.done") {
      const Json* item = data->find("item");
      auto index = data->getInt("output_index");
      if (!item || !item->isObject() || !index)
        return invalid(where + ": output_item.done without an item and its output_index");
      doneItems[*index] = *item;
    }
    // Deltas add up to what output_item.done and response.completed carry whole.
  }
  if (!response) return invalid("the stream has no response lifecycle event");
  // A final response without its output (some servers leave it to the items): the items.
  if (const Json* output = response->find("output"); !output || !output->isArray()) {
    Json list = Json::array();
    for (auto& [index, item] : doneItems) list.push(std::move(item));
    response->set("output", std::move(list));
  }
  return std::move(*response);
}

std::vector<SseEvent> synthesizeResponses(const Json& response) {
  std::vector<SseEvent> out;
  int64_t sequence = 0;
  auto emit = [&](std::string name, Json data) {
    Json full = Json::object().set("type", Json::string(name));
    full.set("sequence_number", Json::integer(sequence++));
    for (size_t k = 0; k < data.keys().size(); ++k) full.set(data.keys()[k], data.items()[k]);
    out.push_back(namedEvent(std::move(name), full));
  };

  // The response as it looked when it started: in progress, no output, no usage yet.
  Json start = response.isObject() ? response : Json::object();
  start.set("status", Json::string("in_progress"));
  start.set("output", Json::array());
  if (start.find("usage")) start.set("usage", Json::null());
  if (start.find("completed_at")) start.set("completed_at", Json::null());
  emit("response.created", Json::object().set("response", start));
  emit("response.in_progress", Json::object().set("response", start));

  const Json* output = member(response, "output");
  const size_t n = output && output->isArray() ? output->size() : 0;
  for (size_t i = 0; i < n; ++i) {
    const Json& item = output->items()[i];
    const Json index = Json::integer(static_cast<int64_t>(i));
    const Json itemId = copyOrNull(member(item, "id"));
    const OwnedText type = stringMember(item, "type");
    Json head = item;
    if (member(item, "status")) head.set("status", Json::string("in_progress"));
    auto located = [&](Json data) {  // item_id, output_index first, as OpenAI writes them
      Json j = Json::object().set("item_id", itemId).set("output_index", index);
      for (size_t k = 0; k < data.keys().size(); ++k) j.set(data.keys()[k], data.items()[k]);
      return j;
    };
    if (type && *type == "message") {
      head.set("content", Json::array());
      emit("response.output_item.added",
           Json::object().set("output_index", index).set("item", head));
      const Json* content = member(item, "content");
      const size_t parts = content && content->isArray() ? content->size() : 0;
      for (size_t c = 0; c < parts; ++c) {
        const Json& part = content->items()[c];
        const Json ci = Json::integer(static_cast<int64_t>(c));
        const OwnedText partType = stringMember(part, "type");
        Json partHead = part;
        const bool text = partType && *partType == "output_text";
        const bool refusal = partType && *partType == "refusal";
        if (text) partHead.set("text", Json::string(""));
        if (refusal) partHead.set("refusal", Json::string(""));
        emit("response.content_part.added",
             located(Json::object().set("content_index", ci).set("part", partHead)));
        if (text) {
          const OwnedText t = stringMember(part, "text");
          const Json logprobs = copyOrNull(nonNull(member(part, "logprobs")));
          const Json lp = logprobs.isNull() ? Json::array() : logprobs;
          if (t && !t->empty())
            emit("response.output_text.delta", located(Json::object()
                                                           .set("content_index", ci)
                                                           .set("delta", Json::string(*t))
                                                           .set("logprobs", lp)));
          emit("response.output_text.done", located(Json::object()
                                                        .set("content_index", ci)
                                                        .set("text", Json::string(t ? *t : ""))
                                                        .set("logprobs", lp)));
        } else if (refusal) {
          const OwnedText r = stringMember(part, "refusal");
          if (r && !r->empty())
            emit("response.refusal.delta",
                 located(Json::object().set("content_index", ci).set("delta", Json::string(*r))));
          emit("response.refusal.done", located(Json::object()
                                                    .set("content_index", ci)
                                                    .set("refusal", Json::string(r ? *r : ""))));
        }
        emit("response.content_part.done",
             located(Json::object().set("content_index", ci).set("part", part)));
      }
    } else if (type && *type == "function_call") {
      head.set("arguments", Json::string(""));
      emit("response.output_item.added",
           Json::object().set("output_index", index).set("item", head));
      const OwnedText args = stringMember(item, "arguments");
      if (args && !args->empty())
        emit("response.function_call_arguments.delta",
             located(Json::object().set("delta", Json::string(*args))));
      emit("response.function_call_arguments.done",
           located(Json::object().set("arguments", Json::string(args ? *args : ""))));
    } else if (type && *type == "reasoning" && member(item, "summary") &&
               member(item, "summary")->isArray()) {
      head.set("summary", Json::array());
      emit("response.output_item.added",
           Json::object().set("output_index", index).set("item", head));
      const Json& summary = *member(item, "summary");
      for (size_t c = 0; c < summary.size(); ++c) {
        const Json& part = summary.items()[c];
        const Json si = Json::integer(static_cast<int64_t>(c));
        const OwnedText t = stringMember(part, "text");
        Json partHead = part;
        if (t) partHead.set("text", Json::string(""));
        emit("response.reasoning_summary_part.added",
             located(Json::object().set("summary_index", si).set("part", partHead)));
        if (t && !t->empty())
          emit("response.reasoning_summary_text.delta",
               located(Json::object().set("summary_index", si).set("delta", Json::string(*t))));
        if (t)
          emit("response.reasoning_summary_text.done",
               located(Json::object().set("summary_index", si).set("text", Json::string(*t))));
        emit("response.reasoning_summary_part.done",
             located(Json::object().set("summary_index", si).set("part", part)));
      }
    } else {
      // Tool calls of the built-in tools, images, ...: whole in their added and done events.
      emit("response.output_item.added",
           Json::object().set("output_index", index).set("item", head));
    }
    emit("response.output_item.done", Json::object().set("output_index", index).set("item", item));
  }
  emit("response.completed", Json::object().set("response", response));
  return out;
}

}  // namespace

bool streamCompleted(Endpoint endpoint, const std::vector<SseEvent>& events) {
  switch (endpoint) {
    case Endpoint::OpenAiChat:
    case Endpoint::OpenAiCompletions:
      return openAiCompleted(events);
    case Endpoint::AnthropicMessages:
      return anthropicCompleted(events);
    case Endpoint::OpenAiResponses:
      return responsesCompleted(events);
    case Endpoint::OpenAiEmbeddings:
      return false;
  }
  return false;
}

Result<Json> assembleStream(Endpoint endpoint, const std::vector<SseEvent>& events) {
  switch (endpoint) {
    case Endpoint::OpenAiChat:
    case Endpoint::OpenAiCompletions:
      return assembleOpenAi(endpoint, events);
    case Endpoint::AnthropicMessages:
      return assembleAnthropic(events);
    case Endpoint::OpenAiResponses:
      return assembleResponses(events);
    case Endpoint::OpenAiEmbeddings:
      break;
  }
  return invalid("embeddings are never streamed");
}

std::vector<SseEvent> synthesizeStream(Endpoint endpoint, const Json& response) {
  switch (endpoint) {
    case Endpoint::OpenAiChat:
    case Endpoint::OpenAiCompletions:
      return synthesizeOpenAi(endpoint, response);
    case Endpoint::AnthropicMessages:
      return synthesizeAnthropic(response);
    case Endpoint::OpenAiResponses:
      return synthesizeResponses(response);
    case Endpoint::OpenAiEmbeddings:
      break;
  }
  return {};
}

bool isUsageOnlyChunk(const SseEvent& e) {
  // Cheap first: only a chunk that names usage (and at its end, where OpenAI writes it) is parsed.
  if (e.data.empty() || e.data.front() != '{' || e.data.find("\"usage\"") == std::string::npos)
    return false;
  auto chunk = parseJson(e.data);
  if (!chunk || !chunk->isObject()) return false;
  const Json* choices = chunk->find("choices");
  const Json* usage = chunk->find("usage");
  return choices && choices->isArray() && choices->size() == 0 && usage && usage->isObject();
}

std::optional<std::string> askForStreamUsage(Endpoint endpoint, std::string_view body) {
  if (endpoint != Endpoint::OpenAiChat && endpoint != Endpoint::OpenAiCompletions)
    return std::nullopt;
  auto parsed = parseJson(body);
  if (!parsed || !parsed->isObject()) return std::nullopt;
  const Json* options = parsed->find("stream_options");
  if (options && !options->isObject() && !options->isNull()) return std::nullopt;  // theirs
  if (options && options->getBool("include_usage") == std::optional<bool>(true))
    return std::nullopt;
  Json merged = options && options->isObject() ? *options : Json::object();
  merged.set("include_usage", Json::boolean(true));
  parsed->set("stream_options", std::move(merged));
  return toJson(*parsed);
}

std::vector<SseEvent> fitUsageToRequest(Endpoint endpoint, std::vector<SseEvent> events,
                                        bool includeUsage, const Json& assembled) {
  if (endpoint != Endpoint::OpenAiChat && endpoint != Endpoint::OpenAiCompletions) return events;
  const auto isUsageOnly = isUsageOnlyChunk;
  const bool hasUsage = std::any_of(events.begin(), events.end(), isUsageOnly);
  if (!includeUsage) {
    if (hasUsage) std::erase_if(events, isUsageOnly);
    return events;
  }
  const Json* usage = assembled.find("usage");
  if (hasUsage || !usage || !usage->isObject()) return events;
  Json chunk = Json::object();
  for (const char* k : {"id", "object", "created", "model", "system_fingerprint"}) {
    if (const Json* v = assembled.find(k)) chunk.set(k, *v);
  }
  chunk.set("object", Json::string(endpoint == Endpoint::OpenAiChat ? "chat.completion.chunk"
                                                                    : "text_completion"));
  chunk.set("choices", Json::array());
  chunk.set("usage", *usage);
  auto done = std::find_if(events.begin(), events.end(),
                           [](const SseEvent& e) { return e.data == "[DONE]"; });
  events.insert(done, SseEvent{"", toJson(chunk)});
  return events;
}

}  // namespace llmcache::api
