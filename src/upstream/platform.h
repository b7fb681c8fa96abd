#pragma once
// Platforms: the named upstream APIs the gateway routes to (`/{platform}/v1/...`).
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace llmcache::upstream {

struct Platform {
  std::string name;     // [a-z0-9_-]+
  std::string baseUrl;  // the API root including /v1, no trailing slash: https://api.openai.com/v1
  friend bool operator==(const Platform&, const Platform&) = default;
};

// Names that would collide with the gateway's own routes (/v1/..., /cache/..., /metrics, ...).
bool isReservedPlatformName(std::string_view name);
// [a-z0-9_-]+, at most 64 characters, and not reserved.
bool isValidPlatformName(std::string_view name);

// Built-in platforms plus configured ones. Not thread-safe for add(); const use is.
class PlatformTable {
 public:
  // Starts with the built-ins: openai, openrouter, anthropic, groq.
  PlatformTable();

  // Adds or replaces (a configured platform overrides a built-in of the same name). A trailing
  // '/' on the URL is dropped. Validation is parsePlatforms()'s job.
  void add(Platform platform);
  // nullptr when there is no such platform. The pointer stays valid until the table is destroyed
  // (a later add() of the same name changes the pointee).
  const Platform* find(std::string_view name) const;
  // All platforms, ordered by name.
  std::vector<Platform> all() const;

 private:
  std::map<std::string, Platform, std::less<>> platforms_;
};

// The built-ins plus a configuration string "name=url,name2=url2" (spaces around entries are
// ignored; an empty string means built-ins only). InvalidArgument names the offending entry:
// a bad or reserved name, a URL that is not http:// or https:// with a host, a duplicate name.
Result<PlatformTable> parsePlatforms(std::string_view spec);

}  // namespace llmcache::upstream
