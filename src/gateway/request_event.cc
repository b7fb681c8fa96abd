// The analytics event of a request: one per request, recorded once its outcome is final.
#include "gateway/context.h"

namespace llmcache::gateway {

void Gateway::settle(Context& ctx, Outcome outcome) {
  ctx.outcome = outcome;
  recordEvent(ctx);
}

void Gateway::offerToSizing(const Context& ctx) {
  // A reference of the curves: a request the cache could have answered (cacheable) that ended
  // with an entry (a hit's, a coalesced answer's, or the one a miss stored). A sampled-out key
  // costs a hash and a comparison here.
  if (!deps_.sizing || !ctx.answer || !analytics::isCacheable(*ctx.outcome)) return;
  const cache::Entry& entry = *ctx.answer;
  const uint64_t hash = sizing::keyHash(ctx.key.cacheKey);
  if (!deps_.sizing->offer(hash, entry.costTotal)) return;
  // The size is kept from a key's first sampled reference, nearly always the miss that stored
  // it: measured exactly there (the memory tier's charge packs the entry, a copy of the answer),
  // estimated without a copy on a hit (a key first seen on a hit: after a restart, or a disk hit).
  const bool hit = *ctx.outcome == Outcome::Hit;
  const uint64_t bytes = !hit && deps_.entryBytes ? deps_.entryBytes(entry)
                                                  : entry.approxBytes() - entry.request.capacity();
  deps_.sizing->reference(hash, bytes, entry.costTotal, deps_.clock.now());
}

void Gateway::recordEvent(Context& ctx) {
  if (!ctx.outcome || ctx.recorded) return;
  ctx.recorded = true;
  if (deps_.sizing && !ctx.key.cacheKey.empty()) offerToSizing(ctx);
  if (!deps_.recorder && !deps_.metrics && !deps_.fleetCounters) return;
  analytics::Event e;
  e.time = deps_.clock.now();
  e.cacheKey = ctx.key.cacheKey;
  e.model = ctx.info.model;
  e.platform = ctx.route.platform;
  e.provider = upstream::providerOf(ctx.info.model);
  if (ctx.route.endpoint) e.endpoint = std::string(key::endpointName(*ctx.route.endpoint));
  e.outcome = *ctx.outcome;
  e.tier = ctx.tier;
  e.semantic = ctx.semanticHit.has_value();
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
  e.callerHash = ctx.controls.callerHash;
  e.tenant = ctx.controls.tenant;
  e.keyNamespace = ctx.controls.keyNamespace;
  if (ctx.keyInfo) {
    e.seedHash = ctx.keyInfo->seedHash;
    e.promptCategory = ctx.keyInfo->promptCategory;
    e.promptSimhash = ctx.keyInfo->promptSimhash;
    e.promptPreview = ctx.keyInfo->promptPreview;
  }
  if (deps_.metrics) deps_.metrics->observe(e);
  if (deps_.fleetCounters) deps_.fleetCounters->observe(e);
  if (deps_.recorder) deps_.recorder->record(e);
}

}  // namespace llmcache::gateway
