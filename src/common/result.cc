#include "common/result.h"

#include <stdexcept>

namespace llmcache {
[[noreturn]] void throwError(const Error& e) { throw std::runtime_error(e.message); }
}  // namespace llmcache
