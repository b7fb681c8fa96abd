#include "mock/mock_upstream.h"

#include <openssl/evp.h>

#include <atomic>
#include <charconv>
#include <cmath>
#include <cstring>
#include <set>

#include "api/provider.h"
#include "api/sse_parser.h"
#include "api/stream.h"
#include "common/json.h"

namespace llmcache::mock {

namespace net = http::net;
namespace bhttp = http::bhttp;

namespace {

int64_t headerInt(const http::Request& req, std::string_view name, int64_t fallback) {
  auto v = req[name];
  int64_t out = fallback;
  if (!v.empty()) std::from_chars(v.data(), v.data() + v.size(), out);
  return out;
}

net::awaitable<void> sleepFor(std::chrono::milliseconds d) {
  if (d.count() <= 0) co_return;
  net::steady_timer t(co_await net::this_coro::executor, d);
  co_await t.async_wait(net::as_tuple(net::use_awaitable));
}

// The last user turn's text, for answers that visibly depend on the question.
std::string lastUserText(const Json& body) {
  const Json* messages = body.find("messages");
  if (const Json* prompt = body.find("prompt"); prompt && prompt->isString())
    return std::string(prompt->text());
  // The Responses API: input is a string or a list of items (messages among them).
  if (const Json* input = body.find("input")) {
    if (input->isString()) return std::string(input->text());
    if (input->isArray()) messages = input;
  }
  if (!messages || !messages->isArray()) return "";
  for (auto it = messages->items().rbegin(); it != messages->items().rend(); ++it) {
    const Json* content = it->find("content");
    if (!content) continue;
    if (content->isString()) return std::string(content->text());
    if (content->isArray())
      for (const Json& part : content->items())
        if (auto t = part.getString("text")) return std::string(*t);
  }
  return "";
}

int64_t tokenCount(std::string_view s) { return static_cast<int64_t>(s.size() / 4 + 1); }

bool isType(const Json* j, std::string_view type) {
  return j && j->getString("type") == std::optional<std::string_view>(type);
}

// A value that a JSON schema accepts, for structured output and tool arguments: every property
// filled (required or not), one item per array, the first enum value or variant, `text` for
// strings. $ref into the root's $defs/definitions is followed; depth-bounded against cycles.
Json valueForSchema(const Json& schema, const Json& root, std::string_view text, int depth = 0) {
  if (depth > 16 || !schema.isObject()) return Json::string(text);
  if (auto ref = schema.getString("$ref")) {
    for (std::string_view prefix : {"#/$defs/", "#/definitions/"}) {
      if (!ref->starts_with(prefix)) continue;
      const Json* defs = root.find(prefix.substr(2, prefix.size() - 3));
      const Json* def = defs ? defs->find(ref->substr(prefix.size())) : nullptr;
      if (def) return valueForSchema(*def, root, text, depth + 1);
    }
    return Json::string(text);
  }
  if (const Json* c = schema.find("const")) return *c;
  if (const Json* e = schema.find("enum"); e && e->isArray() && e->size() > 0) return e->items()[0];
  for (std::string_view variants : {"anyOf", "oneOf", "allOf"}) {
    const Json* list = schema.find(variants);
    if (!list || !list->isArray() || list->size() == 0) continue;
    for (const Json& v : list->items())  // the first variant that is not just null
      if (!isType(&v, "null")) return valueForSchema(v, root, text, depth + 1);
    return Json::null();
  }
  std::string type;
  if (const Json* t = schema.find("type")) {
    if (t->isString()) type = std::string(t->text());
    if (t->isArray())
      for (const Json& one : t->items())
        if (one.isString() && one.text() != "null") {
          type = std::string(one.text());
          break;
        }
  }
  if (type.empty()) type = schema.find("properties") ? "object" : "string";
  if (type == "object") {
    Json out = Json::object();
    if (const Json* props = schema.find("properties"); props && props->isObject())
      for (size_t i = 0; i < props->keys().size(); ++i)
        out.set(props->keys()[i], valueForSchema(props->items()[i], root, text, depth + 1));
    return out;
  }
  if (type == "array") {
    const Json* items = schema.find("items");
    const auto min = schema.getInt("minItems").value_or(1);
    Json out = Json::array();
    for (int64_t i = 0; i < std::max<int64_t>(min, 1) && i < 8; ++i)
      out.push(items ? valueForSchema(*items, root, text, depth + 1) : Json::string(text));
    return out;
  }
  if (type == "integer" || type == "number")
    return Json::integer(schema.getInt("minimum").value_or(1) > 1 ? *schema.getInt("minimum") : 1);
  if (type == "boolean") return Json::boolean(true);
  if (type == "null") return Json::null();
  return Json::string(text);
}

// The tool to call: the one tool_choice names (OpenAI chat {"type":"function","function":{"name"}},
// Responses {"type":"function","name"}, Anthropic {"type":"tool","name"}), else the first.
const Json& chosenTool(const Json& tools, const Json& req) {
  const Json* choice = req.find("tool_choice");
  std::optional<std::string_view> wanted;
  if (choice && choice->isObject()) {
    wanted = choice->getString("name");
    if (const Json* fn = choice->find("function")) wanted = fn->getString("name");
  }
  for (const Json& t : tools.items()) {
    const Json* fn = t.find("function");
    if (wanted && (fn ? fn->getString("name") : t.getString("name")) == wanted) return t;
  }
  return tools.items()[0];
}

// Tool arguments: what the tool's parameter schema asks for, strings "Paris"; a schema that
// names no properties gets {"city":"Paris"}.
std::string toolArguments(const Json* schema) {
  if (!schema || !schema->find("properties")) return R"({"city":"Paris"})";
  return toJson(valueForSchema(*schema, *schema, "Paris"));
}

// The text of a structured answer: a JSON value of `schema` (json_schema), or an object
// (json_object, or a json_schema without a schema), its strings the plain answer's text.
std::string structuredText(const Json* schema, const std::string& text) {
  if (!schema || !schema->isObject())
    return toJson(Json::object().set("answer", Json::string(text)));
  return toJson(valueForSchema(*schema, *schema, text));
}

// Anthropic's count_tokens: this mock's token estimate over every text of the request.
int64_t countTokens(const Json& j) {
  if (j.isString()) return tokenCount(j.text());
  int64_t n = 0;
  if (j.isArray() || j.isObject())
    for (const Json& item : j.items()) n += countTokens(item);
  return n;
}

std::string base64(const std::string& bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()),
                                static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

// A deterministic bag-of-words embedding (README: Embeddings): lower-cased ASCII word tokens
// ([a-z0-9] runs, bytes >= 0x80 included; everything else separates), each hashed (FNV-1a 64)
// into one of kEmbeddingDim dimensions and counted, then L2-normalized. Texts that share words
// are near: their cosine is the dot product of the word counts over the product of their norms
// (hash collisions aside). A text without words is the zero vector.
constexpr size_t kEmbeddingDim = 256;

std::vector<std::string> wordsOf(std::string_view text) {
  std::vector<std::string> words;
  std::string word;
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c >= 0x80) {
      word.push_back(ch);
    } else if (c >= 'A' && c <= 'Z') {
      word.push_back(static_cast<char>(c + 32));
    } else if (!word.empty()) {
      words.push_back(std::move(word));
      word.clear();
    }
  }
  if (!word.empty()) words.push_back(std::move(word));
  return words;
}

std::vector<float> embed(std::string_view text) {
  std::vector<float> v(kEmbeddingDim, 0.0f);
  for (const std::string& w : wordsOf(text)) {
    uint64_t h = 14695981039346656037ull;
    for (char c : w) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
    v[h % kEmbeddingDim] += 1.0f;
  }
  double sum = 0;
  for (float f : v) sum += static_cast<double>(f) * f;
  if (sum > 0)
    for (float& f : v) f = static_cast<float>(f / std::sqrt(sum));
  return v;
}

// The answer's text. x-mock-answer: topic makes it a function of the question's words alone
// ("Mock answer about: " and its words minus kStopWords, sorted, unique): two questions that
// differ only in stop words get the same answer, others a different one (semantic shadow tests).
std::string answerText(const std::string& question, const std::string& number, bool topic) {
  if (!topic) return "Mock answer #" + number + " to: " + question;
  static const std::set<std::string, std::less<>> kStopWords = {
      "a",     "an",    "the", "of",   "is",   "are",  "was",   "what", "which", "who", "please",
      "tell",  "me",    "i",   "you",  "to",   "in",   "on",    "for",  "and",   "or",  "can",
      "could", "would", "do",  "does", "give", "show", "whats", "know", "my"};
  std::set<std::string> topics;
  for (std::string& w : wordsOf(question))
    if (!kStopWords.contains(w)) topics.insert(std::move(w));
  std::string out = "Mock answer about:";
  for (const std::string& w : topics) out += " " + w;
  return out;
}

Json usageOpenAi(int64_t in, int64_t out) {
  return Json::object()
      .set("prompt_tokens", Json::integer(in))
      .set("completion_tokens", Json::integer(out))
      .set("total_tokens", Json::integer(in + out));
}

Json chatBody(const Json& req, uint64_t n, const std::string& model, bool topic) {
  const std::string question = lastUserText(req);
  Json message = Json::object().set("role", Json::string("assistant"));
  std::string finish = "stop";
  const Json* tools = req.find("tools");
  std::string answer = answerText(question, std::to_string(n), topic);
  if (const Json* format = req.find("response_format")) {
    if (isType(format, "json_schema")) {
      const Json* spec = format->find("json_schema");
      answer = structuredText(spec ? spec->find("schema") : nullptr, answer);
    } else if (isType(format, "json_object")) {
      answer = structuredText(nullptr, answer);
    }
  }
  if (tools && tools->isArray() && tools->size() > 0 &&
      req.getString("tool_choice") != std::optional<std::string_view>("none")) {
    std::string name = "tool";
    const Json* params = nullptr;
    if (const Json* fn = chosenTool(*tools, req).find("function")) {
      if (auto nm = fn->getString("name")) name = std::string(*nm);
      params = fn->find("parameters");
    }
    message.set("content", Json::null());
    message.set(
        "tool_calls",
        Json::array().push(
            Json::object()
                .set("id", Json::string("call_mock_" + std::to_string(n)))
                .set("type", Json::string("function"))
                .set("function", Json::object()
                                     .set("name", Json::string(name))
                                     .set("arguments", Json::string(toolArguments(params))))));
    finish = "tool_calls";
    answer = "";
  } else {
    message.set("content", Json::string(answer));
  }
  message.set("refusal", Json::null());
  return Json::object()
      .set("id", Json::string("chatcmpl-mock-" + std::to_string(n)))
      .set("object", Json::string("chat.completion"))
      .set("created", Json::integer(1767225600 + static_cast<int64_t>(n)))
      .set("model", Json::string(model))
      .set("choices", Json::array().push(Json::object()
                                             .set("index", Json::integer(0))
                                             .set("message", std::move(message))
                                             .set("logprobs", Json::null())
                                             .set("finish_reason", Json::string(finish))))
      .set("usage", usageOpenAi(tokenCount(question), tokenCount(answer)))
      .set("service_tier", Json::string("default"))
      .set("system_fingerprint", Json::string("fp_mock"));
}

Json completionBody(const Json& req, uint64_t n, const std::string& model) {
  const std::string prompt = lastUserText(req);
  const std::string text = " Mock completion #" + std::to_string(n) + " of: " + prompt;
  return Json::object()
      .set("id", Json::string("cmpl-mock-" + std::to_string(n)))
      .set("object", Json::string("text_completion"))
      .set("created", Json::integer(1767225600 + static_cast<int64_t>(n)))
      .set("model", Json::string(model))
      .set("choices", Json::array().push(Json::object()
                                             .set("text", Json::string(text))
                                             .set("index", Json::integer(0))
                                             .set("logprobs", Json::null())
                                             .set("finish_reason", Json::string("stop"))))
      .set("usage", usageOpenAi(tokenCount(prompt), tokenCount(text)));
}

Json embeddingsBody(const Json& req, const std::string& model) {
  std::vector<std::string> inputs;
  if (const Json* in = req.find("input")) {
    if (in->isString())
      inputs.emplace_back(in->text());
    else
      for (const Json& i : in->items())
        inputs.push_back(i.isString() ? std::string(i.text()) : toJson(i));
  }
  const bool b64 = req.getString("encoding_format") == std::optional<std::string_view>("base64");
  Json data = Json::array();
  int64_t tokens = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const auto v = embed(inputs[i]);
    tokens += tokenCount(inputs[i]);
    Json vec;
    if (b64) {
      std::string raw(v.size() * 4, '\0');
      std::memcpy(raw.data(), v.data(), raw.size());  // float32 little-endian, as OpenAI sends
      vec = Json::string(base64(raw));
    } else {
      vec = Json::array();
      for (float f : v) vec.push(Json::number(static_cast<double>(f)));
    }
    data.push(Json::object()
                  .set("object", Json::string("embedding"))
                  .set("index", Json::integer(static_cast<int64_t>(i)))
                  .set("embedding", std::move(vec)));
  }
  return Json::object()
      .set("object", Json::string("list"))
      .set("data", std::move(data))
      .set("model", Json::string(model))
      .set("usage", Json::object()
                        .set("prompt_tokens", Json::integer(tokens))
                        .set("total_tokens", Json::integer(tokens)));
}

Json messagesBody(const Json& req, uint64_t n, const std::string& model, bool topic) {
  const std::string question = lastUserText(req);
  Json content = Json::array();
  std::string stop = "end_turn";
  const Json* tools = req.find("tools");
  std::string text = answerText(question, std::to_string(n), topic);
  const Json* choice = req.find("tool_choice");
  if (tools && tools->isArray() && tools->size() > 0 && !isType(choice, "none")) {
    const Json& tool = chosenTool(*tools, req);
    std::string name(tool.getString("name").value_or("tool"));
    content.push(Json::object()
                     .set("type", Json::string("tool_use"))
                     .set("id", Json::string("toolu_mock_" + std::to_string(n)))
                     .set("name", Json::string(name))
                     .set("input", *parseJson(toolArguments(tool.find("input_schema")))));
    stop = "tool_use";
  } else {
    content.push(Json::object().set("type", Json::string("text")).set("text", Json::string(text)));
  }
  return Json::object()
      .set("id", Json::string("msg_mock_" + std::to_string(n)))
      .set("type", Json::string("message"))
      .set("role", Json::string("assistant"))
      .set("model", Json::string(model))
      .set("content", std::move(content))
      .set("stop_reason", Json::string(stop))
      .set("stop_sequence", Json::null())
      .set("usage", Json::object()
                        .set("input_tokens", Json::integer(tokenCount(question)))
                        .set("output_tokens", Json::integer(tokenCount(text))));
}

// x-request-id: unique per answer, as a provider's (tests check that a hit replays the miss's).
std::atomic<uint64_t> mockRequestIds{0};

// The Responses API's answer: one message (or one function_call when tools are given; a JSON
// object as its text when text.format is a json_schema), as OpenAI writes it.
Json responsesBody(const Json& req, uint64_t n, const std::string& model, bool topic) {
  const std::string question = lastUserText(req);
  const std::string id = std::to_string(n);
  std::string text = answerText(question, id, topic);
  const Json* format = req.find("text") ? req.find("text")->find("format") : nullptr;
  if (isType(format, "json_schema")) text = structuredText(format->find("schema"), text);
  if (isType(format, "json_object")) text = structuredText(nullptr, text);
  Json output = Json::array();
  const Json* tools = req.find("tools");
  std::string outText = text;
  if (tools && tools->isArray() && tools->size() > 0 &&
      req.getString("tool_choice") != std::optional<std::string_view>("none")) {
    const Json& tool = chosenTool(*tools, req);
    const std::string name(tool.getString("name").value_or("tool"));
    outText = toolArguments(tool.find("parameters"));
    output.push(Json::object()
                    .set("id", Json::string("fc_mock_" + id))
                    .set("type", Json::string("function_call"))
                    .set("status", Json::string("completed"))
                    .set("arguments", Json::string(outText))
                    .set("call_id", Json::string("call_mock_" + id))
                    .set("name", Json::string(name)));
  } else {
    output.push(Json::object()
                    .set("id", Json::string("msg_mock_" + id))
                    .set("type", Json::string("message"))
                    .set("status", Json::string("completed"))
                    .set("content", Json::array().push(Json::object()
                                                           .set("type", Json::string("output_text"))
                                                           .set("annotations", Json::array())
                                                           .set("logprobs", Json::array())
                                                           .set("text", Json::string(text))))
                    .set("role", Json::string("assistant")));
  }
  auto echo = [&](std::string_view name, Json fallback) {
    const Json* v = req.find(name);
    return v ? *v : fallback;
  };
  const int64_t in = tokenCount(question), out = tokenCount(outText);
  const int64_t created = 1767225600 + static_cast<int64_t>(n);
  return Json::object()
      .set("id", Json::string("resp_mock_" + id))
      .set("object", Json::string("response"))
      .set("created_at", Json::integer(created))
      .set("status", Json::string("completed"))
      .set("background", Json::boolean(false))
      .set("completed_at", Json::integer(created + 1))
      .set("error", Json::null())
      .set("incomplete_details", Json::null())
      .set("instructions", echo("instructions", Json::null()))
      .set("max_output_tokens", echo("max_output_tokens", Json::null()))
      .set("model", Json::string(model))
      .set("output", std::move(output))
      .set("parallel_tool_calls", echo("parallel_tool_calls", Json::boolean(true)))
      .set("previous_response_id", echo("previous_response_id", Json::null()))
      .set("reasoning", Json::object().set("effort", Json::null()).set("summary", Json::null()))
      .set("store", echo("store", Json::boolean(true)))
      .set("temperature", echo("temperature", Json::number(1.0)))
      .set("text", echo("text", Json::object().set(
                                    "format", Json::object().set("type", Json::string("text")))))
      .set("tool_choice", echo("tool_choice", Json::string("auto")))
      .set("tools", echo("tools", Json::array()))
      .set("top_p", echo("top_p", Json::number(1.0)))
      .set("truncation", echo("truncation", Json::string("disabled")))
      .set("usage",
           Json::object()
               .set("input_tokens", Json::integer(in))
               .set("input_tokens_details", Json::object().set("cached_tokens", Json::integer(0)))
               .set("output_tokens", Json::integer(out))
               .set("output_tokens_details",
                    Json::object().set("reasoning_tokens", Json::integer(0)))
               .set("total_tokens", Json::integer(in + out)))
      .set("user", Json::null())
      .set("metadata", echo("metadata", Json::object()));
}

// The mock's own Responses stream (not api::synthesizeStream's, so that the gateway's tests do
// not check its synthesizer against itself): text in word-sized deltas, each with an
// `obfuscation` padding as OpenAI sends by default, arguments in two pieces. The final event
// is response.completed, or response.incomplete with `incomplete` (x-mock-incomplete).
std::vector<SseEvent> responsesStream(const Json& body, bool incomplete) {
  std::vector<SseEvent> out;
  int64_t seq = 0;
  auto emit = [&](const char* type, Json data) {
    Json j =
        Json::object().set("type", Json::string(type)).set("sequence_number", Json::integer(seq++));
    for (size_t k = 0; k < data.keys().size(); ++k) j.set(data.keys()[k], data.items()[k]);
    out.push_back(SseEvent{type, toJson(j)});
  };
  Json start = body;
  start.set("status", Json::string("in_progress"));
  start.set("completed_at", Json::null());
  start.set("output", Json::array());
  start.set("usage", Json::null());
  emit("response.created", Json::object().set("response", start));
  emit("response.in_progress", Json::object().set("response", start));
  const Json& items = *body.find("output");
  for (size_t i = 0; i < items.size(); ++i) {
    const Json& item = items.items()[i];
    const Json at = Json::integer(static_cast<int64_t>(i));
    const Json itemId = *item.find("id");
    Json added = item;
    added.set("status", Json::string("in_progress"));
    if (item.getString("type") == std::optional<std::string_view>("function_call")) {
      added.set("arguments", Json::string(""));
      emit("response.output_item.added", Json::object().set("output_index", at).set("item", added));
      const std::string args(item.getString("arguments").value_or(""));
      const size_t half = args.size() / 2;
      for (const std::string& piece : {args.substr(0, half), args.substr(half)})
        emit("response.function_call_arguments.delta", Json::object()
                                                           .set("item_id", itemId)
                                                           .set("output_index", at)
                                                           .set("delta", Json::string(piece))
                                                           .set("obfuscation", Json::string("x")));
      emit("response.function_call_arguments.done", Json::object()
                                                        .set("item_id", itemId)
                                                        .set("output_index", at)
                                                        .set("arguments", Json::string(args)));
    } else {
      added.set("content", Json::array());
      emit("response.output_item.added", Json::object().set("output_index", at).set("item", added));
      const Json& part = item.find("content")->items()[0];
      Json emptyPart = part;
      emptyPart.set("text", Json::string(""));
      auto located = [&]() {
        return Json::object()
            .set("item_id", itemId)
            .set("output_index", at)
            .set("content_index", Json::integer(0));
      };
      emit("response.content_part.added", located().set("part", emptyPart));
      const std::string text(part.getString("text").value_or(""));
      for (size_t p = 0; p < text.size();) {
        size_t next = text.find(' ', p);
        next = next == std::string::npos ? text.size() : next + 1;
        emit("response.output_text.delta",
             located()
                 .set("delta", Json::string(text.substr(p, next - p)))
                 .set("logprobs", Json::array())
                 .set("obfuscation", Json::string(std::string(1 + p % 7, 'o'))));
        p = next;
      }
      emit("response.output_text.done",
           located().set("text", Json::string(text)).set("logprobs", Json::array()));
      emit("response.content_part.done", located().set("part", part));
    }
    emit("response.output_item.done", Json::object().set("output_index", at).set("item", item));
  }
  if (incomplete) {
    Json cut = body;
    cut.set("status", Json::string("incomplete"));
    cut.set("incomplete_details", Json::object().set("reason", Json::string("max_output_tokens")));
    emit("response.incomplete", Json::object().set("response", cut));
  } else {
    emit("response.completed", Json::object().set("response", body));
  }
  return out;
}

// Text in word-sized pieces (each ends with its space), as providers stream it.
std::vector<std::string> wordPieces(const std::string& text) {
  std::vector<std::string> out;
  for (size_t p = 0; p < text.size();) {
    size_t next = text.find(' ', p);
    next = next == std::string::npos ? text.size() : next + 1;
    out.push_back(text.substr(p, next - p));
    p = next;
  }
  return out;
}

// The mock's own chat and completions streams, shaped as OpenAI's (not api::synthesizeStream's):
// chat.completion.chunk objects, the role first (content "" or null), content in word-sized
// deltas, a tool call's head then its arguments in two pieces, then an empty delta with the
// finish_reason; with stream_options.include_usage every chunk carries "usage": null and a last
// chunk with no choices carries the usage; every chunk an `obfuscation` padding; then [DONE].
std::vector<SseEvent> openAiStream(key::Endpoint endpoint, const Json& body, bool includeUsage) {
  const bool chat = endpoint == key::Endpoint::OpenAiChat;
  std::vector<SseEvent> out;
  auto emit = [&](Json choices, const Json* usage) {
    Json chunk =
        Json::object()
            .set("id", *body.find("id"))
            .set("object", Json::string(chat ? "chat.completion.chunk" : "text_completion"))
            .set("created", *body.find("created"))
            .set("model", *body.find("model"));
    if (const Json* tier = body.find("service_tier")) chunk.set("service_tier", *tier);
    if (const Json* fp = body.find("system_fingerprint")) chunk.set("system_fingerprint", *fp);
    chunk.set("choices", std::move(choices));
    if (includeUsage) chunk.set("usage", usage ? *usage : Json::null());
    chunk.set("obfuscation", Json::string(std::string(1 + out.size() % 5, 'o')));
    out.push_back(SseEvent{"", toJson(chunk)});
  };
  auto one = [](Json choice) { return Json::array().push(std::move(choice)); };
  const Json& choice = body.find("choices")->items()[0];
  const Json finish = *choice.find("finish_reason");
  if (!chat) {
    auto textChoice = [](std::string text, Json finishReason) {
      return Json::object()
          .set("text", Json::string(std::move(text)))
          .set("index", Json::integer(0))
          .set("logprobs", Json::null())
          .set("finish_reason", std::move(finishReason));
    };
    for (const std::string& piece : wordPieces(std::string(choice.getString("text").value_or(""))))
      emit(one(textChoice(piece, Json::null())), nullptr);
    emit(one(textChoice("", finish)), nullptr);
  } else {
    auto chatChoice = [](Json delta, Json finishReason) {
      return Json::object()
          .set("index", Json::integer(0))
          .set("delta", std::move(delta))
          .set("logprobs", Json::null())
          .set("finish_reason", std::move(finishReason));
    };
    const Json& message = *choice.find("message");
    const Json* calls = message.find("tool_calls");
    emit(one(chatChoice(Json::object()
                            .set("role", Json::string("assistant"))
                            .set("content", calls ? Json::null() : Json::string(""))
                            .set("refusal", Json::null()),
                        Json::null())),
         nullptr);
    for (const std::string& piece :
         wordPieces(std::string(message.getString("content").value_or(""))))
      emit(one(chatChoice(Json::object().set("content", Json::string(piece)), Json::null())),
           nullptr);
    for (size_t t = 0; calls && t < calls->size(); ++t) {
      const Json& call = calls->items()[t];
      const Json& fn = *call.find("function");
      const Json index = Json::integer(static_cast<int64_t>(t));
      Json head =
          Json::object()
              .set("index", index)
              .set("id", *call.find("id"))
              .set("type", Json::string("function"))
              .set("function",
                   Json::object().set("name", *fn.find("name")).set("arguments", Json::string("")));
      emit(one(chatChoice(Json::object().set("tool_calls", Json::array().push(std::move(head))),
                          Json::null())),
           nullptr);
      const std::string args(fn.getString("arguments").value_or(""));
      for (const std::string& piece :
           {args.substr(0, args.size() / 2), args.substr(args.size() / 2)})
        emit(one(chatChoice(Json::object().set(
                                "tool_calls",
                                Json::array().push(
                                    Json::object()
                                        .set("index", index)
                                        .set("function", Json::object().set("arguments",
                                                                            Json::string(piece))))),
                            Json::null())),
             nullptr);
    }
    emit(one(chatChoice(Json::object(), finish)), nullptr);
  }
  if (includeUsage) emit(Json::array(), body.find("usage"));
  out.push_back(SseEvent{"", "[DONE]"});
  return out;
}

// The mock's own Anthropic messages stream, shaped as Anthropic's: message_start (its usage with
// output_tokens 1), per block content_block_start, a ping after the first, text_delta pieces or
// input_json_delta pieces (the first one empty), content_block_stop; message_delta with the
// stop_reason and the output usage; message_stop.
std::vector<SseEvent> messagesStream(const Json& body) {
  std::vector<SseEvent> out;
  auto emit = [&](const char* type, Json data) {
    Json j = Json::object().set("type", Json::string(type));
    for (size_t k = 0; k < data.keys().size(); ++k) j.set(data.keys()[k], data.items()[k]);
    out.push_back(SseEvent{type, toJson(j)});
  };
  const Json& usage = *body.find("usage");
  Json start = body;
  start.set("content", Json::array());
  start.set("stop_reason", Json::null());
  start.set("stop_sequence", Json::null());
  start.set("usage", Json::object()
                         .set("input_tokens", *usage.find("input_tokens"))
                         .set("cache_creation_input_tokens", Json::integer(0))
                         .set("cache_read_input_tokens", Json::integer(0))
                         .set("output_tokens", Json::integer(1)));
  emit("message_start", Json::object().set("message", std::move(start)));
  const Json& blocks = *body.find("content");
  for (size_t i = 0; i < blocks.size(); ++i) {
    const Json& block = blocks.items()[i];
    const Json index = Json::integer(static_cast<int64_t>(i));
    auto delta = [&](Json d) {
      emit("content_block_delta", Json::object().set("index", index).set("delta", std::move(d)));
    };
    Json head = block;
    if (isType(&block, "tool_use")) {
      head.set("input", Json::object());
      emit("content_block_start", Json::object().set("index", index).set("content_block", head));
      if (i == 0) emit("ping", Json::object());
      const std::string input = toJson(*block.find("input"));
      for (const std::string& piece :
           {std::string(), input.substr(0, input.size() / 2), input.substr(input.size() / 2)})
        delta(Json::object()
                  .set("type", Json::string("input_json_delta"))
                  .set("partial_json", Json::string(piece)));
    } else {
      head.set("text", Json::string(""));
      emit("content_block_start", Json::object().set("index", index).set("content_block", head));
      if (i == 0) emit("ping", Json::object());
      for (const std::string& piece : wordPieces(std::string(block.getString("text").value_or(""))))
        delta(Json::object()
                  .set("type", Json::string("text_delta"))
                  .set("text", Json::string(piece)));
    }
    emit("content_block_stop", Json::object().set("index", index));
  }
  emit("message_delta",
       Json::object()
           .set("delta", Json::object()
                             .set("stop_reason", *body.find("stop_reason"))
                             .set("stop_sequence", Json::null()))
           .set("usage", Json::object().set("output_tokens", *usage.find("output_tokens"))));
  emit("message_stop", Json::object());
  return out;
}

http::Response jsonResponse(bhttp::status status, unsigned version, std::string body) {
  http::Response res{status, version};
  res.set(bhttp::field::content_type, "application/json");
  res.set("x-request-id", "req_mock_" + std::to_string(mockRequestIds.fetch_add(1) + 1));
  res.body() = std::move(body);
  return res;
}

}  // namespace

net::awaitable<void> MockUpstream::handle(http::Request& req, http::ResponseWriter& w) {
  std::string path(req.target().substr(0, req.target().find('?')));
  if (path == "/mock/stats") {
    std::lock_guard lock(mutex_);
    Json paths = Json::object();
    for (const auto& [p, c] : byPath_) paths.set(p, Json::integer(static_cast<int64_t>(c)));
    co_await w.send(jsonResponse(
        bhttp::status::ok, req.version(),
        toJson(Json::object()
                   .set("calls", Json::integer(static_cast<int64_t>(calls_.load())))
                   .set("authorized_calls", Json::integer(static_cast<int64_t>(authorizedCalls_)))
                   .set("paths", std::move(paths)))));
    co_return;
  }
  if (path == "/mock/reset") {
    calls_ = 0;
    std::lock_guard lock(mutex_);
    byPath_.clear();
    authorizedCalls_ = 0;
    co_await w.send(jsonResponse(bhttp::status::ok, req.version(), "{}"));
    co_return;
  }
  const uint64_t n = ++calls_;
  {
    std::lock_guard lock(mutex_);
    ++byPath_[path];
    if (!req[bhttp::field::authorization].empty() || !req["x-api-key"].empty()) ++authorizedCalls_;
  }
  co_await sleepFor(
      std::chrono::milliseconds(headerInt(req, "x-mock-latency-ms", options_.latency.count())));
  const auto endpoint = api::endpointForPath(path);
  const int64_t status = headerInt(req, "x-mock-status", 200);
  if (path == "/v1/messages/count_tokens" && status == 200) {
    auto body = parseJson(req.body());
    int64_t tokens = 0;
    if (body && body->isObject())
      for (std::string_view part : {"system", "messages", "tools"})
        if (const Json* j = body->find(part)) tokens += countTokens(*j);
    co_await w.send(
        jsonResponse(bhttp::status::ok, req.version(),
                     toJson(Json::object().set("input_tokens", Json::integer(tokens)))));
    co_return;
  }
  if (req.method() == bhttp::verb::get && path == "/v1/models") {
    co_await w.send(jsonResponse(
        bhttp::status::ok, req.version(),
        R"({"object":"list","data":[{"id":"mock-model","object":"model","created":0,"owned_by":"mock"}]})"));
    co_return;
  }
  if (!endpoint) {
    co_await w.send(jsonResponse(bhttp::status::not_found, req.version(),
                                 api::errorBody(api::Provider::OpenAi, "not_found_error",
                                                "mock: no such endpoint " + path)));
    co_return;
  }
  const api::Provider provider = api::providerOf(*endpoint);
  // x-mock-status: an error of that status in the provider's shape; a 2xx other than 200 is the
  // normal answer with that status (a 203 from a transforming proxy, a 206). A 429 or 529 says
  // when to come back (retry-after, seconds; x-mock-retry-after, default 1), as both providers do.
  if (status < 200 || status >= 300) {
    http::Response res = jsonResponse(
        static_cast<bhttp::status>(status), req.version(),
        api::errorBody(provider, api::errorTypeForStatus(provider, static_cast<int>(status)),
                       "mock upstream error " + std::to_string(status)));
    if (status == 429 || status == 529) {
      const auto after = req["x-mock-retry-after"];
      res.set("retry-after", after.empty() ? std::string("1") : std::string(after));
    }
    co_await w.send(std::move(res));
    co_return;
  }
  auto body = parseJson(req.body());
  if (!body || !body->isObject()) {
    co_await w.send(
        jsonResponse(bhttp::status::bad_request, req.version(),
                     api::errorBody(provider, "invalid_request_error", "mock: bad JSON")));
    co_return;
  }
  const std::string model(body->getString("model").value_or("mock-model"));
  const bool topic = req["x-mock-answer"] == "topic";
  Json answer;
  switch (*endpoint) {
    case key::Endpoint::OpenAiChat:
      answer = chatBody(*body, n, model, topic);
      break;
    case key::Endpoint::OpenAiCompletions:
      answer = completionBody(*body, n, model);
      break;
    case key::Endpoint::OpenAiEmbeddings:
      answer = embeddingsBody(*body, model);
      break;
    case key::Endpoint::AnthropicMessages:
      answer = messagesBody(*body, n, model, topic);
      break;
    case key::Endpoint::OpenAiResponses:
      answer = responsesBody(*body, n, model, topic);
      break;
  }
  if (body->getBool("stream") != std::optional<bool>(true)) {
    co_await w.send(
        jsonResponse(static_cast<bhttp::status>(status), req.version(), toJson(answer)));
    co_return;
  }
  const Json* streamOptions = body->find("stream_options");
  const bool includeUsage =
      streamOptions && streamOptions->getBool("include_usage") == std::optional<bool>(true);
  std::vector<SseEvent> events;
  switch (*endpoint) {
    case key::Endpoint::OpenAiResponses:
      events = responsesStream(answer, !req["x-mock-incomplete"].empty());
      break;
    case key::Endpoint::AnthropicMessages:
      events = messagesStream(answer);
      break;
    case key::Endpoint::OpenAiChat:
    case key::Endpoint::OpenAiCompletions:
      events = openAiStream(*endpoint, answer, includeUsage);
      break;
    case key::Endpoint::OpenAiEmbeddings:
      co_await w.send(jsonResponse(
          bhttp::status::bad_request, req.version(),
          api::errorBody(provider, "invalid_request_error", "mock: embeddings do not stream")));
      co_return;
  }
  if (!req["x-mock-no-done"].empty() && !events.empty()) events.pop_back();
  const int64_t abortAfter = headerInt(req, "x-mock-abort-after", -1);
  const auto delay = std::chrono::milliseconds(
      headerInt(req, "x-mock-chunk-delay-ms", options_.chunkDelay.count()));
  http::Fields head;
  head.set(bhttp::field::content_type, "text/event-stream");
  head.set(bhttp::field::cache_control, "no-cache");
  head.set("x-request-id", "req_mock_" + std::to_string(mockRequestIds.fetch_add(1) + 1));
  if (!co_await w.beginStream(bhttp::status::ok, head)) co_return;
  for (size_t i = 0; i < events.size(); ++i) {
    if (abortAfter >= 0 && static_cast<int64_t>(i) >= abortAfter)
      throw std::runtime_error("mock: aborting the stream as asked (x-mock-abort-after)");
    if (i > 0) co_await sleepFor(delay);
    if (!co_await w.write(api::formatSse(events[i]))) co_return;
  }
  co_await w.finish();
}

}  // namespace llmcache::mock
