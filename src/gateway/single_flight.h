#pragma once
// SingleFlight: concurrent identical misses make one upstream call. The first request for a
// key leads; the others wait for the leader's result. Thread-safe; waiting is a coroutine
// suspension on the waiter's own executor, never a blocked thread.
//
// A flight also carries a `Shared` object that its leader and followers use while it runs (the
// gateway's StreamLog: a streamed answer's events, live), and counts its followers, so that a
// leader whose own client went away knows whether anyone still wants the answer.
#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <variant>
#include <vector>

namespace llmcache::gateway {

namespace net = boost::asio;

template <class Result, class Shared = std::monostate>
class SingleFlight {
 public:
  using ResultPtr = std::shared_ptr<const Result>;

  class Flight;

  // Either leadership of a new flight (leader() true: call upstream, then complete()), or a
  // place in an existing one (await wait()).
  struct Ticket {
    std::shared_ptr<Flight> flight;
    bool leads = false;
  };

  class Flight {
   public:
    // Suspends until the leader completes; returns its result.
    net::awaitable<ResultPtr> wait() {
      auto ex = co_await net::this_coro::executor;
      auto channel = std::make_shared<Channel>(ex, 1);
      {
        std::lock_guard lock(mutex_);
        if (result_) co_return result_;
        waiters_.push_back(channel);
      }
      auto [ec, result] = co_await channel->async_receive(net::as_tuple(net::use_awaitable));
      co_return result;
    }

    // What the leader and the followers share while the flight runs; lives as long as any of
    // them holds it (a follower may still be reading it after the flight completed).
    const std::shared_ptr<Shared>& shared() const { return shared_; }

    // Requests that joined this flight as followers and have not left it (leave()).
    int followers() const { return followers_.load(std::memory_order_acquire); }
    // A follower is done with the flight (answered, gone, or calling upstream itself).
    void leave() { followers_.fetch_sub(1, std::memory_order_acq_rel); }

   private:
    friend class SingleFlight;
    using Channel =
        net::experimental::concurrent_channel<void(boost::system::error_code, ResultPtr)>;
    std::mutex mutex_;
    ResultPtr result_;
    std::vector<std::shared_ptr<Channel>> waiters_;
    const std::shared_ptr<Shared> shared_ = std::make_shared<Shared>();
    std::atomic<int> followers_{0};
  };

  // A follower's ticket counts it in Flight::followers() until it calls Flight::leave().
  Ticket join(const std::string& key) {
    std::lock_guard lock(mutex_);
    auto it = flights_.find(key);
    if (it != flights_.end()) {
      it->second->followers_.fetch_add(1, std::memory_order_acq_rel);
      return Ticket{it->second, false};
    }
    auto flight = std::make_shared<Flight>();
    flights_.emplace(key, flight);
    return Ticket{flight, true};
  }

  // The leader's result goes to every waiter; later requests for the key start a new flight.
  // Must be called exactly once by the leader, whatever happened (an error is a result too).
  void complete(const std::string& key, const std::shared_ptr<Flight>& flight, ResultPtr result) {
    {
      std::lock_guard lock(mutex_);
      auto it = flights_.find(key);
      if (it != flights_.end() && it->second == flight) flights_.erase(it);
    }
    std::vector<std::shared_ptr<typename Flight::Channel>> waiters;
    {
      std::lock_guard lock(flight->mutex_);
      flight->result_ = result;
      waiters.swap(flight->waiters_);
    }
    for (auto& w : waiters) w->try_send(boost::system::error_code{}, result);
  }

  size_t inFlight() const {
    std::lock_guard lock(mutex_);
    return flights_.size();
  }

 private:
  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::shared_ptr<Flight>> flights_;
};

}  // namespace llmcache::gateway
