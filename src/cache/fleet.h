#pragma once
// Fleet: what gateways sharing one hot tier (Redis, docs/redis.md) tell each other beyond the
// entries themselves: leases, so that one gateway of the fleet calls the provider for a prompt
// while the others wait for its entry, and invalidations, published at once. Implemented by
// cache::redis::RedisFleet; the gateway uses it through this interface. Blocking calls: never on
// an I/O thread.
#include <chrono>
#include <functional>
#include <memory>
#include <string_view>

#include "common/json.h"

namespace llmcache::cache {

class Fleet {
 public:
  virtual ~Fleet() = default;

  enum class Lease : uint8_t {
    Held,         // this gateway holds the lease (renewed until release()): call the provider
    Taken,        // another gateway holds it: wait for its entry (watch(), maxWait())
    Unavailable,  // the fleet cannot be asked (Redis down): call the provider, no lease
  };
  // Takes the fleet-wide lease on requestHash. Blocking.
  virtual Lease acquire(std::string_view requestHash) = 0;
  // The call that took the lease is over. stored: its answer is being stored (the lease goes
  // once the entry is in the shared tier, or expires); else the lease goes now and the waiters
  // are told to make their own calls (a failure is never handed to them). Blocking.
  virtual void release(std::string_view requestHash, bool stored) = 0;
  // Whether some gateway holds requestHash's lease now. False when it cannot be asked. Blocking.
  virtual bool held(std::string_view requestHash) = 0;
  // Calls notify (on any thread; it must only post) when requestHash's entry is stored or its
  // lease released anywhere in the fleet. Watching ends when the handle is destroyed.
  virtual std::shared_ptr<void> watch(std::string_view requestHash,
                                      std::function<void()> notify) = 0;
  // How long a gateway waits for another's lease before calling the provider itself.
  virtual std::chrono::milliseconds maxWait() const = 0;
  // Publishes an invalidation applied here (the body as POSTed to /cache/invalidate) to the
  // other gateways. Dry runs are not published. Blocking (one short call).
  virtual void publishInvalidation(const Json& requestBody) = 0;
};

}  // namespace llmcache::cache
