#include "gateway/stream_log.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

namespace llmcache::gateway {
namespace {

SseEvent ev(std::string data) { return SseEvent{"", std::move(data)}; }

http::Fields head() {
  http::Fields f;
  f.set("x-llmcache-status", "COALESCED");
  return f;
}

// Reads the log to its end on `io` (one reader), collecting the bytes of the pieces it gets.
struct Collector {
  std::string bytes;
  size_t pieces = 0;
  StreamLog::Snapshot last;
  bool done = false;
};

net::awaitable<void> readAll(std::shared_ptr<StreamLog> log, Collector& c, bool withUsage) {
  StreamLog::Reader reader(log, co_await net::this_coro::executor);
  for (;;) {
    StreamLog::Snapshot s = co_await reader.next(c.pieces);
    for (const auto& p : s.pieces)
      if (withUsage || !p->usageOnly) c.bytes += p->bytes;
    c.pieces += s.pieces.size();
    if (s.pieces.empty() || s.state != StreamLog::State::Streaming) {
      if (s.state == StreamLog::State::Streaming) continue;
      if (!s.pieces.empty()) continue;  // Ended with pieces: once more for the end itself
      c.last = std::move(s);
      c.done = true;
      co_return;
    }
  }
}

TEST(StreamLogTest, AReaderGetsThePrefixAtOnceThenEachEventAsItIsAppended) {
  auto log = std::make_shared<StreamLog>();
  log->begin(head(), true);
  log->append(ev("one"), false);
  log->append(ev("two"), false);
  net::io_context io;
  Collector c;
  net::co_spawn(io, readAll(log, c, true), net::detached);
  io.poll();
  EXPECT_EQ(c.bytes, "data: one\n\ndata: two\n\n");  // the recorded prefix, before any more
  EXPECT_FALSE(c.done);
  log->append(ev("three"), false);
  io.poll();
  EXPECT_EQ(c.pieces, 3u);
  EXPECT_FALSE(c.done);
  auto entry = std::make_shared<cache::Entry>();
  log->finish(entry);
  io.poll();
  ASSERT_TRUE(c.done);
  EXPECT_EQ(c.last.state, StreamLog::State::Ended);
  EXPECT_EQ(c.last.entry, entry);
  EXPECT_EQ(log->readers(), 0u);  // the reader unregistered when it ended
}

TEST(StreamLogTest, UsageOnlyPiecesAreMarkedForTheReaderToSkip) {
  auto log = std::make_shared<StreamLog>();
  log->begin(head(), true);
  log->append(ev("a"), false);
  log->append(ev("usage"), true);
  log->append(ev("[DONE]"), false);
  log->finish(std::make_shared<cache::Entry>());
  net::io_context io;
  Collector with, without;
  net::co_spawn(io, readAll(log, with, true), net::detached);
  net::co_spawn(io, readAll(log, without, false), net::detached);
  io.run();
  EXPECT_EQ(with.bytes, "data: a\n\ndata: usage\n\ndata: [DONE]\n\n");
  EXPECT_EQ(without.bytes, "data: a\n\ndata: [DONE]\n\n");
  EXPECT_EQ(with.pieces, without.pieces);  // positions are the entry's event indexes
}

TEST(StreamLogTest, AFailedStreamEndsWithoutAnEntry) {
  auto log = std::make_shared<StreamLog>();
  log->begin(head(), true);
  log->append(ev("a"), false);
  log->finish(nullptr);
  log->finish(std::make_shared<cache::Entry>());  // once: later calls change nothing
  net::io_context io;
  Collector c;
  net::co_spawn(io, readAll(log, c, true), net::detached);
  io.run();
  ASSERT_TRUE(c.done);
  EXPECT_EQ(c.pieces, 1u);
  EXPECT_EQ(c.last.entry, nullptr);
}

TEST(StreamLogTest, AnAnswerThatIsNotAStreamIsToldAtOnceAndNothingIsRecorded) {
  auto log = std::make_shared<StreamLog>();
  net::io_context io;
  Collector c;
  net::co_spawn(io, readAll(log, c, true), net::detached);
  io.poll();
  EXPECT_FALSE(c.done);  // waiting for the leader's head
  log->notAStream();
  log->begin(head(), true);  // too late: ignored
  log->append(ev("a"), false);
  io.poll();
  ASSERT_TRUE(c.done);
  EXPECT_EQ(c.last.state, StreamLog::State::NotAStream);
  EXPECT_EQ(c.pieces, 0u);
}

TEST(StreamLogTest, PastItsBoundTheLogDropsItsPiecesAndReadersWaitForTheEnd) {
  auto log = std::make_shared<StreamLog>(40);
  log->begin(head(), true);
  log->append(ev("0123456789"), false);  // 18 bytes formatted
  net::io_context io;
  Collector c;
  net::co_spawn(io, readAll(log, c, true), net::detached);
  io.poll();
  EXPECT_EQ(c.pieces, 1u);
  log->append(ev("0123456789"), false);
  log->append(ev("0123456789"), false);  // 54 > 40: overflows
  EXPECT_EQ(log->bytes(), 0u);
  io.poll();
  EXPECT_EQ(c.pieces, 1u);  // nothing more live
  EXPECT_FALSE(c.done);
  log->finish(std::make_shared<cache::Entry>());
  io.poll();
  ASSERT_TRUE(c.done);
  EXPECT_TRUE(c.last.overflowed);
  EXPECT_NE(c.last.entry, nullptr);  // the reader continues from the entry at its position
}

TEST(StreamLogTest, ReadersOnOtherThreadsGetEveryPieceInOrder) {
  auto log = std::make_shared<StreamLog>();
  log->begin(head(), true);
  constexpr int kReaders = 4, kEvents = 2000;
  std::vector<std::unique_ptr<net::io_context>> ios;
  std::vector<Collector> collectors(kReaders);
  std::vector<std::thread> threads;
  for (int i = 0; i < kReaders; ++i) {
    ios.push_back(std::make_unique<net::io_context>());
    net::co_spawn(*ios.back(), readAll(log, collectors[i], true), net::detached);
  }
  for (int i = 0; i < kReaders; ++i) threads.emplace_back([&, i] { ios[i]->run(); });
  std::string expected;
  for (int i = 0; i < kEvents; ++i) {
    log->append(ev(std::to_string(i)), false);
    expected += "data: " + std::to_string(i) + "\n\n";
  }
  log->finish(std::make_shared<cache::Entry>());
  for (auto& t : threads) t.join();
  for (const auto& c : collectors) {
    EXPECT_TRUE(c.done);
    EXPECT_EQ(c.bytes, expected);
  }
}

}  // namespace
}  // namespace llmcache::gateway
