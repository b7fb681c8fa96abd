#pragma once
// Helpers shared by the api tests.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <string>
#include <string_view>
#include <vector>

#include "common/json.h"

namespace llmcache::api::testing {

inline Json json(std::string_view text) {
  auto j = parseJson(text);
  EXPECT_TRUE(j) << (j ? "" : j.error().message) << "\n" << text;
  return j ? *j : Json{};
}

// The same document with every object's members sorted: for comparisons that must not depend
// on member order.
inline Json sorted(const Json& j) {
  if (j.isArray()) {
    Json out = Json::array();
    for (const Json& item : j.items()) out.push(sorted(item));
    return out;
  }
  if (!j.isObject()) return j;
  std::vector<size_t> order(j.keys().size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return j.keys()[a] < j.keys()[b]; });
  Json out = Json::object();
  for (size_t i : order) out.set(j.keys()[i], sorted(j.items()[i]));
  return out;
}

inline std::string canonical(const Json& j) { return toJson(sorted(j)); }

}  // namespace llmcache::api::testing
