#include "cache/redis/redis_client.h"

#include <hiredis/hiredis.h>
#include <sys/time.h>

#include <charconv>

namespace llmcache::cache::redis {

namespace {

std::optional<std::string> percentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    int v = 0;
    auto [p, ec] = std::from_chars(s.data() + i + 1, s.data() + i + 3, v, 16);
    if (ec != std::errc{} || p != s.data() + i + 3) return std::nullopt;
    out.push_back(static_cast<char>(v));
    i += 2;
  }
  return out;
}

bool parseInt(std::string_view s, int& out, int lo, int hi) {
  int v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size() || v < lo || v > hi) return false;
  out = v;
  return true;
}

timeval toTimeval(std::chrono::milliseconds ms) {
  return timeval{.tv_sec = static_cast<time_t>(ms.count() / 1000),
                 .tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000)};
}

RedisValue convert(const redisReply* r) {
  RedisValue v;
  switch (r->type) {
    case REDIS_REPLY_STRING:
      v.type = RedisValue::Type::String;
      v.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STATUS:
      v.type = RedisValue::Type::Status;
      v.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_INTEGER:
      v.type = RedisValue::Type::Integer;
      v.integer = r->integer;
      break;
    case REDIS_REPLY_ARRAY:
      v.type = RedisValue::Type::Array;
      v.elements.reserve(r->elements);
      for (size_t i = 0; i < r->elements; ++i) v.elements.push_back(convert(r->element[i]));
      break;
    default:
      v.type = RedisValue::Type::Nil;
  }
  return v;
}

struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;

}  // namespace

std::string RedisUrl::display() const {
  return host + ":" + std::to_string(port) + "/" + std::to_string(db);
}

Result<RedisUrl> parseRedisUrl(std::string_view url) {
  auto bad = [](std::string what) {
    return makeError(Errc::InvalidArgument, "CACHE_REDIS_URL: " + std::move(what));
  };
  if (url.starts_with("rediss://"))
    return bad(
        "rediss:// (TLS) is not supported: Debian 12's hiredis 0.14 has no TLS. Reach Redis over "
        "a private network or a TLS tunnel (stunnel, spiped) and use redis://");
  if (!url.starts_with("redis://")) return bad("must start with redis://");
  std::string_view rest = url.substr(8);
  RedisUrl out;
  std::string_view query;
  if (auto q = rest.find('?'); q != std::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  std::string_view path;
  if (auto slash = rest.find('/'); slash != std::string_view::npos) {
    path = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
  }
  if (auto at = rest.rfind('@'); at != std::string_view::npos) {
    std::string_view userinfo = rest.substr(0, at);
    rest = rest.substr(at + 1);
    std::string_view user = userinfo, password;
    if (auto colon = userinfo.find(':'); colon != std::string_view::npos) {
      user = userinfo.substr(0, colon);
      password = userinfo.substr(colon + 1);
    } else {
      // redis://secret@host: the password alone, as redis-cli -u reads it.
      password = userinfo;
      user = {};
    }
    auto u = percentDecode(user);
    auto p = percentDecode(password);
    if (!u || !p) return bad("bad percent-escape in the user or password");
    out.user = *u;
    out.password = *p;
  }
  std::string_view host = rest, port;
  if (!rest.empty() && rest.front() == '[') {  // [::1]:6379
    auto close = rest.find(']');
    if (close == std::string_view::npos) return bad("unclosed [ in the host");
    host = rest.substr(1, close - 1);
    std::string_view after = rest.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return bad("junk after the host");
      port = after.substr(1);
    }
  } else if (auto colon = rest.rfind(':'); colon != std::string_view::npos) {
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
  }
  if (host.empty()) return bad("no host");
  out.host = std::string(host);
  if (!port.empty() && !parseInt(port, out.port, 1, 65535)) return bad("bad port");
  if (!path.empty() && !parseInt(path, out.db, 0, 100000)) return bad("bad database number");
  while (!query.empty()) {
    auto amp = query.find('&');
    std::string_view param = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    if (param.empty()) continue;
    auto eq = param.find('=');
    std::string_view name = param.substr(0, eq);
    std::string_view value = eq == std::string_view::npos ? "" : param.substr(eq + 1);
    if (name == "prefix") {
      auto v = percentDecode(value);
      if (!v) return bad("bad percent-escape in prefix");
      out.prefix = *v;
    } else {
      return bad("unknown parameter " + std::string(name) + " (known: prefix)");
    }
  }
  return out;
}

void ContextDeleter::operator()(redisContext* c) const { redisFree(c); }

RedisClient::RedisClient(RedisClientOptions options) : options_(std::move(options)) {}
RedisClient::~RedisClient() = default;

bool RedisClient::available() const {
  std::lock_guard lock(mutex_);
  return std::chrono::steady_clock::now() >= openUntil_;
}

RedisClientStats RedisClient::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

void RedisClient::tripLocked() {
  ++stats_.failures;
  backoff_ =
      backoff_.count() == 0 ? options_.backoffMin : std::min(options_.backoffMax, backoff_ * 2);
  openUntil_ = std::chrono::steady_clock::now() + backoff_;
  idle_.clear();  // the others are most likely as dead (a restarted server)
}

void RedisClient::reportFailure() {
  std::lock_guard lock(mutex_);
  tripLocked();
}

Result<ContextPtr> RedisClient::connect(bool withTimeout) {
  const RedisUrl& u = options_.url;
  ContextPtr c(redisConnectWithTimeout(u.host.c_str(), u.port, toTimeval(options_.connectTimeout)));
  if (!c) return makeError(Errc::Unavailable, "redis " + u.display() + ": out of memory");
  if (c->err)
    return makeError(Errc::Unavailable, "redis " + u.display() + ": cannot connect: " + c->errstr);
  if (withTimeout) redisSetTimeout(c.get(), toTimeval(options_.commandTimeout));
  redisEnableKeepAlive(c.get());
  auto run = [&](std::vector<std::string_view> args) -> Result<void> {
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (auto a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    if (!withTimeout) redisSetTimeout(c.get(), toTimeval(options_.commandTimeout));
    ReplyPtr r(static_cast<redisReply*>(
        redisCommandArgv(c.get(), static_cast<int>(argv.size()), argv.data(), lens.data())));
    if (!r) return makeError(Errc::Unavailable, "redis " + u.display() + ": " + c->errstr);
    if (r->type == REDIS_REPLY_ERROR)
      // The reply names the failure (WRONGPASS ...), never the password we sent.
      return makeError(Errc::Unavailable, "redis " + u.display() + ": " + std::string(args[0]) +
                                              " refused: " + std::string(r->str, r->len));
    return {};
  };
  if (!u.password.empty()) {
    auto r = u.user.empty() ? run({"AUTH", u.password}) : run({"AUTH", u.user, u.password});
    if (!r) return r.error();
  }
  if (u.db != 0) {
    const std::string db = std::to_string(u.db);
    if (auto r = run({"SELECT", db}); !r) return r.error();
  }
  if (!withTimeout) {
    timeval none{0, 0};
    redisSetTimeout(c.get(), none);
  }
  return c;
}

Result<ContextPtr> RedisClient::connectDedicated() {
  auto c = connect(false);
  std::lock_guard lock(mutex_);
  ++stats_.connects;
  if (!c) tripLocked();
  return c;
}

Result<RedisValue> RedisClient::command(std::initializer_list<std::string_view> args) {
  return command(std::vector<std::string_view>(args));
}

Result<RedisValue> RedisClient::command(const std::vector<std::string_view>& args) {
  ContextPtr c;
  {
    std::lock_guard lock(mutex_);
    ++stats_.commands;
    const auto now = std::chrono::steady_clock::now();
    if (now < openUntil_) {
      ++stats_.rejected;
      return makeError(
          Errc::Unavailable,
          "redis " + options_.url.display() + " unavailable (retrying in " +
              std::to_string(
                  std::chrono::duration_cast<std::chrono::milliseconds>(openUntil_ - now).count()) +
              " ms)");
    }
    if (!idle_.empty()) {
      c = std::move(idle_.back());
      idle_.pop_back();
    }
  }
  if (!c) {
    auto made = connect(true);
    std::lock_guard lock(mutex_);
    ++stats_.connects;
    if (!made) {
      tripLocked();
      return made.error();
    }
    c = std::move(*made);
  }
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  argv.reserve(args.size());
  lens.reserve(args.size());
  for (auto a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  ReplyPtr r(static_cast<redisReply*>(
      redisCommandArgv(c.get(), static_cast<int>(argv.size()), argv.data(), lens.data())));
  if (!r) {
    Error e = makeError(Errc::Unavailable, "redis " + options_.url.display() + ": " + c->errstr);
    std::lock_guard lock(mutex_);
    tripLocked();
    return e;  // the connection is closed with c
  }
  Result<RedisValue> out =
      r->type == REDIS_REPLY_ERROR
          ? Result<RedisValue>(makeError(Errc::Io, "redis: " + std::string(r->str, r->len)))
          : Result<RedisValue>(convert(r.get()));
  std::lock_guard lock(mutex_);
  backoff_ = std::chrono::milliseconds(0);
  if (idle_.size() < options_.maxIdle) idle_.push_back(std::move(c));
  return out;
}

}  // namespace llmcache::cache::redis
