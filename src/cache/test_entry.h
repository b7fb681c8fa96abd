#pragma once
// Test helper: a complete, realistic entry whose every field survives encoding exactly (times
// in whole milliseconds, numbers spelled as Json writes them).
#include <string>

#include "cache/entry.h"

namespace llmcache::cache::test {

inline Entry makeTestEntry(std::string cacheKey, std::string content = "Hello!",
                           std::string requestHash = "0123456789abcdef0123456789abcdef") {
  Entry e;
  e.cacheId = newCacheId();
  e.cacheKey = std::move(cacheKey);
  e.requestHash = std::move(requestHash);
  e.endpoint = "openai.chat";
  e.request =
      R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hi"}],"temperature":0.0})";
  Json message = Json::object();
  message.set("role", Json::string("assistant")).set("content", Json::string(std::move(content)));
  Json choice = Json::object();
  choice.set("index", Json::integer(0)).set("message", std::move(message));
  Json choices = Json::array();
  choices.push(std::move(choice));
  Json response = Json::object();
  response.set("id", Json::string("chatcmpl-1")).set("choices", std::move(choices));
  e.response = toJson(response);
  e.requestTimestamp = fromUnixMillis(1767225600123);
  e.responseTimestamp = fromUnixMillis(1767225600456);
  e.status = 200;
  e.model = "gpt-4o-mini";
  e.platform = "openai";
  e.provider = "";
  e.tokensInput = 12;
  e.tokensOutput = 3;
  e.costInput = 1.8e-6;
  e.costOutput = 1.8e-6;
  e.costTotal = 3.6e-6;
  e.latencyMs = 333;
  e.hitCount = 0;
  e.lastAccessed = e.responseTimestamp;
  e.tags = {"team-a", "prod"};
  e.cacheNamespace = "tenant-1";
  return e;
}

}  // namespace llmcache::cache::test
