#include "common/thread.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace llmcache {

void lowerThreadPriority() {
  // On Linux, setpriority() with a thread id applies to that thread alone.
  const auto tid = static_cast<id_t>(syscall(SYS_gettid));
  (void)setpriority(PRIO_PROCESS, tid, 10);
}

}  // namespace llmcache
