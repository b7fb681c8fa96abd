#include "analytics/event.h"

namespace llmcache::analytics {

bool isCacheable(std::string_view outcome) { return outcome != kBypass && outcome != kInvalid; }

}  // namespace llmcache::analytics
