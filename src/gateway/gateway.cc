#include <algorithm>
#include <cctype>
#include <climits>
#include <ranges>

#include "analytics/prompt.h"
#include "api/request.h"
#include "api/response.h"
#include "api/stream.h"
#include "common/log.h"
#include "common/offload.h"
#include "common/thread.h"
#include "gateway/context.h"
#include "gateway/relay.h"
#include "upstream/headers.h"

namespace llmcache::gateway {

namespace bhttp = http::bhttp;
namespace net = http::net;

namespace {
bool isSuccess(int status) { return status >= 200 && status < 300; }

std::vector<upstream::Header> headersOf(const http::Request& req) {
  std::vector<upstream::Header> out;
  for (const auto& f : req) out.push_back({std::string(f.name_string()), std::string(f.value())});
  return out;
}
}  // namespace

Gateway::Gateway(GatewayDeps deps)
    : deps_(deps),
      router_(deps.platforms, {.upstream = deps.config.upstream,
                               .metrics = deps.config.metricsEnabled && deps.metrics != nullptr,
                               .admin = deps.admin != nullptr}),
      entries_(deps.pricing, deps.config.ttlSeconds, deps.config.modelTtlRules(), deps.clock,
               deps.config.ttlMaxSeconds),
      mode_(key::parseNormalizeMode(deps.config.keyNormalize).value_or(key::NormalizeMode::Exact)),
      keyHeaders_(deps.config.keyHeaderNames()),
      corsOrigins_(deps.config.corsOriginList()),
      scope_{.mode = deps.config.scope,
             .secret = deps.config.scopeSecret,
             .credentials = deps.config.credentialSources()},
      keyMemo_(deps.config.keyMemoEntries, deps.config.keyMemoBytes) {
  if (deps.semanticIndex && deps.config.semanticOn())
    semantic_ = std::make_unique<SemanticCache>(deps.config, *deps.semanticIndex, deps.client,
                                                deps.platforms);
  for (const auto& [ns, mode] : deps.config.namespaceNormalizations())
    namespaceModes_.emplace_back(ns, *key::parseNormalizeMode(mode));
  // Admin queries yield the CPU to the request threads.
  net::post(adminPool_, [] { lowerThreadPriority(); });
}

Gateway::~Gateway() { flush(); }

void Gateway::flush() {
  adminPool_.join();
  metricsPool_.join();
  keyPool_.join();
}

net::awaitable<void> Gateway::handle(http::Request& req, http::ResponseWriter& w) {
  Context ctx{req, deps_.clock.now()};
  // One analytics event per request, whichever way it ends (no co_await in a destructor).
  struct RecordOnExit {
    Gateway& g;
    Context& c;
    ~RecordOnExit() { g.recordEvent(c); }  // requests that ended without settle() (errors)
  } recordOnExit{*this, ctx};
  ctx.route = router_.route(req.method(), req.target());
  switch (ctx.route.kind) {
    case Route::Kind::Health: {
      http::Response res{bhttp::status::ok, req.version()};
      res.set(bhttp::field::content_type, "application/json");
      res.body() = R"({"status":"ok"})";
      co_await w.send(std::move(res));
      co_return;
    }
    case Route::Kind::Metrics:
      co_await serveMetrics(ctx, w);
      co_return;
    case Route::Kind::Dashboard:
      co_await serveDashboard(ctx, w);
      co_return;
    case Route::Kind::Admin:
      co_await serveAdmin(ctx, w);
      co_return;
    case Route::Kind::BadRequest:
      co_await sendError(ctx, w, bhttp::status::bad_request, ctx.route.error, Outcome::Invalid);
      co_return;
    case Route::Kind::NotFound:
      co_await sendError(ctx, w, bhttp::status::not_found, ctx.route.error, Outcome::Invalid);
      co_return;
    case Route::Kind::Api:
      co_await serveApi(ctx, w);
      co_return;
  }
}

// CORS for the API routes, answered by the gateway so that a hit, a miss and an error carry the
// same headers (the provider's own are not relayed: upstream::isCorsHeader): an allowed Origin
// gets access-control-allow-origin on every response head, and its preflight is answered here.
// True when the request was a preflight, now answered.
net::awaitable<bool> Gateway::applyCors(Context& ctx, http::ResponseWriter& w) {
  const std::string_view origin = ctx.request[bhttp::field::origin];
  const bool any = std::ranges::find(corsOrigins_, "*") != corsOrigins_.end();
  const bool allowed =
      !origin.empty() && (any || std::ranges::find(corsOrigins_, origin) != corsOrigins_.end());
  if (allowed) {
    w.addToEveryHead("access-control-allow-origin", any ? "*" : std::string(origin));
    w.addToEveryHead("access-control-expose-headers",
                     "x-llmcache-status, x-llmcache-key, x-request-id, request-id, retry-after");
    if (!any) w.addToEveryHead("vary", "Origin");
  }
  const bool preflight = ctx.request.method() == bhttp::verb::options && !origin.empty() &&
                         !ctx.request[bhttp::field::access_control_request_method].empty();
  if (!preflight) co_return false;
  // Not sent on to the provider: without an allowed origin it gets no CORS headers, and the
  // browser keeps the request back.
  http::Response res{bhttp::status::no_content, ctx.request.version()};
  if (allowed) {
    res.set(bhttp::field::access_control_allow_methods, "GET, POST, DELETE, OPTIONS");
    const std::string_view asked = ctx.request[bhttp::field::access_control_request_headers];
    if (!asked.empty()) res.set(bhttp::field::access_control_allow_headers, asked);
    res.set(bhttp::field::access_control_max_age, "600");
  }
  ctx.outcome = Outcome::Bypass;
  co_await w.send(std::move(res));
  co_return true;
}

net::awaitable<void> Gateway::serveApi(Context& ctx, http::ResponseWriter& w) {
  if (co_await applyCors(ctx, w)) co_return;
  ctx.cacheControl = parseCacheControl(ctx.request[bhttp::field::cache_control]);
  const CacheControl& cc = ctx.cacheControl;
  const bool replay = deps_.config.replayMode();
  if (!ctx.route.endpoint || !deps_.config.enabled || (cc.noCache && cc.noStore)) {
    if (replay) {
      co_await notRecorded(ctx, w, "a request the gateway does not cache is never recorded");
      co_return;
    }
    co_await passThrough(ctx, w);
    co_return;
  }
  auto controls = readControls(ctx.request, ctx.route.query, scope_);
  if (!controls) {
    co_await sendError(ctx, w, bhttp::status::bad_request, controls.error().message,
                       Outcome::Invalid);
    co_return;
  }
  ctx.controls = std::move(*controls);
  if (!co_await prepareKey(ctx, w)) co_return;
  // A valid request whose answer must not be cached (a Responses API background job, a
  // server-side conversation): BYPASS, as any uncached path.
  if (!ctx.info.bypass.empty()) {
    if (replay) {
      co_await notRecorded(ctx, w, "a request the gateway does not cache is never recorded");
      co_return;
    }
    co_await passThrough(ctx, w);
    co_return;
  }

  // Record mode records every request anew (its answer replaces the recording); replay serves
  // only recordings, whatever Cache-Control says.
  if ((!cc.noCache || replay) && !deps_.config.recordMode()) {
    if (auto hit = co_await lookup(ctx)) {
      ctx.answer = hit->entry;
      co_await serveEntry(ctx, w, *hit->entry, Outcome::Hit, cache::tierName(hit->tier));
      co_return;
    }
  }

  if (semantic_ && !replay && !deps_.config.recordMode())
    if (co_await semanticLookup(ctx, w)) co_return;

  rememberMiss(ctx);
  if (replay) {
    co_await notRecorded(ctx, w, "no recording of this request in the cassette");
    co_return;
  }
  if (ctx.request["x-llmcache-explain"] == "1") {
    const analytics::MissExplanation found = co_await explain(ctx);
    ctx.missReason = found.headerValue();
    if (deps_.nearMisses && !deps_.config.cassetteMode())
      deps_.nearMisses->add(ctx.info.model, found);
  } else if (sampleNearMiss()) {
    explainInBackground(ctx);
  }

  // A miss: lead a flight or wait for the one in progress. Waiters get the leader's answer when
  // it is a storable one; after any failure each makes its own call, outside any flight.
  auto ticket = flights_.join(ctx.key.requestHash);
  if (ticket.leads) {
    co_await lead(ctx, w, ticket.flight);
    co_return;
  }
  co_await follow(ctx, w, ticket.flight);
}

key::KeyOptions Gateway::keyOptions(const Context& ctx) const {
  // The key's inputs besides the body: endpoint, normalization (per namespace), tenant scope,
  // namespace, and the request's context that shapes the answer (docs/keyspec.md).
  key::KeyOptions opts{.endpoint = *ctx.route.endpoint,
                       .mode = mode_,
                       .scope = ctx.controls.tenant,
                       .keyNamespace = ctx.controls.keyNamespace,
                       .context = {}};
  for (const auto& [ns, mode] : namespaceModes_)
    if (ns == ctx.controls.keyNamespace) opts.mode = mode;
  std::vector<std::pair<std::string, std::string>>& context = opts.context;
  if (!ctx.route.defaultRoute) context.emplace_back("platform", ctx.route.platform);
  // The upstream's query, its parameters sorted (their order does not change the answer), minus
  // the credential carriers (the tenant is in the scope already).
  if (!ctx.route.query.empty()) {
    std::vector<std::string> params;
    for (auto part : std::views::split(std::string_view(ctx.route.query), '&')) {
      std::string_view p(part.begin(), part.end());
      const std::string_view name = p.substr(0, p.find('='));
      const bool credential = std::any_of(
          scope_.credentials.begin(), scope_.credentials.end(),
          [&](const std::string& s) { return s.rfind("query:", 0) == 0 && s.substr(6) == name; });
      if (!p.empty() && !credential) params.emplace_back(p);
    }
    std::sort(params.begin(), params.end());
    std::string sorted;
    for (const std::string& p : params) sorted += (sorted.empty() ? "" : "&") + p;
    if (!sorted.empty()) context.emplace_back("query", std::move(sorted));
  }
  for (const std::string& name : keyHeaders_) {
    std::string value;
    for (auto [it, end] = ctx.request.equal_range(name); it != end; ++it)
      value += (value.empty() ? "" : ", ") + std::string(it->value());
    if (!value.empty()) context.emplace_back("header:" + name, std::move(value));
  }
  return opts;
}

net::awaitable<bool> Gateway::prepareKey(Context& ctx, http::ResponseWriter& w) {
  const http::Request& req = ctx.request;
  const key::KeyOptions opts = keyOptions(ctx);
  // Parse, validate, key: skipped for a body seen recently (KeyMemo).
  const KeyMemo::Probe memoProbe = KeyMemo::probe(opts, req.body());
  if (auto known = keyMemo_.find(memoProbe)) {
    ctx.info = known->info;
    ctx.key = known->key;
    ctx.keyInfo = std::move(known);
    co_return true;
  }
  // A body too large to memoize is keyed off the I/O thread: parsing and keying are linear in
  // the body, but 8 MiB still takes tens of milliseconds that the connections sharing this
  // thread must not wait for.
  Result<std::shared_ptr<KeyMemo::Value>> computed = makeError(Errc::InvalidArgument, "");
  const bool keepPreview = !deps_.config.encryption;  // no prompt text in the index if sealed
  if (req.body().size() > KeyMemo::kMaxBodyBytes) {
    auto job = offload(keyPool_, [&req, &opts, keepPreview] {
      return computeKeyInfo(req.body(), opts, keepPreview);
    });
    computed = co_await std::move(job);
  } else {
    computed = computeKeyInfo(req.body(), opts, keepPreview);
  }
  if (!computed) {
    co_await sendError(ctx, w, bhttp::status::bad_request, computed.error().message,
                       Outcome::Invalid);
    co_return false;
  }
  std::shared_ptr<KeyMemo::Value> value = std::move(*computed);
  ctx.info = value->info;
  ctx.key = value->key;
  ctx.keyInfo = value;
  keyMemo_.put(memoProbe, std::move(value));
  co_return true;
}

net::awaitable<std::optional<cache::CacheHit>> Gateway::lookup(const Context& ctx) {
  cache::LookupOptions options;
  if (ctx.cacheControl.maxAge && *ctx.cacheControl.maxAge < INT64_MAX / 1000)
    options.storedNoEarlierThan =
        deps_.clock.now() - std::chrono::milliseconds(*ctx.cacheControl.maxAge * 1000);
  options.note = ctx.keyInfo;
  co_return co_await deps_.cache.lookup(ctx.key.cacheKey, ctx.key.requestHash, options);
}

net::awaitable<void> Gateway::lead(Context& ctx, http::ResponseWriter& w,
                                   std::shared_ptr<Flights::Flight> flight) {
  std::shared_ptr<const FlightResult> result;
  std::exception_ptr failure;
  ctx.flight = flight;
  // An invalidation applied from now on that matches this request's answer wins: the answer
  // still goes to the client but is not stored.
  ctx.generation = deps_.cache.generation();
  // One provider call per prompt across the fleet: a gateway that finds another's lease waits
  // for its entry. Not for requests that must reach the provider or whose answer is not stored.
  bool leased = false;
  if (deps_.fleet && !ctx.cacheControl.noCache && !ctx.cacheControl.noStore) {
    FleetWait waited = co_await awaitFleet(ctx);
    if (waited.hit) {
      auto found = std::make_shared<FlightResult>();
      found->entry = waited.hit->entry;
      publish(flights_, ctx, std::shared_ptr<const FlightResult>(found));
      ctx.answer = waited.hit->entry;
      co_await serveEntry(ctx, w, *waited.hit->entry, Outcome::Hit,
                          cache::tierName(waited.hit->tier));
      co_return;
    }
    leased = waited.leased;
  }
  try {
    result = co_await callUpstream(ctx, w);  // completes the flight itself when it answers
  } catch (...) {
    failure = std::current_exception();
  }
  if (!result) result = std::make_shared<FlightResult>();  // no answer: waiters call themselves
  publish(flights_, ctx, result);
  if (leased) {
    // A failure is never handed to the others: the lease goes now and they call themselves.
    const bool stored = result->entry != nullptr;
    auto job = offload(fleetPool_, [fleet = deps_.fleet, hash = ctx.key.requestHash, stored] {
      fleet->release(hash, stored);
    });
    co_await std::move(job);
  }
  if (failure) std::rethrow_exception(failure);
}

net::awaitable<Gateway::FleetWait> Gateway::awaitFleet(Context& ctx) {
  cache::Fleet* fleet = deps_.fleet;
  const std::string hash = ctx.key.requestHash;
  auto take = [fleet, hash] { return fleet->acquire(hash); };
  auto first = offload(fleetPool_, take);
  cache::Fleet::Lease lease = co_await std::move(first);
  if (lease != cache::Fleet::Lease::Taken)
    co_return FleetWait{.hit = {}, .leased = lease == cache::Fleet::Lease::Held};
  // Another gateway calls the provider. Woken by its "stored" or "released" message, and every
  // kPoll regardless (a lost message, a holder that died: its lease expires).
  constexpr auto kPoll = std::chrono::milliseconds(250);
  auto ex = co_await net::this_coro::executor;
  auto timer = std::make_shared<net::steady_timer>(ex);
  auto notified = std::make_shared<std::atomic<bool>>(false);
  std::shared_ptr<void> watching = fleet->watch(hash, [timer, notified, ex] {
    notified->store(true);
    net::post(ex, [timer] { timer->cancel(); });
  });
  const auto deadline = std::chrono::steady_clock::now() + fleet->maxWait();
  for (;;) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) co_return FleetWait{};
    if (!notified->exchange(false)) {
      timer->expires_after(std::min<std::chrono::steady_clock::duration>(kPoll, deadline - now));
      boost::system::error_code ec;
      co_await timer->async_wait(net::redirect_error(net::use_awaitable, ec));
    }
    if (auto hit = co_await lookup(ctx))
      co_return FleetWait{.hit = std::move(hit), .leased = false};
    // No entry yet: still held (wait on), or gone without an entry (a failed call, a dead
    // holder): then this gateway takes the lease and calls.
    auto again = offload(fleetPool_, take);
    lease = co_await std::move(again);
    if (lease != cache::Fleet::Lease::Taken)
      co_return FleetWait{.hit = {}, .leased = lease == cache::Fleet::Lease::Held};
  }
}

upstream::Request Gateway::upstreamRequest(const Context& ctx, bool cached) const {
  upstream::Request ur;
  ur.method = std::string(ctx.request.method_string());
  ur.url = ctx.route.upstreamUrl;
  ur.body = ctx.request.body();
  ur.connectTimeout = std::chrono::seconds(deps_.config.upstreamConnectTimeoutSeconds);
  if (cached) {
    ur.totalTimeout = std::chrono::seconds(deps_.config.upstreamTimeoutSeconds);
  } else {
    // Pass-through is read as fast as the client takes it (back-pressure): a slow client may
    // take longer than any total timeout, so the bound is silence from the upstream instead.
    ur.totalTimeout = std::chrono::milliseconds(0);
    ur.idleTimeout = std::chrono::seconds(deps_.config.upstreamTimeoutSeconds);
  }
  for (auto& h : upstream::forwardableHeaders(headersOf(ctx.request)))
    if (!cached || !upstream::equalsIgnoreCase(h.name, "accept-encoding"))
      ur.headers.push_back(std::move(h));
  // The gateway must read a cached endpoint's answer to store it: ask for it uncompressed.
  if (cached) ur.headers.push_back({"Accept-Encoding", "identity"});
  return ur;
}

namespace {

// The upstream's headers that a hit of this answer replays, names lowercased.
std::vector<std::pair<std::string, std::string>> replayableHeaders(
    const std::vector<upstream::Header>& headers) {
  std::vector<std::pair<std::string, std::string>> kept;
  for (const auto& h : headers) {
    if (!upstream::isReplayableHeader(h.name)) continue;
    std::string name = h.name;
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    kept.emplace_back(std::move(name), h.value);
  }
  return kept;
}

}  // namespace

net::awaitable<std::shared_ptr<const Gateway::FlightResult>> Gateway::callUpstream(
    Context& ctx, http::ResponseWriter& w) {
  const CacheControl& cc = ctx.cacheControl;
  const Outcome outcome = cc.noCache   ? Outcome::Refresh
                          : cc.noStore ? Outcome::NoStore
                                       : Outcome::Miss;
  auto ourHeaders = [&](http::Fields& f, const upstream::ResponseHead& head, Outcome o) {
    for (const auto& h : upstream::forwardableHeaders(head.headers))
      if (!upstream::isCorsHeader(h.name)) f.insert(h.name, h.value);
    f.set("x-llmcache-status", outcomeName(o));
    f.set("x-llmcache-key", keyHeaderValue(ctx.key.cacheKey));
    if (!ctx.missReason.empty() && o != Outcome::Coalesced)
      f.set("x-llmcache-miss-reason", ctx.missReason);
  };
  // Streamed to the client as it comes only when the client asked for a stream and the
  // upstream answers one; anything else is read whole and judged before it is answered.
  // The flight's live log (a flight this request leads): a 200 stream is shared with the
  // followers event by event; anything else they get whole, or not at all (a failure).
  StreamLog* log = ctx.flight ? ctx.flight->shared().get() : nullptr;
  if (log && !ctx.info.stream) log->notAStream();
  const key::Endpoint endpoint = *ctx.route.endpoint;
  const bool openAiStream =
      endpoint == key::Endpoint::OpenAiChat || endpoint == key::Endpoint::OpenAiCompletions;
  upstream::Request request = upstreamRequest(ctx, true);
  RelayOptions relayOptions;
  relayOptions.parseSse = true;
  // A stream's raw bytes are not kept: its events are (the entry's, formatted in the log).
  relayOptions.keepStreamedBody = false;
  // A stream whose client did not ask for usage: asked for it all the same (the entry's tokens
  // and cost, for every later hit and the analytics), and its usage chunk hidden from the client.
  if (ctx.info.stream && deps_.config.streamUsage && !(ctx.keyInfo && ctx.keyInfo->includeUsage)) {
    if (auto asking = api::askForStreamUsage(endpoint, request.body)) {
      request.body = std::move(*asking);
      relayOptions.hideEvent = api::isUsageOnlyChunk;
    }
  }
  const bool carriesUsage =
      !openAiStream || (ctx.keyInfo && ctx.keyInfo->includeUsage) || relayOptions.hideEvent;
  const StreamDecision decide =
      [&](const upstream::ResponseHead& head) -> std::optional<http::Fields> {
    auto ct = upstream::findHeader(head.headers, "content-type");
    if (!ctx.info.stream || !isSuccess(head.status) || !ct ||
        ct->find("text/event-stream") == std::string_view::npos) {
      if (log) log->notAStream();
      return std::nullopt;
    }
    http::Fields f;
    ourHeaders(f, head, outcome);
    if (log) {
      if (head.status == 200) {  // only a 200 can be stored, so only it is shared
        http::Fields theirs;
        ourHeaders(theirs, head, Outcome::Coalesced);
        log->begin(std::move(theirs), carriesUsage);
      } else {
        log->notAStream();
      }
    }
    return f;
  };
  if (log) {
    const bool hides = static_cast<bool>(relayOptions.hideEvent);
    relayOptions.onEvent = [log, hides, openAiStream](const SseEvent& e, bool hidden) {
      log->append(e, hides ? hidden : openAiStream && api::isUsageOnlyChunk(e));
    };
    // The leader's client gone: the call goes on for the followers (the stream is theirs now,
    // and stored once whole), and is cancelled once none is left.
    relayOptions.continueWithoutClient = [flight = ctx.flight] { return flight->followers() > 0; };
  }
  auto job = relay(deps_.client, std::move(request), w, decide, std::move(relayOptions));
  RelayResult up = co_await std::move(job);

  auto result = std::make_shared<FlightResult>();
  // Aborted: nothing of a stream not seen whole is stored. (A stream whose client left but that
  // went on for the followers and ended is judged below like any other.)
  if (up.clientGone && !up.done) co_return result;
  if (!up.done) {
    const auto [status, message] = upstreamFailed(up.done.error());
    publish(flights_, ctx, result);
    if (w.started()) {
      w.abort();  // a broken stream must look broken to the client, not complete
    } else {
      co_await sendError(ctx, w, status, message, Outcome::Uncacheable);
    }
    co_return result;
  }

  // A complete exchange. Is it an answer we may store? Only a 200: a 203 (transformed by a
  // proxy), 206 (partial) or any other 2xx is relayed, never kept.
  std::optional<Json> answer;
  if (up.head.status == 200) {
    if (up.streamed) {
      if (api::streamCompleted(endpoint, up.events)) {
        auto assembled = api::assembleStream(endpoint, up.events);
        if (assembled && api::isStorableResponse(endpoint, *assembled))
          answer = std::move(*assembled);
      }
    } else if (!ctx.info.stream) {
      auto parsed = parseJson(up.body);
      if (parsed && api::isStorableResponse(endpoint, *parsed)) answer = std::move(*parsed);
    }
  } else if (!isSuccess(up.head.status)) {
    upstreamErrors_.fetch_add(1, std::memory_order_relaxed);
  }

  cache::EntryPtr entry;
  if (answer) {
    // The request and (unless assembled from a stream) the answer as their bytes were sent:
    // no second serialized copy of a body of up to CACHE_MAX_BODY_BYTES while it is handled.
    entry = entries_.make({.endpoint = endpoint,
                           .key = ctx.key,
                           .info = ctx.info,
                           .platform = ctx.route.platform,
                           .received = ctx.received,
                           .ttl = ctx.controls.ttl,
                           .tags = ctx.controls.tags,
                           .keyNamespace = ctx.controls.keyNamespace,
                           .tenant = ctx.controls.tenant},
                          {.status = up.head.status,
                           .requestBytes = std::move(ctx.request.body()),
                           .responseBytes = up.streamed ? toJson(*answer) : std::move(up.body),
                           .parsed = *answer,
                           .events = std::move(up.events),
                           .latencyMs = up.latencyMs,
                           .headers = replayableHeaders(up.head.headers)});
    answer.reset();  // its tree is several times the body's size
    if (!cc.noStore) {
      auto store = deps_.cache.store(entry, ctx.generation, ctx.keyInfo);
      const cache::StoreResult stored = co_await std::move(store);
      if (stored == cache::StoreResult::Stored && ctx.semantic && semantic_ &&
          semantic_->beginIndex())
        net::co_spawn(co_await net::this_coro::executor,
                      indexStored(ctx.semantic, entry, endpoint, ctx.info.model), net::detached);
    }
    result->entry = entry;
  }
  publish(flights_, ctx, result);  // before our client sees the end (see Context::flight)
  const Outcome finalOutcome = entry ? outcome : Outcome::Uncacheable;
  ctx.answer = entry;
  settle(ctx, finalOutcome);
  if (up.streamed) {
    if (!up.clientGone) co_await w.finish();
    co_return result;
  }
  http::Response res{static_cast<bhttp::status>(up.head.status), ctx.request.version()};
  ourHeaders(res.base(), up.head, finalOutcome);
  if (entry) {
    co_await w.sendView(std::move(res), entry->response);  // the body moved into the entry
  } else {
    res.body() = std::move(up.body);
    co_await w.send(std::move(res));
  }
  co_return result;
}

net::awaitable<void> Gateway::passThrough(Context& ctx, http::ResponseWriter& w) {
  ctx.outcome = Outcome::Bypass;
  // Always relayed as it comes, whatever it is: nothing of it is read.
  const StreamDecision decide = [](const upstream::ResponseHead& head) {
    http::Fields f;
    for (const auto& h : upstream::forwardableHeaders(head.headers))
      if (!upstream::isCorsHeader(h.name)) f.insert(h.name, h.value);
    f.set("x-llmcache-status", outcomeName(Outcome::Bypass));
    return std::optional<http::Fields>(std::move(f));
  };
  auto job = relay(deps_.client, upstreamRequest(ctx, false), w, decide,
                   {.keepStreamedBody = false,
                    .parseSse = false,
                    .hideEvent = {},
                    .onEvent = {},
                    .continueWithoutClient = {}});
  RelayResult up = co_await std::move(job);
  if (!up.done && !up.clientGone) {
    const auto [status, message] = upstreamFailed(up.done.error());
    if (!w.started()) {
      co_await sendError(ctx, w, status, message, Outcome::Bypass);
    } else {
      w.abort();  // the upstream broke off: the client must see a broken response
    }
    co_return;
  }
  recordEvent(ctx);
  if (!up.clientGone) co_await w.finish();
}

net::awaitable<analytics::MissExplanation> Gateway::explain(const Context& ctx) {
  if (!deps_.explainCandidates || !ctx.route.endpoint) co_return analytics::MissExplanation{};
  auto asked = parseJson(ctx.request.body());
  if (!asked) co_return analytics::MissExplanation{};
  const std::string tenant = ctx.controls.tenant;
  const std::string endpoint(key::endpointName(*ctx.route.endpoint));
  // Reads stored entries (files, the index): off the request threads.
  auto job = offload(adminPool_, [this, &asked, &tenant, &endpoint, &key = ctx.key.cacheKey] {
    const std::vector<cache::EntryPtr> candidates = deps_.explainCandidates(tenant, endpoint);
    return analytics::explainMiss(*asked, tenant, endpoint, candidates, key);
  });
  co_return co_await std::move(job);
}

bool Gateway::sampleNearMiss() {
  const int rate = deps_.config.nearMissSample;
  if (!deps_.nearMisses || !deps_.explainCandidates || rate <= 0 || deps_.config.cassetteMode())
    return false;
  const int64_t second =
      std::chrono::duration_cast<std::chrono::seconds>(deps_.clock.now().time_since_epoch())
          .count();
  std::lock_guard lock(sampleMutex_);
  if (second != sampleSecond_) {
    sampleSecond_ = second;
    sampleCount_ = 0;
  }
  if (sampleCount_ >= rate) return false;
  ++sampleCount_;
  return true;
}

void Gateway::explainInBackground(const Context& ctx) {
  if (ctx.request.body().size() > kRecentMissBytes) return;
  // Copies: the request is answered (and its body moved into the entry) meanwhile.
  net::post(adminPool_, [this, body = ctx.request.body(), tenant = ctx.controls.tenant,
                         endpoint = std::string(key::endpointName(*ctx.route.endpoint)),
                         model = ctx.info.model, key = ctx.key.cacheKey] {
    auto asked = parseJson(body);
    if (!asked) return;
    deps_.nearMisses->add(model,
                          analytics::explainMiss(*asked, tenant, endpoint,
                                                 deps_.explainCandidates(tenant, endpoint), key));
  });
}

void Gateway::rememberMiss(const Context& ctx) {
  if (!deps_.explainCandidates || ctx.request.body().size() > kRecentMissBytes) return;
  RecentMiss miss{.body = ctx.request.body(),
                  .tenant = ctx.controls.tenant,
                  .endpoint = std::string(key::endpointName(*ctx.route.endpoint))};
  const size_t bytes = miss.body.size();
  std::lock_guard lock(missesMutex_);
  auto it = misses_.find(ctx.key.cacheKey);
  if (it != misses_.end()) {  // its key keeps its place in the order; the newest body wins
    missBytes_ = missBytes_ - it->second.body.size() + bytes;
    it->second = std::move(miss);
  } else {
    misses_.emplace(ctx.key.cacheKey, std::move(miss));
    missOrder_.push_back(ctx.key.cacheKey);
    missBytes_ += bytes;
  }
  while (missOrder_.size() > 1 &&
         (missOrder_.size() > kRecentMisses || missBytes_ > kRecentMissTotalBytes)) {
    auto oldest = misses_.find(missOrder_.front());
    if (oldest != misses_.end()) {
      missBytes_ -= oldest->second.body.size();
      misses_.erase(oldest);
    }
    missOrder_.pop_front();
  }
}

std::optional<Json> Gateway::explainRecentMiss(std::string_view cacheKey) {
  RecentMiss miss;
  {
    std::lock_guard lock(missesMutex_);
    auto it = misses_.find(std::string(cacheKey));
    if (it == misses_.end()) return std::nullopt;
    miss = it->second;
  }
  auto asked = parseJson(miss.body);
  if (!asked) return std::nullopt;
  const auto found =
      analytics::explainMiss(*asked, miss.tenant, miss.endpoint,
                             deps_.explainCandidates(miss.tenant, miss.endpoint), cacheKey);
  Json out = Json::object();
  out.set("cache_key", Json::string(cacheKey));
  out.set("endpoint", Json::string(miss.endpoint));
  out.set("explain", found.toJson());
  return out;
}

net::awaitable<void> Gateway::notRecorded(Context& ctx, http::ResponseWriter& w,
                                          std::string_view why) {
  const api::Provider provider = ctx.provider();
  analytics::MissExplanation found;
  if (ctx.route.endpoint && !ctx.key.cacheKey.empty()) found = co_await explain(ctx);
  std::string message = "llmcache replay: " + std::string(why);
  if (!ctx.key.cacheKey.empty()) message += " (cache key " + ctx.key.cacheKey + ")";
  if (found.found) {
    message += "; the nearest recorded request, " + found.nearestKey + ", differs in: ";
    if (found.differences.empty())
      message += "nothing in the body (the key's context: headers, namespace)";
    for (size_t i = 0; i < found.differences.size(); ++i)
      message += (i ? "; " : "") + found.differences[i];
  } else if (!ctx.key.cacheKey.empty()) {
    message += "; no request of this tenant and endpoint is recorded";
  }
  settle(ctx, ctx.route.endpoint ? Outcome::Miss : Outcome::Bypass);
  http::Response res{bhttp::status::not_found, ctx.request.version()};
  res.set(bhttp::field::content_type, "application/json");
  res.set("x-llmcache-status", outcomeName(*ctx.outcome));
  if (!ctx.key.cacheKey.empty()) {
    res.set("x-llmcache-key", keyHeaderValue(ctx.key.cacheKey));
    res.set("x-llmcache-miss-reason", found.headerValue());
  }
  std::string body = api::errorBody(provider, api::errorTypeForStatus(provider, 404), message);
  // The findings as data too, beside the provider's own members (clients ignore unknown ones).
  if (auto parsed = parseJson(body); parsed && parsed->find("error")) {
    Json detail = Json::object();
    detail.set("reason", Json::string("not_recorded"));
    detail.set("cache_key", Json::string(ctx.key.cacheKey));
    detail.set("explain", found.toJson());
    Json* error = parsed->find("error");
    if (provider == api::Provider::OpenAi)
      error->set("code", Json::string("llmcache_not_recorded"));
    error->set("llmcache", std::move(detail));
    body = toJson(*parsed);
  }
  res.body() = std::move(body);
  co_await w.send(std::move(res));
}

std::optional<Json> Gateway::semanticReport() const {
  if (!semantic_) return std::nullopt;
  return semantic_->report();
}

std::optional<Json> Gateway::semanticShadowState() const {
  if (!semantic_) return std::nullopt;
  return semantic_->shadowStats().state();
}

Result<void> Gateway::restoreSemanticShadow(const Json& state) {
  if (!semantic_) return makeError(Errc::InvalidArgument, "the semantic cache is off");
  return semantic_->shadowStats().restore(state);
}

size_t Gateway::indexStoredEntries(const std::vector<cache::EntryPtr>& entries,
                                   const std::atomic<bool>& stop) {
  if (!semantic_) return 0;
  SemanticCache& sc = *semantic_;
  size_t added = 0;
  net::io_context io;  // this thread's own: the embeddings calls complete on it
  auto run = [&]() -> net::awaitable<void> {
    for (const cache::EntryPtr& e : entries) {
      if (stop.load() || !e || sc.index().contains(e->cacheKey)) continue;
      auto endpoint = key::parseEndpoint(e->endpoint);
      auto parsed = parseJson(e->request);
      if (!endpoint || !parsed) continue;
      key::KeyOptions opts{.endpoint = *endpoint,
                           .mode = mode_,
                           .scope = e->tenant,
                           .keyNamespace = e->cacheNamespace,
                           .context = {}};
      for (const auto& [ns, mode] : namespaceModes_)
        if (ns == e->cacheNamespace) opts.mode = mode;
      // The key as the gateway computed it: without context (the default route), or with the
      // platform (a /{platform}/v1 route). Anything else is not reproducible: skipped.
      auto full = key::computeKey(*parsed, opts, key::Canonical::Drop);
      if (!full || full->requestHash != e->requestHash) {
        opts.context = {{"platform", e->platform}};
        full = key::computeKey(*parsed, opts, key::Canonical::Drop);
        if (!full || full->requestHash != e->requestHash) continue;
      }
      auto described = semantic::describeRequest(*parsed, opts, sc.textMode());
      if (!described || !*described || !sc.eligible(**described)) continue;
      auto embedded = co_await sc.embed((*described)->text, "");
      if (!embedded) continue;
      if (sc.index().add((*described)->partition, e->cacheKey, e->requestHash, **embedded)) ++added;
    }
  };
  net::co_spawn(io, run, net::detached);
  io.run();
  return added;
}

net::awaitable<bool> Gateway::semanticLookup(Context& ctx, http::ResponseWriter& w) {
  SemanticCache& sc = *semantic_;
  auto threshold = sc.thresholdFor(ctx.request["x-llmcache-semantic"], ctx.controls.keyNamespace);
  if (!threshold) {
    co_await sendError(ctx, w, bhttp::status::bad_request, threshold.error().message,
                       Outcome::Invalid);
    co_return true;
  }
  // The request's parts: a body too large to parse here goes to the key pool (as prepareKey).
  const key::KeyOptions opts = keyOptions(ctx);
  const http::Request& req = ctx.request;
  const semantic::TextMode mode = sc.textMode();
  auto describe = [&req, &opts, mode]() -> Result<std::optional<semantic::SemanticRequest>> {
    auto parsed = parseJson(req.body());
    if (!parsed) return std::optional<semantic::SemanticRequest>{};
    return semantic::describeRequest(*parsed, opts, mode);
  };
  Result<std::optional<semantic::SemanticRequest>> described =
      std::optional<semantic::SemanticRequest>{};
  if (req.body().size() > KeyMemo::kMaxBodyBytes) {
    auto job = offload(keyPool_, describe);
    described = co_await std::move(job);
  } else {
    described = describe();
  }
  if (!described || !*described || !sc.eligible(**described)) co_return false;
  auto state = std::make_shared<SemanticState>();
  state->request = std::move(**described);
  state->credential = std::string(req[bhttp::field::authorization]);
  ctx.semantic = state;
  if (sc.shadow()) sc.shadowStats().observeMiss(ctx.info.model);
  if (!*threshold || ctx.cacheControl.noCache) co_return false;
  auto embedded = co_await sc.embed(state->request.text, state->credential);
  if (!embedded) {
    warnLimited(upstreamLog_, "semantic: {}", embedded.error().message);
    co_return false;
  }
  state->vector = *embedded;
  auto match = sc.index().nearest(state->request.partition, **embedded, ctx.key.cacheKey);
  if (!match) co_return false;
  state->neighbour = match;
  if (!semantic::meetsThreshold(match->similarity, **threshold)) co_return false;
  cache::LookupOptions options;
  if (ctx.cacheControl.maxAge && *ctx.cacheControl.maxAge < INT64_MAX / 1000)
    options.storedNoEarlierThan =
        deps_.clock.now() - std::chrono::milliseconds(*ctx.cacheControl.maxAge * 1000);
  auto hit = co_await deps_.cache.lookup(match->cacheKey, match->requestHash, options);
  if (!hit) {
    // Gone from every tier (a vector the index kept too long): forgotten. Too old for this
    // request's max-age only: kept.
    if (!options.storedNoEarlierThan) sc.index().remove(match->cacheKey);
    state->neighbour.reset();
    co_return false;
  }
  ctx.answer = hit->entry;
  ctx.semanticHit = *match;
  sc.countServed(ctx.info.model, match->similarity, hit->entry->costTotal);
  co_await serveEntry(ctx, w, *hit->entry, Outcome::Hit, cache::tierName(hit->tier));
  co_return true;
}

net::awaitable<void> Gateway::indexStored(std::shared_ptr<SemanticState> state,
                                          cache::EntryPtr entry, key::Endpoint endpoint,
                                          std::string model) {
  SemanticCache& sc = *semantic_;
  struct Done {  // beginIndex() was called for this one; however it ends
    SemanticCache& sc;
    ~Done() { sc.endIndex(); }
  } done{sc};
  if (!state->vector) {
    auto embedded = co_await sc.embed(state->request.text, state->credential);
    if (!embedded) {
      warnLimited(upstreamLog_, "semantic: {}", embedded.error().message);
      co_return;
    }
    state->vector = *embedded;
  }
  std::optional<semantic::Match> neighbour = state->neighbour;
  if (sc.shadow() && !neighbour)
    neighbour = sc.index().nearest(state->request.partition, *state->vector, entry->cacheKey);
  // The insert takes the index's lock alone and may resize a graph: not on a request thread.
  auto insert = offload(sc.pool(), [&sc, state, key = entry->cacheKey, hash = entry->requestHash] {
    return sc.index().add(state->request.partition, key, hash, *state->vector);
  });
  const Result<void> added = co_await std::move(insert);
  if (!added) warnLimited(upstreamLog_, "{}", added.error().message);
  if (!sc.shadow()) co_return;
  auto parsed = parseJson(entry->response);
  std::string real = parsed ? semantic::answerText(endpoint, *parsed) : std::string();
  if (real.size() > SemanticCache::kMaxAnswerBytes) real.resize(SemanticCache::kMaxAnswerBytes);
  sc.rememberAnswer(entry->cacheKey, real);
  if (!neighbour || neighbour->cacheKey == entry->cacheKey) co_return;
  std::optional<std::string> stored = sc.rememberedAnswer(neighbour->cacheKey);
  if (!stored && deps_.peekStored) {
    // Not remembered (stored before this process started, or beyond the memory): read from the
    // disk tier without counting a use. The pool: a file read is not for a request thread.
    auto read =
        offload(sc.pool(), [this, key = neighbour->cacheKey] { return deps_.peekStored(key); });
    const cache::EntryPtr found = co_await std::move(read);
    if (found && found->requestHash == neighbour->requestHash) {
      auto answer = parseJson(found->response);
      stored = answer ? semantic::answerText(endpoint, *answer) : std::string();
      if (stored->size() > SemanticCache::kMaxAnswerBytes)
        stored->resize(SemanticCache::kMaxAnswerBytes);
      sc.rememberAnswer(neighbour->cacheKey, *stored);
    }
  }
  if (!stored) co_return;  // gone from the disk tier too: no figure rather than a guess
  semantic::ShadowPair pair{.model = std::move(model),
                            .similarity = neighbour->similarity,
                            .exactEqual = *stored == real,
                            .answerSimilarity = 1.0f,
                            .cost = entry->costTotal};
  if (!pair.exactEqual) {
    pair.answerSimilarity = 0;
    if (!real.empty() && !stored->empty()) {
      auto a = co_await sc.embed(real, state->credential);
      auto b = co_await sc.embed(*stored, state->credential);
      if (!a || !b) co_return;  // no figure rather than a wrong one
      pair.answerSimilarity = semantic::cosine(**a, **b);
    }
  }
  sc.shadowStats().record(pair);
}

std::pair<bhttp::status, std::string> Gateway::upstreamFailed(const Error& error) {
  upstreamErrors_.fetch_add(1, std::memory_order_relaxed);
  // The detail (the upstream's URL, libcurl's words) is for the operator's log: the client
  // learns what happened, not where the gateway sends its requests.
  warnLimited(upstreamLog_, "{}", error.message);
  if (error.code == Errc::Timeout)
    return {bhttp::status::gateway_timeout,
            "upstream request failed: the provider did not answer in time"};
  return {bhttp::status::bad_gateway,
          "upstream request failed: the provider could not be reached or broke off the exchange"};
}

}  // namespace llmcache::gateway
