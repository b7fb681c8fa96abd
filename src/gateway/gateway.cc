#include "gateway/gateway.h"

#include <fnmatch.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <charconv>
#include <climits>
#include <iostream>
#include <ranges>

#include "analytics/prompt.h"
#include "api/request.h"
#include "api/response.h"
#include "api/sse_parser.h"
#include "api/stream.h"
#include "common/thread.h"
#include "gateway/key_memo.h"
#include "gateway/upstream_call.h"
#include "upstream/headers.h"

namespace llmcache::gateway {

namespace bhttp = http::bhttp;
namespace net = http::net;

std::string_view outcomeName(Outcome o) {
  switch (o) {
    case Outcome::Hit:
      return "HIT";
    case Outcome::Miss:
      return "MISS";
    case Outcome::Coalesced:
      return "COALESCED";
    case Outcome::Refresh:
      return "REFRESH";
    case Outcome::NoStore:
      return "NO-STORE";
    case Outcome::Bypass:
      return "BYPASS";
    case Outcome::Uncacheable:
      return "UNCACHEABLE";
    case Outcome::Invalid:
      return "INVALID";
  }
  return "UNKNOWN";
}

namespace {
// The cache key as an x-llmcache-key value. A key carries the model id as the client sent it,
// and a control character (a JSON "\n" or "\r\n" in "model") written raw into a header would
// split the response. Bytes below 0x20, DEL and '%' are percent-encoded (%0A); a key without
// them, as every real model id, is sent unchanged.
std::string keyHeaderValue(std::string_view key) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(key.size());
  for (const char ch : key) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f || c == '%') {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    } else {
      out += ch;
    }
  }
  return out;
}
}  // namespace

// What a leader hands to the requests that waited for it.
struct Gateway::FlightResult {
  enum class Kind { Answer, Raw, Aborted } kind = Kind::Aborted;
  cache::EntryPtr entry;  // Answer: the complete answer (stored or not)
  int status = 0;         // Raw: what the upstream (or the gateway) answered, as sent
  std::vector<upstream::Header> headers;
  std::string body;
};

// Everything known about one request while it is handled.
struct Gateway::Context {
  Context(http::Request& r, TimePoint t) : request(r), received(t) {}
  http::Request& request;
  TimePoint received;
  std::string path;   // without the query
  std::string query;  // without '?'
  std::string platform;
  std::string upstreamUrl;
  std::optional<key::Endpoint> endpoint;
  api::Provider provider = api::Provider::OpenAi;
  api::RequestInfo info{};
  Json body;
  key::CacheKey key;
  bool noCache = false;
  bool noStore = false;
  std::optional<int64_t> maxAge;
  std::optional<int64_t> ttl;
  std::string keyNamespace;
  std::string tenant;  // the scope in the key (a hash or a header value, never a credential)
  std::vector<std::string> tags;
  uint64_t generation = 0;  // the invalidator's generation when the miss started
  bool bodyParsed = false;  // `body` holds the parsed request (a KeyMemo hit skips parsing)
  // What the analytics event reports (filled as the request goes).
  std::optional<Outcome> outcome;
  bool recorded = false;  // the event went out (settle() does it before the answer is sent)
  std::string tier;
  cache::EntryPtr answer;  // the entry served or stored
  std::string callerHash;
  std::shared_ptr<const KeyMemo::Value> keyInfo;
  bool includeUsage = false;  // stream_options.include_usage
  // The flight this request leads, if any. It is completed before the leader's client sees the
  // end of its answer: a request that client sends next must start a new flight, not join the
  // finished one (a Cache-Control: no-cache right after a MISS would otherwise be COALESCED
  // with the old answer and never reach the upstream).
  std::shared_ptr<SingleFlight<FlightResult>::Flight> flight;
  bool published = false;
};

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::optional<int64_t> parseNonNegative(std::string_view s) {
  int64_t v = 0;
  auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  if (r.ec != std::errc{} || r.ptr != s.data() + s.size() || v < 0) return std::nullopt;
  return v;
}

// The tenant of an api_key scope: HMAC-SHA256 of the credential under CACHE_SCOPE_SECRET
// (plain SHA-256 when no secret is set), the first 8 bytes in hex. The credential itself is never
// kept.
std::string credentialScope(std::string_view credential, std::string_view secret) {
  // A connection sends one credential over and over: remember the last one per thread (the
  // digest costs more than the rest of a memory hit; OpenSSL 3 fetches the algorithm per call).
  thread_local std::string lastCredential, lastSecret, lastScope;
  if (!lastScope.empty() && credential == lastCredential && secret == lastSecret) return lastScope;
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (secret.empty()) {
    EVP_Digest(credential.data(), credential.size(), digest, &len, EVP_sha256(), nullptr);
  } else {
    HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
         reinterpret_cast<const unsigned char*>(credential.data()), credential.size(), digest,
         &len);
  }
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < 8; ++i) {
    out.push_back(hex[digest[i] >> 4]);
    out.push_back(hex[digest[i] & 15]);
  }
  lastCredential.assign(credential);
  lastSecret.assign(secret);
  lastScope = out;
  return out;
}

std::vector<upstream::Header> headersOf(const http::Request& req) {
  std::vector<upstream::Header> out;
  for (const auto& f : req) out.push_back({std::string(f.name_string()), std::string(f.value())});
  return out;
}

bool isSuccess(int status) { return status >= 200 && status < 300; }

// An admin API reply (/cache/*, /metrics, /dashboard) as an HTTP response.
http::Response adminResponse(admin::AdminApi::Reply reply, unsigned version) {
  http::Response res{static_cast<bhttp::status>(reply.status), version};
  res.set(bhttp::field::content_type, reply.contentType);
  for (const auto& [name, value] : reply.headers) res.set(name, value);
  res.body() = std::move(reply.body);
  return res;
}

// Completes the flight a request leads (Context::flight), once. A template so that it can name
// Gateway's private Context and FlightResult through deduction.
template <class Flights, class Ctx, class ResultPtr>
void publish(Flights& flights, Ctx& ctx, ResultPtr result) {
  if (!ctx.flight || ctx.published) return;
  ctx.published = true;
  flights.complete(ctx.key.requestHash, ctx.flight, std::move(result));
}

}  // namespace

Gateway::Gateway(GatewayDeps deps) : deps_(deps), keyMemo_(deps.config.keyMemoEntries) {
  if (deps_.s3)
    s3Chain_ =
        std::make_unique<cache::TierChain>(std::vector<cache::CacheTier*>{deps_.s3}, deps_.clock);
  mode_ = key::parseNormalizeMode(deps_.config.keyNormalize).value_or(key::NormalizeMode::Seed);
  modelTtls_ = deps_.config.modelTtlRules();
  defaultPlatform_ = "default";
  // Disk writes, index upserts and admin queries yield the CPU to the request threads.
  net::post(writers_, [] { lowerThreadPriority(); });
  net::post(adminPool_, [] { lowerThreadPriority(); });
  for (const auto& p : deps_.platforms.all())
    if (p.baseUrl == deps_.config.upstream) defaultPlatform_ = p.name;
}

Gateway::~Gateway() { flush(); }

void Gateway::flush() {
  adminPool_.join();
  writers_.join();
  s3Pool_.join();
  if (deps_.index) deps_.index->flush();
}

namespace {
// Runs a blocking call on a pool and resumes the coroutine on its own executor afterwards.
// No lambda temporary may share a full expression with a co_await: GCC 12 destroys such a
// temporary twice (a double free, seen here). Hence the named `run` and `op`, here and at the
// call sites.
template <class F>
net::awaitable<std::invoke_result_t<F&>> offload(net::thread_pool& pool, F f) {
  using R = std::invoke_result_t<F&>;
  auto run = [f = std::move(f)]() mutable -> net::awaitable<R> { co_return f(); };
  auto op = net::co_spawn(pool.get_executor(), std::move(run), net::use_awaitable);
  co_return co_await std::move(op);
}
}  // namespace

http::Response Gateway::errorResponse(bhttp::status status, std::string message,
                                      std::string_view target) const {
  const std::string_view path = target.substr(0, target.find('?'));
  const api::Provider provider = path.find("/v1/messages") != std::string_view::npos
                                     ? api::Provider::Anthropic
                                     : api::Provider::OpenAi;
  http::Response res{status, 11};
  res.set(bhttp::field::content_type, "application/json");
  res.set("x-llmcache-status", outcomeName(Outcome::Invalid));
  res.body() = api::errorBody(provider, api::errorTypeForStatus(provider, static_cast<int>(status)),
                              message);
  return res;
}

net::awaitable<void> Gateway::sendError(Context& ctx, http::ResponseWriter& w, bhttp::status status,
                                        std::string_view message, Outcome outcome) {
  settle(ctx, outcome);
  http::Response res{status, ctx.request.version()};
  res.set(bhttp::field::content_type, "application/json");
  res.set("x-llmcache-status", outcomeName(outcome));
  res.body() = api::errorBody(
      ctx.provider, api::errorTypeForStatus(ctx.provider, static_cast<int>(status)), message);
  co_await w.send(std::move(res));
}

net::awaitable<void> Gateway::handle(http::Request& req, http::ResponseWriter& w) {
  ++stats_.requests;
  Context ctx{req, deps_.clock.now()};
  // One analytics event per request, whichever way it ends (no co_await in a destructor).
  struct RecordOnExit {
    Gateway& g;
    Context& c;
    ~RecordOnExit() { g.recordEvent(c); }  // requests that ended without settle() (errors)
  } recordOnExit{*this, ctx};
  const std::string_view target = req.target();
  const size_t q = target.find('?');
  ctx.path = std::string(target.substr(0, q));
  if (q != std::string_view::npos) ctx.query = std::string(target.substr(q + 1));

  if (ctx.path == "/healthz" || ctx.path == "/readyz") {
    http::Response res{bhttp::status::ok, req.version()};
    res.set(bhttp::field::content_type, "application/json");
    res.body() = R"({"status":"ok"})";
    co_await w.send(std::move(res));
    co_return;
  }

  if (ctx.path == "/metrics" && deps_.metrics && deps_.admin && deps_.config.metricsEnabled) {
    co_await serveMetrics(ctx, w);
    co_return;
  }
  if (deps_.admin && admin::AdminApi::ownsDashboard(ctx.path)) {
    // Static files from the binary: no I/O, answered here.
    admin::AdminApi::Reply reply =
        deps_.admin->dashboard(ctx.request.method_string(), ctx.request.target(),
                               ctx.request[bhttp::field::authorization], w.peerIsLoopback());
    http::Response res = adminResponse(std::move(reply), ctx.request.version());
    co_await w.send(std::move(res));
    co_return;
  }
  if (deps_.admin && admin::AdminApi::owns(ctx.path)) {
    co_await serveAdmin(ctx, w);
    co_return;
  }

  // Route: /v1/... goes to the configured upstream, /{platform}/v1/... to a named platform.
  std::string apiPath;
  std::string base;
  if (ctx.path.rfind("/v1/", 0) == 0 || ctx.path == "/v1") {
    apiPath = ctx.path;
    base = deps_.config.upstream;
    ctx.platform = defaultPlatform_;
  } else {
    const size_t slash = ctx.path.find('/', 1);
    const std::string name =
        ctx.path.substr(1, slash == std::string::npos ? std::string::npos : slash - 1);
    apiPath = slash == std::string::npos ? "" : ctx.path.substr(slash);
    ctx.provider =
        apiPath.rfind("/v1/messages", 0) == 0 ? api::Provider::Anthropic : api::Provider::OpenAi;
    if (apiPath.rfind("/v1/", 0) != 0) {
      co_await sendError(ctx, w, bhttp::status::not_found,
                         "no route for " + ctx.path + ": use /v1/... or /{platform}/v1/...",
                         Outcome::Invalid);
      co_return;
    }
    const upstream::Platform* p = deps_.platforms.find(name);
    if (!p) {
      co_await sendError(ctx, w, bhttp::status::not_found, "unknown platform '" + name + "'",
                         Outcome::Invalid);
      co_return;
    }
    base = p->baseUrl;
    ctx.platform = p->name;
  }
  // The platform's base ends in /v1; the API path starts with it.
  ctx.upstreamUrl = base + apiPath.substr(3) + (ctx.query.empty() ? "" : "?" + ctx.query);
  if (req.method() == bhttp::verb::post) ctx.endpoint = api::endpointForPath(apiPath);
  ctx.provider = ctx.endpoint                            ? api::providerOf(*ctx.endpoint)
                 : apiPath.rfind("/v1/messages", 0) == 0 ? api::Provider::Anthropic
                                                         : api::Provider::OpenAi;

  // Request controls.
  for (auto part : std::string_view(req[bhttp::field::cache_control]) | std::views::split(',')) {
    std::string_view d = trim(std::string_view(part.begin(), part.end()));
    // Directive names are case-insensitive (RFC 9111 section 5.2).
    if (upstream::equalsIgnoreCase(d, "no-cache"))
      ctx.noCache = true;
    else if (upstream::equalsIgnoreCase(d, "no-store"))
      ctx.noStore = true;
    else if (upstream::equalsIgnoreCase(d.substr(0, 8), "max-age="))
      ctx.maxAge = parseNonNegative(d.substr(8));
  }
  if (!ctx.endpoint || !deps_.config.enabled || (ctx.noCache && ctx.noStore)) {
    co_await passThrough(ctx, w);
    co_return;
  }
  if (auto ttl = req["x-llmcache-ttl"]; !ttl.empty()) {
    ctx.ttl = parseNonNegative(trim(ttl));
    if (!ctx.ttl) {
      co_await sendError(ctx, w, bhttp::status::bad_request,
                         "x-llmcache-ttl must be a whole number of seconds >= 0", Outcome::Invalid);
      co_return;
    }
  }
  ctx.keyNamespace = std::string(trim(req["x-llmcache-namespace"]));
  for (auto part : std::string_view(req["x-llmcache-tags"]) | std::views::split(',')) {
    std::string_view t = trim(std::string_view(part.begin(), part.end()));
    if (!t.empty()) ctx.tags.emplace_back(t);
  }

  // The key's inputs besides the body: endpoint, normalization, tenant scope, namespace.
  key::KeyOptions opts;
  opts.endpoint = *ctx.endpoint;
  opts.mode = mode_;
  opts.keyNamespace = ctx.keyNamespace;
  const std::string& scopeMode = deps_.config.scope;
  if (scopeMode == "api_key" || scopeMode == "api-key") {
    // The tenant is the credential: answers paid with one key are not served to another.
    // Only a keyed hash of it goes into the key; the credential itself is never stored.
    std::string_view cred = req[bhttp::field::authorization];
    if (cred.empty()) cred = req["x-api-key"];
    if (!cred.empty()) opts.scope = credentialScope(cred, deps_.config.scopeSecret);
  } else if (scopeMode.rfind("header:", 0) == 0) {
    opts.scope = std::string(trim(req[scopeMode.substr(7)]));
  }
  ctx.tenant = opts.scope;

  {
    std::string_view cred = req[bhttp::field::authorization];
    if (cred.empty()) cred = req["x-api-key"];
    if (!cred.empty()) ctx.callerHash = credentialScope(cred, deps_.config.scopeSecret);
  }

  // Parse, validate, key: skipped for a body seen recently (KeyMemo; the body is parsed later
  // only if this turns out to be a miss).
  const KeyMemo::Probe memoProbe =
      KeyMemo::probe(opts.endpoint, opts.mode, opts.scope, opts.keyNamespace, req.body());
  if (auto known = keyMemo_.find(memoProbe)) {
    ctx.info = known->info;
    ctx.key = known->key;
    ctx.includeUsage = known->includeUsage;
    ctx.keyInfo = std::move(known);
  } else {
    auto body = key::parseRequest(req.body());
    if (!body) {
      co_await sendError(ctx, w, bhttp::status::bad_request, body.error().message,
                         Outcome::Invalid);
      co_return;
    }
    ctx.body = std::move(*body);
    ctx.bodyParsed = true;
    auto info = api::validateRequest(*ctx.endpoint, ctx.body);
    if (!info) {
      co_await sendError(ctx, w, bhttp::status::bad_request, info.error().message,
                         Outcome::Invalid);
      co_return;
    }
    ctx.info = *info;
    auto k = key::computeKey(ctx.body, opts);
    if (!k) {
      co_await sendError(ctx, w, bhttp::status::bad_request, k.error().message, Outcome::Invalid);
      co_return;
    }
    ctx.key = std::move(*k);
    const Json* streamOptions = ctx.body.find("stream_options");
    ctx.includeUsage =
        streamOptions && streamOptions->getBool("include_usage") == std::optional<bool>(true);
    auto value = std::make_shared<KeyMemo::Value>();
    value->info = ctx.info;
    value->key = ctx.key;
    value->includeUsage = ctx.includeUsage;
    if (deps_.recorder || deps_.index) {
      const std::string text = analytics::promptText(ctx.body);
      value->promptCategory = analytics::classifyPrompt(text);
      const analytics::PromptSignature sig = analytics::promptSignature(text);
      value->promptSimhash = sig.simhash;
      // No prompt text in the index when bodies are encrypted at rest.
      if (!deps_.config.encryption) value->promptPreview = sig.preview;
    }
    ctx.keyInfo = value;
    keyMemo_.put(memoProbe, std::move(value));
  }

  if (!ctx.noCache) {
    if (auto hit = co_await lookup(ctx)) {
      ++stats_.hits;
      ctx.answer = hit->entry;
      co_await serveEntry(ctx, w, *hit->entry, Outcome::Hit, hit->layer);
      co_return;
    }
  }

  // A miss: lead a flight or wait for the one in progress. A flight whose leader's client went
  // away ends without an answer; its waiters then try again (one of them leads).
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto ticket = flights_.join(ctx.key.requestHash);
    if (ticket.leads) {
      co_await lead(ctx, w, ticket.flight);
      co_return;
    }
    auto result = co_await ticket.flight->wait();
    if (result->kind != FlightResult::Kind::Aborted) {
      ++stats_.coalesced;
      co_await serveFlightResult(ctx, w, *result);
      co_return;
    }
    if (auto hit = co_await lookup(ctx)) {
      ++stats_.hits;
      ctx.answer = hit->entry;
      co_await serveEntry(ctx, w, *hit->entry, Outcome::Hit, hit->layer);
      co_return;
    }
  }
  co_await sendError(ctx, w, bhttp::status::bad_gateway,
                     "the upstream request this one waited for was abandoned; retry",
                     Outcome::Uncacheable);
}

bool Gateway::freshEnough(const Context& ctx, const cache::Entry& entry) const {
  if (!ctx.maxAge) return true;
  const auto age = std::chrono::duration_cast<std::chrono::milliseconds>(deps_.clock.now() -
                                                                         entry.responseTimestamp);
  // Older than the client accepts: a miss. (Compared in milliseconds without multiplying the
  // client's number, which may be as large as int64 allows.)
  return *ctx.maxAge >= INT64_MAX / 1000 || age.count() <= *ctx.maxAge * 1000;
}

net::awaitable<std::optional<cache::ChainHit>> Gateway::lookup(const Context& ctx) {
  auto hit = deps_.chain.lookup(ctx.key.cacheKey, ctx.key.requestHash);
  if (hit && freshEnough(ctx, *hit->entry)) co_return hit;
  if (!s3Chain_ || (deps_.s3Directory && !deps_.s3Directory->mayContain(ctx.key.cacheKey)))
    co_return std::nullopt;
  ++stats_.s3Lookups;
  const uint64_t errorsBefore = s3Chain_->errors(0);
  auto job = offload(s3Pool_, [this, key = ctx.key.cacheKey, hash = ctx.key.requestHash] {
    return s3Chain_->lookup(key, hash);
  });
  auto remote = co_await std::move(job);
  stats_.s3Errors += s3Chain_->errors(0) - errorsBefore;
  if (!remote || !freshEnough(ctx, *remote->entry)) co_return std::nullopt;
  ++stats_.s3Hits;
  // Promote: memory now, disk and the index in the background (the index row lets an
  // invalidation find the local copies).
  cache::EntryPtr entry = remote->entry;
  if (deps_.chain.size() > 0) (void)deps_.chain.tier(0).insert(entry);
  net::post(writers_, [this, entry, keyInfo = ctx.keyInfo] {
    const size_t raw = entry->approxBytes();
    unsigned tiers = index::kTierS3 | index::kTierMemory;
    for (size_t i = 1; i < deps_.chain.size(); ++i)
      if (deps_.chain.tier(i).insert(entry)) tiers |= index::tierBit(deps_.chain.tier(i).name());
    if (deps_.index) {
      (void)deps_.index->upsert(*entry, tiers, raw, raw);
      signRow(*entry, keyInfo.get());
    }
  });
  co_return remote;
}

void Gateway::signRow(const cache::Entry& entry, const KeyMemo::Value* keyInfo) {
  // The near-duplicate finder's prompt signature, set where the row is written (events of hits
  // no longer look the row up to set it: that was an UPDATE per hit on the events thread).
  if (deps_.index && keyInfo && keyInfo->promptSimhash)
    (void)deps_.index->setPromptSignature(entry.cacheKey, keyInfo->promptSimhash,
                                          keyInfo->promptPreview);
}

net::awaitable<void> Gateway::lead(Context& ctx, http::ResponseWriter& w,
                                   std::shared_ptr<SingleFlight<FlightResult>::Flight> flight) {
  std::shared_ptr<const FlightResult> result;
  std::exception_ptr failure;
  ctx.flight = flight;
  // An invalidation applied from now on that matches this request's answer wins: the answer
  // still goes to the client but is not stored.
  if (deps_.invalidator) ctx.generation = deps_.invalidator->generation();
  if (!ctx.bodyParsed) {  // a KeyMemo hit skipped parsing; the entry needs the request
    if (auto body = key::parseRequest(ctx.request.body())) ctx.body = std::move(*body);
    ctx.bodyParsed = true;
  }
  try {
    result = co_await callUpstream(ctx, w);  // completes the flight itself when it answers
  } catch (...) {
    failure = std::current_exception();
  }
  if (!result) result = std::make_shared<FlightResult>();  // Aborted: waiters retry
  publish(flights_, ctx, result);
  if (failure) std::rethrow_exception(failure);
}

net::awaitable<void> Gateway::store(cache::EntryPtr entry, uint64_t generation,
                                    std::shared_ptr<const KeyMemo::Value> keyInfo) {
  // The first tier (memory) before answering, so the next identical request is a hit; the
  // lower tiers (disk fsync, the index upsert, the S3 outbox's journal) in the background, off
  // the request threads. With CACHE_ASYNC_WRITES=false, S3 is written before answering.
  // Both steps run under the invalidator's guard (see invalidator.h for the protocol).
  invalidation::Invalidator* inv = deps_.invalidator;
  auto toMemory = [&] {
    if (deps_.chain.size() > 0)
      if (auto r = deps_.chain.tier(0).insert(entry); !r) ++stats_.storeErrors;
  };
  const bool kept =
      inv ? inv->storeUnlessInvalidated(generation, *entry, toMemory) : (toMemory(), true);
  if (!kept) co_return;  // an invalidation condemned this answer while it was in flight
  ++stats_.stored;
  const bool s3Sync = deps_.s3 && !deps_.s3Outbox;
  net::post(writers_, [this, entry, generation, inv, keyInfo = std::move(keyInfo)] {
    auto rest = [&] {
      const size_t raw = entry->approxBytes();
      if (deps_.index) {
        (void)deps_.index->upsert(*entry, index::kTierMemory, raw, raw);
        signRow(*entry, keyInfo.get());
      }
      for (size_t i = 1; i < deps_.chain.size(); ++i) {
        auto& tier = deps_.chain.tier(i);
        if (auto r = tier.insert(entry); !r) {
          ++stats_.storeErrors;
          std::cerr << "llmcache: " << tier.name() << " tier write failed: " << r.error().message
                    << "\n";
        } else if (deps_.index) {
          (void)deps_.index->upsert(*entry, index::tierBit(tier.name()), raw, raw);
        }
      }
      if (deps_.s3Outbox) {
        if (auto r = deps_.s3Outbox->enqueue(entry); !r) {
          ++stats_.storeErrors;
          std::cerr << "llmcache: S3 outbox refused a write: " << r.error().message << "\n";
        } else {
          if (deps_.s3Directory) deps_.s3Directory->add(entry->cacheKey);
          if (deps_.index) (void)deps_.index->upsert(*entry, index::kTierS3, raw, raw);
        }
      }
    };
    if (!inv) {
      rest();
    } else if (!inv->storeUnlessInvalidated(generation, *entry, rest)) {
      deps_.chain.erase(entry->cacheKey);  // condemned after the memory tier took it
    }
  });
  if (s3Sync) {
    auto job = offload(s3Pool_, [this, entry] { return deps_.s3->insert(entry); });
    auto r = co_await std::move(job);
    if (!r) {
      ++stats_.storeErrors;
      ++stats_.s3Errors;
      std::cerr << "llmcache: S3 write failed: " << r.error().message << "\n";
    } else if (deps_.s3Directory) {
      deps_.s3Directory->add(entry->cacheKey);
    }
  }
}

void Gateway::settle(Context& ctx, Outcome outcome) {
  ctx.outcome = outcome;
  recordEvent(ctx);
}

void Gateway::recordEvent(Context& ctx) {
  if (!ctx.outcome || ctx.recorded || (!deps_.recorder && !deps_.metrics)) return;
  ctx.recorded = true;
  analytics::Event e;
  e.time = deps_.clock.now();
  e.cacheKey = ctx.key.cacheKey;
  e.model = ctx.info.model;
  e.platform = ctx.platform;
  e.provider = upstream::providerOf(ctx.info.model);
  if (ctx.endpoint) e.endpoint = std::string(key::endpointName(*ctx.endpoint));
  e.outcome = std::string(outcomeName(*ctx.outcome));
  e.tier = ctx.tier;
  e.latencyMs = std::chrono::duration<double, std::milli>(e.time - ctx.received).count();
  if (ctx.answer) {
    e.tokensIn = ctx.answer->tokensInput;
    e.tokensOut = ctx.answer->tokensOutput;
    switch (*ctx.outcome) {
      case Outcome::Hit:
        e.costSaved = ctx.answer->costTotal;
        e.latencySavedMs = ctx.answer->latencyMs;
        break;
      case Outcome::Coalesced:
        e.costSaved = ctx.answer->costTotal;
        break;
      default:
        e.cost = ctx.answer->costTotal;  // what this request paid upstream
    }
  }
  e.callerHash = ctx.callerHash;
  if (ctx.keyInfo) {
    e.promptCategory = ctx.keyInfo->promptCategory;
    e.promptSimhash = ctx.keyInfo->promptSimhash;
    e.promptPreview = ctx.keyInfo->promptPreview;
  }
  if (deps_.metrics) deps_.metrics->observe(e);
  if (deps_.recorder) deps_.recorder->record(e);
}

net::awaitable<void> Gateway::serveMetrics(Context& ctx, http::ResponseWriter& w) {
  deps_.metrics->setUpstreamErrors(stats_.upstreamErrors.load());
  deps_.metrics->setS3Errors(stats_.s3Errors.load());
  deps_.metrics->setStoreErrors(stats_.storeErrors.load());
  auto job = offload(adminPool_, [this, method = std::string(ctx.request.method_string()),
                                  auth = std::string(ctx.request[bhttp::field::authorization]),
                                  loopback = w.peerIsLoopback()] {
    if (deps_.refreshGauges) deps_.refreshGauges();
    return deps_.admin->metrics(method, *deps_.metrics, auth, loopback);
  });
  admin::AdminApi::Reply reply = co_await std::move(job);
  http::Response res = adminResponse(std::move(reply), ctx.request.version());
  co_await w.send(std::move(res));
}

net::awaitable<void> Gateway::serveAdmin(Context& ctx, http::ResponseWriter& w) {
  // Off the I/O threads: an invalidation runs SQLite queries and tier erases.
  auto job =
      offload(adminPool_, [this, method = std::string(ctx.request.method_string()),
                           target = std::string(ctx.request.target()), body = ctx.request.body(),
                           auth = std::string(ctx.request[bhttp::field::authorization]),
                           loopback = w.peerIsLoopback()] {
        return deps_.admin->handle(method, target, body, auth, loopback);
      });
  admin::AdminApi::Reply reply = co_await std::move(job);
  if (deps_.broadcast && reply.status == 200) {
    // Tell the other gateways on the bucket (they apply it to their memory and disk).
    std::optional<Json> record;
    const auto method = ctx.request.method();
    if (method == bhttp::verb::post && ctx.path == "/cache/invalidate") {
      if (auto body = parseJson(ctx.request.body())) record = std::move(*body);
    } else if (method == bhttp::verb::delete_ && ctx.path.rfind("/cache/entries/", 0) == 0) {
      record = Json::object().set("cache_id", Json::string(ctx.path.substr(15)));
    }
    if (record) {
      auto publish =
          offload(s3Pool_, [this, r = std::move(*record)] { return deps_.broadcast->publish(r); });
      if (auto r = co_await std::move(publish); !r) {
        ++stats_.s3Errors;
        std::cerr << "llmcache: could not publish the invalidation to S3: " << r.error().message
                  << "\n";
      }
    }
  }
  http::Response res = adminResponse(std::move(reply), ctx.request.version());
  co_await w.send(std::move(res));
}

net::awaitable<std::shared_ptr<const Gateway::FlightResult>> Gateway::callUpstream(
    Context& ctx, http::ResponseWriter& w) {
  ++stats_.upstreamCalls;
  upstream::Request ur;
  ur.method = "POST";
  ur.url = ctx.upstreamUrl;
  ur.body = ctx.request.body();
  ur.connectTimeout = std::chrono::seconds(deps_.config.upstreamConnectTimeoutSeconds);
  ur.totalTimeout = std::chrono::seconds(deps_.config.upstreamTimeoutSeconds);
  for (auto& h : upstream::forwardableHeaders(headersOf(ctx.request)))
    if (!upstream::equalsIgnoreCase(h.name, "accept-encoding")) ur.headers.push_back(std::move(h));
  // The gateway must read the answer to store it: ask for it uncompressed.
  ur.headers.push_back({"Accept-Encoding", "identity"});

  const auto t0 = std::chrono::steady_clock::now();
  auto call = UpstreamCall::start(deps_.client, std::move(ur), co_await net::this_coro::executor);
  const Outcome outcome = ctx.noCache   ? Outcome::Refresh
                          : ctx.noStore ? Outcome::NoStore
                                        : Outcome::Miss;
  upstream::ResponseHead head;
  std::string body;
  bool streaming = false;
  bool clientGone = false;
  api::SseParser parser;
  std::vector<SseEvent> events;
  Result<void> done = makeError(Errc::Unavailable, "no answer");

  auto ourHeaders = [&](http::Fields& f, Outcome o) {
    for (const auto& h : upstream::forwardableHeaders(head.headers)) f.insert(h.name, h.value);
    f.set("x-llmcache-status", outcomeName(o));
    f.set("x-llmcache-key", keyHeaderValue(ctx.key.cacheKey));
  };

  for (;;) {
    UpstreamCall::Step step = co_await call->next();
    if (step.head) {
      head = std::move(*step.head);
      auto ct = upstream::findHeader(head.headers, "content-type");
      streaming = ctx.info.stream && isSuccess(head.status) && ct &&
                  ct->find("text/event-stream") != std::string_view::npos;
      if (streaming) {
        http::Fields f;
        ourHeaders(f, outcome);
        if (!co_await w.beginStream(static_cast<bhttp::status>(head.status), f)) {
          clientGone = true;
          call->cancel();
        }
      }
    }
    if (!step.data.empty()) {
      body += step.data;
      if (streaming) {
        for (auto& e : parser.feed(step.data)) events.push_back(std::move(e));
        if (!clientGone && !co_await w.write(step.data)) {
          clientGone = true;  // nothing of a stream the client did not see to the end is stored
          call->cancel();
        }
      }
    }
    if (step.done) {
      done = std::move(*step.done);
      break;
    }
  }
  const int64_t latencyMs =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count();

  auto result = std::make_shared<FlightResult>();
  if (clientGone) co_return result;  // Aborted
  if (!done) {
    ++stats_.upstreamErrors;
    const bool timeout = done.error().message.find("imeout") != std::string::npos ||
                         done.error().message.find("timed out") != std::string::npos;
    const auto status = timeout ? bhttp::status::gateway_timeout : bhttp::status::bad_gateway;
    const std::string message = "upstream request failed: " + done.error().message;
    result->kind = FlightResult::Kind::Raw;
    result->status = static_cast<int>(status);
    result->headers = {{"content-type", "application/json"}};
    result->body = api::errorBody(ctx.provider,
                                  api::errorTypeForStatus(ctx.provider, result->status), message);
    publish(flights_, ctx, result);
    if (w.started()) {
      w.abort();  // a broken stream must look broken to the client, not complete
    } else {
      co_await sendError(ctx, w, status, message, Outcome::Uncacheable);
    }
    co_return result;
  }

  // A complete exchange. Is it an answer we may store?
  std::optional<Json> answer;
  if (isSuccess(head.status)) {
    if (streaming) {
      if (api::streamCompleted(*ctx.endpoint, events)) {
        auto assembled = api::assembleStream(*ctx.endpoint, events);
        if (assembled && api::isStorableResponse(*ctx.endpoint, *assembled))
          answer = std::move(*assembled);
      }
    } else if (!ctx.info.stream) {
      auto parsed = parseJson(body);
      if (parsed && api::isStorableResponse(*ctx.endpoint, *parsed)) answer = std::move(*parsed);
    }
  }
  if (!isSuccess(head.status)) ++stats_.upstreamErrors;

  cache::EntryPtr entry;
  if (answer) {
    auto e = std::make_shared<cache::Entry>();
    e->cacheId = cache::newCacheId();
    e->cacheKey = ctx.key.cacheKey;
    e->requestHash = ctx.key.requestHash;
    e->endpoint = std::string(key::endpointName(*ctx.endpoint));
    e->request = toJson(ctx.body);
    e->requestTimestamp = ctx.received;
    e->response = toJson(*answer);
    e->responseTimestamp = deps_.clock.now();
    e->status = head.status;
    e->model = ctx.info.model;
    e->platform = ctx.platform;
    e->provider = upstream::providerOf(ctx.info.model);
    const api::Usage usage = api::extractUsage(*ctx.endpoint, *answer);
    e->tokensInput = usage.inputTokens;
    e->tokensOutput = usage.outputTokens;
    if (usage.reportedCostUsd) {
      e->costTotal = *usage.reportedCostUsd;
    } else if (auto price = deps_.pricing.find(ctx.info.model)) {
      const upstream::Cost c = upstream::costOf(*price, usage.inputTokens, usage.outputTokens);
      e->costInput = c.input;
      e->costOutput = c.output;
      e->costTotal = c.total;
    }
    e->latencyMs = latencyMs;
    e->lastAccessed = e->responseTimestamp;
    // Time to live: x-llmcache-ttl, else the first CACHE_MODEL_TTLS rule matching the model,
    // else CACHE_TTL.
    int64_t ttl = deps_.config.ttlSeconds;
    for (const auto& [glob, seconds] : modelTtls_) {
      if (fnmatch(glob.c_str(), ctx.info.model.c_str(), 0) == 0) {
        ttl = seconds;
        break;
      }
    }
    if (ctx.ttl) ttl = *ctx.ttl;
    // More than 100 years is forever in practice; the cap keeps the sum inside TimePoint's range
    // (a header of 9223372036854775807 seconds would overflow its nanoseconds).
    constexpr int64_t kMaxTtlSeconds = int64_t{100} * 365 * 24 * 3600;
    if (ttl > 0)
      e->expiresAt = e->responseTimestamp + std::chrono::seconds(std::min(ttl, kMaxTtlSeconds));
    e->tags = ctx.tags;
    e->cacheNamespace = ctx.keyNamespace;
    e->tenant = ctx.tenant;
    if (streaming) e->sseEvents = std::move(events);
    entry = std::move(e);
    if (!ctx.noStore) co_await store(entry, ctx.generation, ctx.keyInfo);
    ++stats_.misses;
  }

  if (entry) {
    result->kind = FlightResult::Kind::Answer;
    result->entry = entry;
  } else {
    result->kind = FlightResult::Kind::Raw;
    result->status = head.status;
    result->headers = upstream::forwardableHeaders(head.headers);
    result->body = body;
  }
  publish(flights_, ctx,
          result);  // before our client sees the end of the answer (see Context::flight)
  const Outcome finalOutcome = entry ? outcome : Outcome::Uncacheable;
  ctx.answer = entry;
  settle(ctx, finalOutcome);
  if (streaming) {
    co_await w.finish();
  } else {
    http::Response res{static_cast<bhttp::status>(head.status), ctx.request.version()};
    ourHeaders(res.base(), finalOutcome);
    res.body() = std::move(body);
    co_await w.send(std::move(res));
  }
  co_return result;
}

net::awaitable<void> Gateway::serveEntry(Context& ctx, http::ResponseWriter& w,
                                         const cache::Entry& entry, Outcome outcome,
                                         std::string_view layer) {
  ctx.tier = std::string(layer);
  settle(ctx, outcome);
  // Queued in memory and written in batches by the index's own thread: no SQLite here.
  if (deps_.index && outcome == Outcome::Hit)
    deps_.index->recordHit(entry.cacheId, deps_.clock.now());
  http::Response res{static_cast<bhttp::status>(entry.status ? entry.status : 200),
                     ctx.request.version()};
  res.set("x-llmcache-status", outcomeName(outcome));
  if (!layer.empty()) res.set("x-llmcache-layer", layer);
  res.set("x-llmcache-key", keyHeaderValue(entry.cacheKey));
  const auto age =
      std::chrono::duration_cast<std::chrono::seconds>(deps_.clock.now() - entry.responseTimestamp);
  res.set(bhttp::field::age, std::to_string(std::max<int64_t>(0, age.count())));
  if (ctx.info.stream) {
    res.set(bhttp::field::content_type, "text/event-stream; charset=utf-8");
    res.set(bhttp::field::cache_control, "no-cache");
    const auto key = key::parseEndpoint(entry.endpoint).value_or(*ctx.endpoint);
    auto parsed = parseJson(entry.response);
    const Json assembled = parsed ? std::move(*parsed) : Json::object();
    res.body() = api::formatSse(api::fitUsageToRequest(
        key, entry.sseEvents.empty() ? api::synthesizeStream(key, assembled) : entry.sseEvents,
        ctx.includeUsage, assembled));
  } else {
    // The stored bytes as they are: no JSON writer and no copy (ctx.answer keeps them alive).
    res.set(bhttp::field::content_type, "application/json");
    co_await w.sendView(std::move(res), entry.response);
    co_return;
  }
  co_await w.send(std::move(res));
}

net::awaitable<void> Gateway::serveFlightResult(Context& ctx, http::ResponseWriter& w,
                                                const FlightResult& result) {
  if (result.kind == FlightResult::Kind::Answer) {
    ctx.answer = result.entry;
    co_await serveEntry(ctx, w, *result.entry, Outcome::Coalesced, "");
    co_return;
  }
  settle(ctx, Outcome::Coalesced);
  http::Response res{static_cast<bhttp::status>(result.status), ctx.request.version()};
  for (const auto& h : result.headers) res.insert(h.name, h.value);
  res.set("x-llmcache-status", outcomeName(Outcome::Coalesced));
  res.set("x-llmcache-key", keyHeaderValue(ctx.key.cacheKey));
  res.body() = result.body;
  co_await w.send(std::move(res));
}

net::awaitable<void> Gateway::passThrough(Context& ctx, http::ResponseWriter& w) {
  ++stats_.bypassed;
  ctx.outcome = Outcome::Bypass;
  ++stats_.upstreamCalls;
  upstream::Request ur;
  ur.method = std::string(ctx.request.method_string());
  ur.url = ctx.upstreamUrl;
  ur.body = ctx.request.body();
  ur.headers = upstream::forwardableHeaders(headersOf(ctx.request));
  ur.connectTimeout = std::chrono::seconds(deps_.config.upstreamConnectTimeoutSeconds);
  ur.totalTimeout = std::chrono::seconds(deps_.config.upstreamTimeoutSeconds);
  auto call = UpstreamCall::start(deps_.client, std::move(ur), co_await net::this_coro::executor);
  bool clientGone = false;
  for (;;) {
    UpstreamCall::Step step = co_await call->next();
    if (step.head) {
      http::Fields f;
      for (const auto& h : upstream::forwardableHeaders(step.head->headers))
        f.insert(h.name, h.value);
      f.set("x-llmcache-status", outcomeName(Outcome::Bypass));
      if (!co_await w.beginStream(static_cast<bhttp::status>(step.head->status), f)) {
        clientGone = true;
        call->cancel();
      }
    }
    if (!step.data.empty() && !clientGone && !co_await w.write(step.data)) {
      clientGone = true;
      call->cancel();
    }
    if (step.done) {
      if (!*step.done) {
        ++stats_.upstreamErrors;
        if (!w.started()) {
          co_await sendError(ctx, w, bhttp::status::bad_gateway,
                             "upstream request failed: " + step.done->error().message,
                             Outcome::Bypass);
        } else {
          w.abort();  // the upstream broke off: the client must see a broken response
        }
        co_return;
      }
      break;
    }
  }
  recordEvent(ctx);
  if (!clientGone) co_await w.finish();
}

}  // namespace llmcache::gateway
