#pragma once
// offload(pool, f): runs a blocking call on a thread pool and resumes the calling coroutine on
// its own executor afterwards, so a request thread never blocks on SQLite, S3 or a disk fsync.
#include <boost/asio.hpp>
#include <type_traits>
#include <utility>

namespace llmcache {

// No lambda temporary may share a full expression with a co_await: GCC 12 destroys such a
// temporary twice (a double free, seen here). Hence the named `run` and `op`, here and at the
// call sites (`auto job = offload(...); co_await std::move(job);`).
template <class F>
boost::asio::awaitable<std::invoke_result_t<F&>> offload(boost::asio::thread_pool& pool, F f) {
  using R = std::invoke_result_t<F&>;
  auto run = [f = std::move(f)]() mutable -> boost::asio::awaitable<R> { co_return f(); };
  auto op = boost::asio::co_spawn(pool.get_executor(), std::move(run), boost::asio::use_awaitable);
  co_return co_await std::move(op);
}

}  // namespace llmcache
