#include "cache/redis/redis_client.h"

#include <charconv>

#include "common/log.h"

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

LogLimiter failureLog;

// Why the circuit opened (a refused certificate, AUTH refused, connection refused, a timeout):
// the calls it then rejects only say "unavailable". Never holds the password.
void logFailure(const Error& e) {
  warnLimited(failureLog, "{}; Redis is skipped until a probe succeeds", e.message);
}

}  // namespace

std::string RedisUrl::display() const {
  return host + ":" + std::to_string(port) + "/" + std::to_string(db);
}

Result<RedisUrl> parseRedisUrl(std::string_view url) {
  auto bad = [](std::string what) {
    return makeError(Errc::InvalidArgument, "CACHE_REDIS_URL: " + std::move(what));
  };
  RedisUrl out;
  if (url.starts_with("rediss://")) {
    out.tls = true;
    url.remove_prefix(9);
  } else if (url.starts_with("redis://")) {
    url.remove_prefix(8);
  } else {
    return bad("must start with redis:// or rediss:// (TLS)");
  }
  std::string_view rest = url;
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
    } else if (name == "ca") {
      auto v = percentDecode(value);
      if (!v || v->empty()) return bad("ca= needs the path of a PEM file of CA certificates");
      out.caFile = *v;
    } else {
      return bad("unknown parameter " + std::string(name) + " (known: prefix, ca)");
    }
  }
  if (!out.caFile.empty() && !out.tls) return bad("ca= is for TLS: use rediss://");
  return out;
}

RedisClient::RedisClient(RedisClientOptions options) : options_(std::move(options)) {
  if (!options_.url.tls) return;
  auto tls = TlsContext::create(TlsOptions{.caFile = options_.url.caFile});
  if (tls)
    tls_ = std::move(*tls);
  else
    tlsError_ = tls.error();
}
RedisClient::~RedisClient() = default;

Result<void> RedisClient::ready() const {
  if (tlsError_) return *tlsError_;
  return {};
}

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
  stats_.up = false;
  backoff_ =
      backoff_.count() == 0 ? options_.backoffMin : std::min(options_.backoffMax, backoff_ * 2);
  openUntil_ = std::chrono::steady_clock::now() + backoff_;
  idle_.clear();  // the others are most likely as dead (a restarted server)
}

void RedisClient::reportFailure() {
  std::lock_guard lock(mutex_);
  tripLocked();
}

Result<ConnectionPtr> RedisClient::connect(bool withTimeout) {
  if (tlsError_) return makeError(Errc::Unavailable, tlsError_->message);
  const RedisUrl& u = options_.url;
  auto opened = RedisConnection::open(ConnectOptions{
      .host = u.host, .port = u.port, .connectTimeout = options_.connectTimeout, .tls = tls_});
  if (!opened) return opened.error();
  ConnectionPtr c = std::move(*opened);
  c->setTimeout(options_.commandTimeout);
  auto run = [&](std::vector<std::string_view> args) -> Result<void> {
    auto r = c->command(args);
    if (!r && r.error().code == Errc::Io) {
      // The reply names the failure (WRONGPASS ...), never the password we sent.
      std::string reply = r.error().message;  // error() is a copy: keep it
      if (reply.starts_with("redis: ")) reply.erase(0, 7);
      return makeError(Errc::Unavailable,
                       "redis " + u.display() + ": " + std::string(args[0]) + " refused: " + reply);
    }
    if (!r) return r.error();
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
  if (!withTimeout) c->setTimeout(std::chrono::milliseconds(0));
  return c;
}

Result<ConnectionPtr> RedisClient::connectDedicated() {
  auto c = connect(false);
  {
    std::lock_guard lock(mutex_);
    ++stats_.connects;
    if (!c)
      tripLocked();
    else
      stats_.up = true;
  }
  if (!c) logFailure(c.error());
  return c;
}

Result<RedisValue> RedisClient::command(std::initializer_list<std::string_view> args) {
  return command(std::vector<std::string_view>(args));
}

Result<RedisValue> RedisClient::command(const std::vector<std::string_view>& args) {
  ConnectionPtr c;
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
    {
      std::lock_guard lock(mutex_);
      ++stats_.connects;
      if (!made) tripLocked();
    }
    if (!made) {
      logFailure(made.error());
      return made.error();
    }
    c = std::move(*made);
  }
  Result<RedisValue> out = c->command(args);
  if (!out && out.error().code != Errc::Io) {
    {
      std::lock_guard lock(mutex_);
      tripLocked();
    }
    logFailure(out.error());
    return out;  // the connection is closed with c
  }
  std::lock_guard lock(mutex_);
  backoff_ = std::chrono::milliseconds(0);
  stats_.up = true;
  if (idle_.size() < options_.maxIdle) idle_.push_back(std::move(c));
  return out;
}

}  // namespace llmcache::cache::redis
