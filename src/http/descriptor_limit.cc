#include "http/descriptor_limit.h"

#include <sys/resource.h>

#include <algorithm>
#include <fstream>
#include <limits>

namespace llmcache::http {

namespace {
uint64_t asCount(rlim_t v) {
  return v == RLIM_INFINITY ? std::numeric_limits<uint64_t>::max() : static_cast<uint64_t>(v);
}
}  // namespace

uint64_t descriptorLimit() {
  rlimit r{};
  if (::getrlimit(RLIMIT_NOFILE, &r) != 0) return 1024;
  return asCount(r.rlim_cur);
}

uint64_t raiseDescriptorLimit() {
  rlimit r{};
  if (::getrlimit(RLIMIT_NOFILE, &r) != 0) return 1024;
  if (r.rlim_cur != RLIM_INFINITY && (r.rlim_max == RLIM_INFINITY || r.rlim_cur < r.rlim_max)) {
    rlim_t target = r.rlim_max;
    // No process may have more than fs.nr_open descriptors: an infinite hard limit (or one above
    // nr_open) cannot be the soft one.
    uint64_t nrOpen = 0;
    if (std::ifstream in("/proc/sys/fs/nr_open"); in >> nrOpen && nrOpen > 0) {
      if (target == RLIM_INFINITY || static_cast<uint64_t>(target) > nrOpen)
        target = static_cast<rlim_t>(nrOpen);
    } else if (target == RLIM_INFINITY) {
      target = 1 << 20;
    }
    if (target > r.rlim_cur) {
      rlimit raised = r;
      raised.rlim_cur = target;
      if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) r = raised;
    }
  }
  return asCount(r.rlim_cur);
}

ConnectionLimit connectionLimit(uint64_t requested, uint64_t descriptors) {
  const uint64_t reserve = std::min(std::max<uint64_t>(descriptors / 4, 256), descriptors / 2);
  ConnectionLimit out;
  out.ceiling = std::max<uint64_t>(descriptors - reserve, 1);
  if (requested == 0) {
    out.connections = std::min(kDefaultMaxConnections, out.ceiling);
  } else if (requested > out.ceiling) {
    out.connections = out.ceiling;
    out.clamped = true;
  } else {
    out.connections = requested;
  }
  return out;
}

}  // namespace llmcache::http
