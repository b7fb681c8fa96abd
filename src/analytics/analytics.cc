#include "analytics/analytics.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>
#include <stdexcept>
#include <string>

namespace llmcache::analytics {

namespace {

using index::SqlValue;
using Rows = std::vector<std::vector<SqlValue>>;

// The queries' SQL is written with {NAME} placeholders and expanded once per query (SQL(), a
// function-local static each), so that the outcome names and the predicates that group them
// come from the Outcome enum (outcome.h) and nowhere else:
//   {WIN}        the window. Every events query takes it as ?1 (from, inclusive) and ?2 (to,
//                exclusive), as event ids: an event's id is (time << 20) | sequence
//                (docs/index-schema.md), so a time window is a range of the table's own b-tree.
//   {REQUESTS}   the requests of the rows: a row stands for `requests` requests (merged hits,
//                schema version 5), its cost and token columns are their totals, so requests
//                are counted with SUM(requests), never COUNT(*).
//   {CACHEABLE}  the row is a cacheable request (isCacheable): outcome NOT IN ('BYPASS',...).
//   {HITS}       the hits among the rows' requests.
//   {SEMANTIC}   the row is a semantic hit: a HIT served by similarity (schema version 7), one
//                of the hits, counted apart too. {SEMANTIC_HITS}: those among the rows' requests.
//   {HIT}, {MISS}, ... (every outcomeName): that outcome as an SQL string, 'HIT'.
std::string expandSql(std::string_view text) {
  static const std::map<std::string, std::string, std::less<>> fragments = [] {
    std::map<std::string, std::string, std::less<>> f;
    f["WIN"] = "id >= ?1 AND id < ?2";
    f["REQUESTS"] = "SUM(requests)";
    f["CACHEABLE"] = "outcome NOT IN " + sqlOutcomeList([](Outcome o) { return !isCacheable(o); });
    f["HITS"] =
        "SUM(CASE WHEN outcome = " + sqlOutcome(Outcome::Hit) + " THEN requests ELSE 0 END)";
    f["SEMANTIC"] = "(outcome = " + sqlOutcome(Outcome::Hit) + " AND semantic <> 0)";
    f["SEMANTIC_HITS"] = "SUM(CASE WHEN " + f["SEMANTIC"] + " THEN requests ELSE 0 END)";
    for (const Outcome o : kOutcomes) f[std::string(outcomeName(o))] = sqlOutcome(o);
    return f;
  }();
  std::string out;
  size_t at = 0;
  for (size_t open; (open = text.find('{', at)) != std::string_view::npos;) {
    const size_t close = text.find('}', open);
    const auto it = close == std::string_view::npos
                        ? fragments.end()
                        : fragments.find(text.substr(open + 1, close - open - 1));
    if (it == fragments.end())  // a typo in a query below: every query runs in analytics_test
      throw std::logic_error("analytics: unknown SQL placeholder in: " + std::string(text));
    out.append(text.substr(at, open - at)).append(it->second);
    at = close + 1;
  }
  return out.append(text.substr(at));
}

// The query `text` (a literal), expanded on first use.
#define SQL(text)                                        \
  ([]() -> const std::string& {                          \
    static const std::string expanded = expandSql(text); \
    return expanded;                                     \
  }())

constexpr int64_t kHourMs = 3'600'000;
constexpr int64_t kDayMs = 86'400'000;
constexpr std::array<std::string_view, 7> kWeekdays = {
    "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"};

int64_t asInt(const SqlValue& v) {
  if (auto* i = std::get_if<int64_t>(&v)) return *i;
  if (auto* d = std::get_if<double>(&v)) return static_cast<int64_t>(*d);
  return 0;
}
double asDouble(const SqlValue& v) {
  if (auto* d = std::get_if<double>(&v)) return *d;
  if (auto* i = std::get_if<int64_t>(&v)) return static_cast<double>(*i);
  return 0;
}
std::string asText(const SqlValue& v) {
  if (auto* s = std::get_if<std::string>(&v)) return *s;
  return {};
}

double ratio(double a, double b) { return b > 0 ? a / b : 0.0; }

Json jint(int64_t v) { return Json::integer(v); }
Json jnum(double v) { return Json::number(v); }
Json jstr(std::string s) { return Json::string(std::move(s)); }

class Sql {
 public:
  Sql(index::Index& index, const Query& q)
      : index_(index),
        window_{index::Index::eventIdBound(q.from ? toUnixMillis(*q.from)
                                                  : std::numeric_limits<int64_t>::min()),
                index::Index::eventIdBound(q.to ? toUnixMillis(*q.to)
                                                : std::numeric_limits<int64_t>::max())} {}

  // Runs sql with the window as ?1, ?2 and extra as ?3, ...
  Result<Rows> rows(std::string_view sql, std::vector<SqlValue> extra = {}) {
    std::vector<SqlValue> params{window_[0], window_[1]};
    for (auto& v : extra) params.push_back(std::move(v));
    Rows out;
    auto r =
        index_.query(sql, params, [&](const std::vector<SqlValue>& row) { out.push_back(row); });
    if (!r) return r.error();
    return out;
  }

 private:
  index::Index& index_;
  std::array<int64_t, 2> window_;
};

Json windowJson(const Query& q) {
  Json w = Json::object();
  w.set("from", q.from ? jstr(formatIso8601(*q.from)) : Json::null());
  w.set("to", q.to ? jstr(formatIso8601(*q.to)) : Json::null());
  return w;
}

// requests, hits, hit_rate, cost, cost_saved of rows (key, requests, hits, cost, cost_saved).
Json groupStats(const Rows& rows) {
  Json out = Json::object();
  for (const auto& r : rows) {
    const int64_t requests = asInt(r[1]), hits = asInt(r[2]);
    Json g = Json::object();
    g.set("requests", jint(requests))
        .set("hits", jint(hits))
        .set("hit_rate", jnum(ratio(static_cast<double>(hits), static_cast<double>(requests))))
        .set("cost", jnum(asDouble(r[3])))
        .set("cost_saved", jnum(asDouble(r[4])))
        .set("semantic_hits", jint(asInt(r[5])))
        .set("semantic_cost_saved", jnum(asDouble(r[6])));
    out.set(asText(r[0]), std::move(g));
  }
  return out;
}

Json trend(const Rows& rows, int64_t bucketMs, std::string_view name) {
  Json out = Json::array();
  for (const auto& r : rows) {
    const int64_t requests = asInt(r[1]), hits = asInt(r[2]);
    std::string when = formatIso8601(fromUnixMillis(asInt(r[0]) * bucketMs));
    if (bucketMs == kDayMs) when = when.substr(0, 10);
    Json t = Json::object();
    t.set(std::string(name), jstr(std::move(when)))
        .set("requests", jint(requests))
        .set("hits", jint(hits))
        .set("hit_rate", jnum(ratio(static_cast<double>(hits), static_cast<double>(requests))))
        .set("cost_saved", jnum(asDouble(r[3])));
    out.push(std::move(t));
  }
  return out;
}

struct Bucket {
  int64_t key = 0;
  int64_t requests = 0;
  int64_t hits = 0;
  double hitRate() const { return ratio(static_cast<double>(hits), static_cast<double>(requests)); }
};

Json hourJson(const Bucket& b) {
  Json o = Json::object();
  o.set("hour", jint(b.key))
      .set("requests", jint(b.requests))
      .set("hits", jint(b.hits))
      .set("hit_rate", jnum(b.hitRate()));
  return o;
}

Json firstN(const std::vector<Bucket>& v, size_t n) {
  Json out = Json::array();
  for (size_t i = 0; i < v.size() && i < n; ++i) out.push(hourJson(v[i]));
  return out;
}

// Union-find over indexes.
struct Groups {
  std::vector<size_t> parent;
  explicit Groups(size_t n) : parent(n) { std::iota(parent.begin(), parent.end(), 0); }
  size_t find(size_t i) {
    while (parent[i] != i) i = parent[i] = parent[parent[i]];
    return i;
  }
  void join(size_t a, size_t b) { parent[find(a)] = find(b); }
};

// "high" / "medium" / "low" for money that an opportunity could have saved in the window.
const char* impactOfSavings(double usd) {
  return usd >= 1.0 ? "high" : usd >= 0.01 ? "medium" : "low";
}

// optimization_opportunities in the seed's shape (docs/analytics.md): one list of items, each with
// `type`, `impact`, `description`, and `potential_savings` (money) or `model`,
// `current_hit_rate` and `suggested_ttl` (a TTL item); every field of the detailed item
// (optimization_details) kept beside them. Most money first, then TTL items by hit rate.
Json opportunityList(const Json& details) {
  struct Item {
    double savings;  // -1 for TTL items
    double hitRate;
    Json json;
  };
  std::vector<Item> items;
  auto withExtras = [](Json item, const Json& from) {
    const auto keys = from.keys();
    const auto values = from.items();
    for (size_t i = 0; i < values.size(); ++i)
      if (!item.find(keys[i])) item.set(keys[i], values[i]);
    return item;
  };
  auto usd = [](double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "$%.4f", v);
    return std::string(buf);
  };
  for (const Json& t : details.find("normalize_prompts")->items()) {
    const double saved = t.getDouble("cost_saved_usd").value_or(0);
    const int64_t merged = t.getInt("requests_merged").value_or(0);
    const std::string tenant(t.getString("tenant").value_or(""));
    std::string text = (tenant.empty() ? std::string("Unscoped requests") : "Tenant " + tenant) +
                       ": " + std::to_string(merged) +
                       " misses differed from an earlier request only in whitespace or letter "
                       "case; the seed key normalization would have answered them from the cache "
                       "(it also merges requests whose answers can differ)";
    Json item = Json::object()
                    .set("type", Json::string("normalize_prompts"))
                    .set("impact", Json::string(impactOfSavings(saved)))
                    .set("description", Json::string(text))
                    .set("potential_savings", Json::number(saved));
    items.push_back({saved, 0, withExtras(std::move(item), t)});
  }
  for (const Json& g : details.find("near_duplicates")->items()) {
    const double saved = g.getDouble("potential_savings").value_or(0);
    const Json* keys = g.find("cache_keys");
    const size_t n = keys && keys->isArray() ? keys->size() : 0;
    std::string text = std::to_string(n) + " near-duplicate prompts for " +
                       std::string(g.getString("model").value_or("")) +
                       ": moving the varying part out of the prompt could have saved " + usd(saved);
    Json item = Json::object()
                    .set("type", Json::string("near_duplicates"))
                    .set("impact", Json::string(impactOfSavings(saved)))
                    .set("description", Json::string(text))
                    .set("potential_savings", Json::number(saved));
    items.push_back({saved, 0, withExtras(std::move(item), g)});
  }
  for (const Json& m : details.find("low_hit_rate_models")->items()) {
    const double rate = m.getDouble("hit_rate").value_or(0);
    const Json* ttl = m.find("suggested_ttl_seconds");
    Json item =
        Json::object()
            .set("type", Json::string("increase_ttl"))
            .set("impact", Json::string(rate < 0.1   ? "high"
                                        : rate < 0.3 ? "medium"
                                                     : "low"))
            .set("description", Json::string(std::string(m.getString("model").value_or("")) + ": " +
                                             std::string(m.getString("reason").value_or(""))))
            .set("model", *m.find("model"))
            .set("current_hit_rate", Json::number(rate))
            .set("suggested_ttl", ttl ? *ttl : Json::null());
    items.push_back({-1, rate, withExtras(std::move(item), m)});
  }
  std::stable_sort(items.begin(), items.end(), [](const Item& a, const Item& b) {
    if (a.savings != b.savings) return a.savings > b.savings;
    return a.hitRate < b.hitRate;
  });
  Json list = Json::array();
  for (Item& i : items) list.push(std::move(i.json));
  return list;
}

// optimization_opportunities.normalize_prompts (docs/analytics.md): per tenant, the MISSes that
// `seed` key normalization would have merged with an earlier request, and their cost. A MISS
// counts when an earlier request of its tenant in the window had the same seed_hash (the
// request_hash under `seed`: same tenant, namespace, model, parameters and texts up to
// whitespace and letter case) but another cache_key, and left an answer in the cache (HIT,
// MISS, COALESCED, REFRESH). One pass: per (tenant, seed_hash), in id (time) order, the smallest
// and largest cache_key of the earlier such requests; the MISS counts when either differs from
// its own key. Events without a seed_hash (NULL: the gateway did not give one) never count.
Result<Json> normalizePrompts(Sql& sql, size_t maxTenants) {
  auto merged = sql.rows(SQL(
      "SELECT tenant, namespace, SUM(requests), SUM(cost) FROM ("
      "SELECT tenant, namespace, outcome, requests, cost, cache_key, "
      "MIN(CASE WHEN outcome IN ({HIT}, {MISS}, {COALESCED}, {REFRESH}) THEN cache_key END) "
      "OVER earlier AS lo, "
      "MAX(CASE WHEN outcome IN ({HIT}, {MISS}, {COALESCED}, {REFRESH}) THEN cache_key END) "
      "OVER earlier AS hi "
      "FROM events WHERE {WIN} AND seed_hash IS NOT NULL AND seed_hash <> 0 AND cache_key <> '' "
      "WINDOW earlier AS (PARTITION BY tenant, seed_hash ORDER BY id "
      "ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)) "
      "WHERE outcome = {MISS} AND (lo <> cache_key OR hi <> cache_key) "
      "GROUP BY tenant, namespace"));
  if (!merged) return merged.error();
  struct Namespace {
    std::string name;
    int64_t requests = 0;
    double cost = 0;
  };
  struct Tenant {
    std::string name;
    int64_t requests = 0;
    double cost = 0;
    std::vector<Namespace> namespaces;
  };
  auto before = [](const auto& a, const auto& b) {  // most saved first, then most merged, name
    if (a.cost != b.cost) return a.cost > b.cost;
    if (a.requests != b.requests) return a.requests > b.requests;
    return a.name < b.name;
  };
  std::map<std::string, Tenant> byTenant;
  for (const auto& r : *merged) {
    Tenant& t = byTenant[asText(r[0])];
    t.name = asText(r[0]);
    t.namespaces.push_back({asText(r[1]), asInt(r[2]), asDouble(r[3])});
    t.requests += asInt(r[2]);
    t.cost += asDouble(r[3]);
  }
  std::vector<Tenant> tenants;
  for (auto& [name, t] : byTenant) {
    std::sort(t.namespaces.begin(), t.namespaces.end(), before);
    tenants.push_back(std::move(t));
  }
  std::sort(tenants.begin(), tenants.end(), before);
  Json out = Json::array();
  for (size_t i = 0; i < tenants.size() && i < maxTenants; ++i) {
    const Tenant& t = tenants[i];
    Json namespaces = Json::array();
    std::string named;  // the namespaces that can be given a mode: CACHE_KEY_NORMALIZE_NAMESPACES
    for (const Namespace& n : t.namespaces) {
      Json j = Json::object();
      j.set("namespace", jstr(n.name))
          .set("requests_merged", jint(n.requests))
          .set("cost_saved_usd", jnum(n.cost));
      namespaces.push(std::move(j));
      if (!n.name.empty()) named += (named.empty() ? "" : ",") + n.name + "=seed";
    }
    const std::string how =
        named.empty() ? "CACHE_KEY_NORMALIZE=seed (or send these requests with an "
                        "x-llmcache-namespace and set CACHE_KEY_NORMALIZE_NAMESPACES=<ns>=seed)"
                      : "CACHE_KEY_NORMALIZE_NAMESPACES=" + named + " or CACHE_KEY_NORMALIZE=seed";
    Json j = Json::object();
    j.set("tenant", jstr(t.name))
        .set("requests_merged", jint(t.requests))
        .set("cost_saved_usd", jnum(t.cost))
        .set("mode", jstr("seed"))
        .set("namespaces", std::move(namespaces))
        .set("how", jstr(how));
    out.push(std::move(j));
  }
  return out;
}

}  // namespace

Analytics::Analytics(index::Index& index, EventRecorder* recorder, AnalyticsOptions options)
    : index_(index), recorder_(recorder), options_(options) {}

void Analytics::flushSources() {
  if (options_.syncStores) options_.syncStores();
  if (recorder_)
    (void)recorder_->flush();  // a failed write is counted by the recorder; report what is there
  index_.flush();
}

Result<Json> Analytics::analytics(const Query& query) {
  flushSources();
  Sql sql(index_, query);

  auto totals = sql.rows(SQL(
      "SELECT COALESCE({REQUESTS}, 0), COALESCE(SUM(CASE WHEN {CACHEABLE} THEN requests END), 0), "
      "COALESCE({HITS}, 0), "
      "COALESCE(SUM(CASE WHEN outcome = {COALESCED} THEN requests END), 0), "
      "COALESCE(SUM(CASE WHEN outcome = {BYPASS} THEN requests END), 0), "
      "COALESCE(SUM(CASE WHEN outcome = {INVALID} THEN requests END), 0), "
      "COALESCE(SUM(CASE WHEN outcome = {HIT} THEN cost_saved END), 0.0), "
      "COALESCE(SUM(CASE WHEN outcome = {COALESCED} THEN cost_saved END), 0.0), "
      "COALESCE(SUM(CASE WHEN outcome = {HIT} THEN latency_saved_ms END) * 1.0 / {HITS}, 0.0), "
      "COUNT(DISTINCT CASE WHEN {CACHEABLE} THEN time / 86400000 END), "
      "COALESCE(SUM(CASE WHEN {CACHEABLE} THEN cost END), 0.0), "
      "COALESCE(SUM(CASE WHEN outcome = {HIT} THEN tokens_in + tokens_out END), 0), "
      "COALESCE({SEMANTIC_HITS}, 0), "
      "COALESCE(SUM(CASE WHEN {SEMANTIC} THEN cost_saved END), 0.0) "
      "FROM events WHERE {WIN}"));
  if (!totals) return totals.error();
  const auto& t = totals->at(0);
  const int64_t all = asInt(t[0]), total = asInt(t[1]), hits = asInt(t[2]), coalesced = asInt(t[3]);
  const double saved = asDouble(t[6]), savedCoalesced = asDouble(t[7]);
  const int64_t days = asInt(t[9]);

  auto outcomes = sql.rows(
      SQL("SELECT outcome, {REQUESTS} FROM events WHERE {WIN} GROUP BY outcome ORDER BY outcome"));
  if (!outcomes) return outcomes.error();
  Json outcomeJson = Json::object();
  for (const auto& r : *outcomes) outcomeJson.set(asText(r[0]), jint(asInt(r[1])));

  Json costSaved = Json::object();
  costSaved.set("total", jnum(saved))
      .set("coalesced", jnum(savedCoalesced))
      .set("daily_average", jnum(ratio(saved, static_cast<double>(days))))
      // Per the seed: the average saving of a request the cache answered (its hits).
      .set("per_request", jnum(ratio(saved, static_cast<double>(hits))));

  // Storage: what the index says is stored now (not windowed).
  auto storage =
      sql.rows(SQL("SELECT COUNT(*), COALESCE(SUM(size_stored), 0), COALESCE(SUM(size_raw), 0), "
                   "COALESCE(SUM(hit_count), 0) "
                   "FROM entries WHERE invalid = 0 AND tiers <> 0"));
  if (!storage) return storage.error();
  const auto& s = storage->at(0);
  const double stored = asDouble(s[1]), raw = asDouble(s[2]);
  Json storageJson = Json::object();
  storageJson.set("entries", jint(asInt(s[0])))
      .set("bytes_stored", jint(asInt(s[1])))
      .set("bytes_raw", jint(asInt(s[2])))
      .set("ratio", jnum(ratio(raw, stored)))
      .set("hits_per_stored_mb", jnum(ratio(asDouble(s[3]), stored / (1024.0 * 1024.0))));

  const auto limit = static_cast<int64_t>(options_.topKeys);
  auto hot = sql.rows(
      SQL("SELECT cache_key, model, hit_count, hit_count * cost_total, last_accessed, size_stored "
          "FROM entries WHERE invalid = 0 AND hit_count > 0 ORDER BY hit_count DESC, cache_key "
          "LIMIT ?3"),
      {limit});
  if (!hot) return hot.error();
  Json hotJson = Json::array();
  for (const auto& r : *hot) {
    Json k = Json::object();
    k.set("cache_key", jstr(asText(r[0])))
        .set("model", jstr(asText(r[1])))
        .set("hits", jint(asInt(r[2])))
        .set("cost_saved", jnum(asDouble(r[3])))
        .set("last_accessed", jstr(formatIso8601(fromUnixMillis(asInt(r[4])))))
        .set("size_stored", jint(asInt(r[5])));
    hotJson.push(std::move(k));
  }
  auto cold = sql.rows(
      SQL("SELECT cache_key, model, hit_count, created, last_accessed, size_stored FROM entries "
          "WHERE invalid = 0 ORDER BY hit_count ASC, created ASC, cache_key LIMIT ?3"),
      {limit});
  if (!cold) return cold.error();
  Json coldJson = Json::array();
  for (const auto& r : *cold) {
    Json k = Json::object();
    k.set("cache_key", jstr(asText(r[0])))
        .set("model", jstr(asText(r[1])))
        .set("hits", jint(asInt(r[2])))
        .set("created", jstr(formatIso8601(fromUnixMillis(asInt(r[3])))))
        .set("last_accessed", jstr(formatIso8601(fromUnixMillis(asInt(r[4])))))
        .set("size_stored", jint(asInt(r[5])));
    coldJson.push(std::move(k));
  }

  auto byModel = sql.rows(
      SQL("SELECT model, {REQUESTS}, {HITS}, SUM(cost), SUM(CASE WHEN outcome = {HIT} THEN "
          "cost_saved ELSE 0 END), {SEMANTIC_HITS}, SUM(CASE WHEN {SEMANTIC} THEN cost_saved "
          "ELSE 0 END) "
          "FROM events WHERE {WIN} AND {CACHEABLE} GROUP BY model ORDER BY 2 DESC, model"));
  if (!byModel) return byModel.error();
  auto byPlatform = sql.rows(
      SQL("SELECT platform, {REQUESTS}, {HITS}, SUM(cost), SUM(CASE WHEN outcome = {HIT} THEN "
          "cost_saved ELSE 0 END), {SEMANTIC_HITS}, SUM(CASE WHEN {SEMANTIC} THEN cost_saved "
          "ELSE 0 END) "
          "FROM events WHERE {WIN} AND {CACHEABLE} GROUP BY platform ORDER BY 2 DESC, platform"));
  if (!byPlatform) return byPlatform.error();

  auto hourly =
      sql.rows(SQL("SELECT time / 3600000, {REQUESTS}, {HITS}, SUM(CASE WHEN outcome = {HIT} THEN "
                   "cost_saved ELSE 0 END) "
                   "FROM events WHERE {WIN} AND {CACHEABLE} GROUP BY 1 ORDER BY 1"));
  if (!hourly) return hourly.error();
  auto daily =
      sql.rows(SQL("SELECT time / 86400000, {REQUESTS}, {HITS}, SUM(CASE WHEN outcome = {HIT} THEN "
                   "cost_saved ELSE 0 END) "
                   "FROM events WHERE {WIN} AND {CACHEABLE} GROUP BY 1 ORDER BY 1"));
  if (!daily) return daily.error();
  Json trends = Json::object();
  trends.set("hourly", trend(*hourly, kHourMs, "hour")).set("daily", trend(*daily, kDayMs, "day"));

  Json o = Json::object();
  o.set("window", windowJson(query))
      .set("total_requests", jint(total))
      .set("hits", jint(hits))
      // Among the hits, not beside them: a semantic hit is a HIT everywhere else too.
      .set("semantic_hits", jint(asInt(t[12])))
      .set("misses", jint(total - hits - coalesced))
      .set("coalesced", jint(coalesced))
      .set("hit_rate", jnum(ratio(static_cast<double>(hits), static_cast<double>(total))))
      .set("coalesced_rate",
           jnum(ratio(static_cast<double>(coalesced), static_cast<double>(total))))
      .set("requests_all", jint(all))
      .set("bypassed", jint(asInt(t[4])))
      .set("invalid", jint(asInt(t[5])))
      .set("outcomes", std::move(outcomeJson))
      .set("cost_spent", jnum(asDouble(t[10])))
      .set("cost_saved", std::move(costSaved))
      .set("semantic_cost_saved", jnum(asDouble(t[13])))
      .set("tokens_saved", jint(asInt(t[11])))
      .set("avg_latency_saved", jnum(asDouble(t[8])))
      .set("storage_efficiency", std::move(storageJson))
      .set("hot_keys", std::move(hotJson))
      .set("cold_keys", std::move(coldJson))
      .set("by_model", groupStats(*byModel))
      .set("by_platform", groupStats(*byPlatform))
      .set("trends", std::move(trends));
  return o;
}

Result<Json> Analytics::patterns(const Query& query) {
  flushSources();
  Sql sql(index_, query);

  // --- temporal ---
  auto hours =
      sql.rows(SQL("SELECT (time / 3600000) % 24, {REQUESTS}, {HITS} FROM events WHERE {WIN} AND "
                   "{CACHEABLE} GROUP BY 1"));
  if (!hours) return hours.error();
  std::vector<Bucket> byHour(24);
  int64_t total = 0;
  for (int h = 0; h < 24; ++h) byHour[static_cast<size_t>(h)].key = h;
  for (const auto& r : *hours) {
    auto& b = byHour[static_cast<size_t>(asInt(r[0]) % 24)];
    b.requests = asInt(r[1]);
    b.hits = asInt(r[2]);
    total += b.requests;
  }
  Json peak = Json::array(), low = Json::array(), best = Json::array();
  if (total > 0) {
    auto v = byHour;
    std::stable_sort(v.begin(), v.end(),
                     [](const Bucket& a, const Bucket& b) { return a.requests > b.requests; });
    std::vector<Bucket> active;
    for (const auto& b : v)
      if (b.requests > 0) active.push_back(b);
    peak = firstN(active, 3);
    v = byHour;
    std::stable_sort(v.begin(), v.end(),
                     [](const Bucket& a, const Bucket& b) { return a.requests < b.requests; });
    low = firstN(v, 3);
    std::vector<Bucket> eligible;
    for (const auto& b : byHour)
      if (b.requests >= options_.minRequests) eligible.push_back(b);
    std::stable_sort(eligible.begin(), eligible.end(), [](const Bucket& a, const Bucket& b) {
      if (a.hitRate() != b.hitRate()) return a.hitRate() > b.hitRate();
      return a.requests > b.requests;
    });
    best = firstN(eligible, 3);
  }
  auto weekdays =
      sql.rows(SQL("SELECT (time / 86400000 + 3) % 7, {REQUESTS}, {HITS} FROM events WHERE {WIN} "
                   "AND {CACHEABLE} GROUP BY 1"));
  if (!weekdays) return weekdays.error();
  std::array<Bucket, 7> byDay{};
  for (const auto& r : *weekdays) {
    auto& b = byDay[static_cast<size_t>(asInt(r[0]) % 7)];
    b.requests = asInt(r[1]);
    b.hits = asInt(r[2]);
  }
  Json weekly = Json::array();
  for (size_t d = 0; d < 7; ++d) {
    Json w = Json::object();
    w.set("weekday", jint(static_cast<int64_t>(d)))
        .set("name", jstr(std::string(kWeekdays[d])))
        .set("requests", jint(byDay[d].requests))
        .set("hits", jint(byDay[d].hits))
        .set("hit_rate", jnum(byDay[d].hitRate()));
    weekly.push(std::move(w));
  }
  // The hour-by-weekday matrix (the dashboard's heat map): only cells with requests, by weekday
  // then hour, as [weekday, hour, requests, hits] to keep 168 cells small.
  auto cells =
      sql.rows(SQL("SELECT (time / 86400000 + 3) % 7, (time / 3600000) % 24, {REQUESTS}, {HITS} "
                   "FROM events WHERE {WIN} AND {CACHEABLE} GROUP BY 1, 2 ORDER BY 1, 2"));
  if (!cells) return cells.error();
  Json heatmap = Json::array();
  for (const auto& r : *cells) {
    Json cell = Json::array();
    for (size_t i = 0; i < 4; ++i) cell.push(jint(asInt(r[i])));
    heatmap.push(std::move(cell));
  }
  Json temporal = Json::object();
  temporal.set("peak_hours", std::move(peak))
      .set("low_activity", std::move(low))
      .set("best_hit_rate_hours", std::move(best))
      .set("weekly_patterns", std::move(weekly))
      .set("heatmap", std::move(heatmap));

  // --- models and categories ---
  auto models =
      sql.rows(SQL("SELECT model, {REQUESTS}, {HITS} FROM events WHERE {WIN} AND {CACHEABLE} GROUP "
                   "BY model ORDER BY 2 DESC, model"));
  if (!models) return models.error();
  Json modelJson = Json::array();
  for (const auto& r : *models) {
    Json m = Json::object();
    m.set("model", jstr(asText(r[0])))
        .set("requests", jint(asInt(r[1])))
        .set("share", jnum(ratio(asDouble(r[1]), static_cast<double>(total))))
        .set("hits", jint(asInt(r[2])))
        .set("hit_rate", jnum(ratio(asDouble(r[2]), asDouble(r[1]))));
    modelJson.push(std::move(m));
  }
  auto categories = sql.rows(SQL(
      "SELECT CASE WHEN prompt_category = '' THEN 'other' ELSE prompt_category END AS c, "
      "{REQUESTS}, {HITS} FROM events WHERE {WIN} AND {CACHEABLE} GROUP BY c ORDER BY 2 DESC, c"));
  if (!categories) return categories.error();
  Json categoryJson = Json::array();
  for (const auto& r : *categories) {
    Json c = Json::object();
    c.set("category", jstr(asText(r[0])))
        .set("requests", jint(asInt(r[1])))
        .set("share", jnum(ratio(asDouble(r[1]), static_cast<double>(total))))
        .set("hits", jint(asInt(r[2])))
        .set("hit_rate", jnum(ratio(asDouble(r[2]), asDouble(r[1]))));
    categoryJson.push(std::move(c));
  }

  // --- callers ---
  auto users = sql.rows(
      SQL("SELECT caller_hash, {REQUESTS}, {HITS} FROM events WHERE {WIN} AND {CACHEABLE} AND "
          "caller_hash <> '' GROUP BY caller_hash ORDER BY 2 DESC, caller_hash LIMIT ?3"),
      {static_cast<int64_t>(options_.topUsers)});
  if (!users) return users.error();
  auto userModels = sql.rows(
      SQL("SELECT caller_hash, model, {REQUESTS} FROM events WHERE {WIN} AND {CACHEABLE} AND "
          "caller_hash <> '' GROUP BY caller_hash, model ORDER BY caller_hash, 3 DESC, model"));
  if (!userModels) return userModels.error();
  std::map<std::string, std::string> topModel;
  for (const auto& r : *userModels)
    topModel.try_emplace(asText(r[0]), asText(r[1]));  // first row: the most used
  Json userJson = Json::array();
  for (const auto& r : *users) {
    Json u = Json::object();
    const std::string caller = asText(r[0]);
    u.set("caller_hash", jstr(caller))
        .set("requests", jint(asInt(r[1])))
        .set("hits", jint(asInt(r[2])))
        .set("hit_rate", jnum(ratio(asDouble(r[2]), asDouble(r[1]))))
        .set("top_model", jstr(topModel[caller]));
    userJson.push(std::move(u));
  }

  // --- near-duplicate prompts over the entries' signatures ---
  // Candidates share model, endpoint and tenant: entries of two tenants never share one key
  // (the tenant is the key's scope), so their prompts are never near duplicates of each other.
  auto signed_ = sql.rows(
      SQL("SELECT cache_key, model, endpoint, prompt_simhash, prompt_preview, tenant FROM entries "
          "WHERE invalid = 0 AND prompt_simhash IS NOT NULL "
          "ORDER BY created DESC, cache_id DESC LIMIT ?3"),
      {static_cast<int64_t>(options_.maxSimilarityEntries)});
  if (!signed_) return signed_.error();
  const Rows& sigs = *signed_;
  Groups groups(sigs.size());
  for (size_t i = 0; i < sigs.size(); ++i)
    for (size_t j = i + 1; j < sigs.size(); ++j) {
      if (asText(sigs[i][1]) != asText(sigs[j][1]) || asText(sigs[i][2]) != asText(sigs[j][2]) ||
          asText(sigs[i][5]) != asText(sigs[j][5]))
        continue;
      if (hammingDistance(static_cast<uint64_t>(asInt(sigs[i][3])),
                          static_cast<uint64_t>(asInt(sigs[j][3]))) <= options_.nearDuplicateBits)
        groups.join(i, j);
    }
  std::map<size_t, std::vector<size_t>> members;
  for (size_t i = 0; i < sigs.size(); ++i) members[groups.find(i)].push_back(i);
  struct Group {
    Json json;
    double savings = 0;
    int64_t misses = 0;
    std::string firstKey;
  };
  std::vector<Group> found;
  for (auto& [root, idx] : members) {
    if (idx.size() < 2) continue;
    std::sort(idx.begin(), idx.end(),
              [&](size_t a, size_t b) { return asText(sigs[a][0]) < asText(sigs[b][0]); });
    int64_t misses = 0;
    double missCost = 0;
    std::optional<std::pair<int64_t, double>> earliest;  // (time, cost) of the group's first miss
    int maxDistance = 0;
    Json keys = Json::array(), previews = Json::array();
    for (size_t a : idx) {
      const std::string key = asText(sigs[a][0]);
      keys.push(jstr(key));
      previews.push(jstr(asText(sigs[a][4])));
      for (size_t b : idx)
        maxDistance =
            std::max(maxDistance, hammingDistance(static_cast<uint64_t>(asInt(sigs[a][3])),
                                                  static_cast<uint64_t>(asInt(sigs[b][3]))));
      auto m = sql.rows(SQL("SELECT COALESCE({REQUESTS}, 0), COALESCE(SUM(cost), 0.0) FROM events "
                            "WHERE {WIN} AND cache_key = ?3 AND outcome = {MISS}"),
                        {key});
      if (!m) return m.error();
      misses += asInt(m->at(0)[0]);
      missCost += asDouble(m->at(0)[1]);
      auto first = sql.rows(SQL("SELECT time, cost FROM events WHERE {WIN} AND cache_key = ?3 AND "
                                "outcome = {MISS} ORDER BY time, id LIMIT 1"),
                            {key});
      if (!first) return first.error();
      if (!first->empty()) {
        const std::pair<int64_t, double> f{asInt(first->at(0)[0]), asDouble(first->at(0)[1])};
        if (!earliest || f.first < earliest->first) earliest = f;
      }
    }
    const double savings = std::max(0.0, missCost - (earliest ? earliest->second : 0.0));
    Json g = Json::object();
    g.set("tenant", jstr(asText(sigs[idx[0]][5])))
        .set("model", jstr(asText(sigs[idx[0]][1])))
        .set("endpoint", jstr(asText(sigs[idx[0]][2])))
        .set("cache_keys", std::move(keys))
        .set("previews", std::move(previews))
        .set("max_distance", jint(maxDistance))
        .set("misses", jint(misses))
        .set("miss_cost", jnum(missCost))
        .set("potential_savings", jnum(savings));
    found.push_back({std::move(g), savings, misses, asText(sigs[idx[0]][0])});
  }
  std::sort(found.begin(), found.end(), [](const Group& a, const Group& b) {
    if (a.savings != b.savings) return a.savings > b.savings;
    if (a.misses != b.misses) return a.misses > b.misses;
    return a.firstKey < b.firstKey;
  });
  Json nearDuplicates = Json::array();
  for (size_t i = 0; i < found.size() && i < options_.maxNearDuplicateGroups; ++i)
    nearDuplicates.push(std::move(found[i].json));

  // --- what `seed` key normalization would have merged, per tenant ---
  auto normalize = normalizePrompts(sql, options_.maxNormalizeTenants);
  if (!normalize) return normalize.error();

  // --- models whose hit rate is low, with a TTL from how soon their keys repeat ---
  Json lowModels = Json::array();
  for (const auto& r : *models) {
    const int64_t requests = asInt(r[1]), hits = asInt(r[2]);
    const double rate = ratio(static_cast<double>(hits), static_cast<double>(requests));
    if (requests < options_.minRequests || rate >= options_.lowHitRate) continue;
    const std::string model = asText(r[0]);
    auto gaps =
        sql.rows(SQL("SELECT gap FROM (SELECT time - LAG(time) OVER (PARTITION BY cache_key "
                     "ORDER BY time, id) AS gap "
                     "FROM events WHERE {WIN} AND {CACHEABLE} AND model = ?3 AND cache_key <> '') "
                     "WHERE gap IS NOT NULL ORDER BY gap"),
                 {model});
    if (!gaps) return gaps.error();
    // Merged hits (a row of `requests` > 1) repeated their key within the row's second: each
    // counts as a repeat after 0 s (the smallest gaps, so they come first in the sorted list).
    auto merged = sql.rows(SQL("SELECT COALESCE(SUM(requests - 1), 0) FROM events WHERE {WIN} AND "
                               "{CACHEABLE} AND model = ?3 AND cache_key <> ''"),
                           {model});
    if (!merged) return merged.error();
    const size_t zeros = static_cast<size_t>(std::max<int64_t>(0, asInt(merged->at(0)[0])));
    auto gapAt = [&](size_t i) { return i < zeros ? 0.0 : asDouble((*gaps)[i - zeros][0]); };
    Json m = Json::object();
    m.set("model", jstr(model))
        .set("requests", jint(requests))
        .set("hits", jint(hits))
        .set("hit_rate", jnum(rate));
    m.set("repeated_requests", jint(static_cast<int64_t>(zeros + gaps->size())));
    if (zeros == 0 && gaps->empty()) {
      m.set("median_repeat_interval_seconds", Json::null())
          .set("suggested_ttl_seconds", Json::null())
          .set("reason",
               jstr("no request repeated a cache key in the window: a longer TTL cannot help; "
                    "see near_duplicates and normalize_prompts for prompts that differ only "
                    "slightly"));
    } else {
      const size_t n = zeros + gaps->size();
      const double medianMs = n % 2 ? gapAt(n / 2) : (gapAt(n / 2 - 1) + gapAt(n / 2)) / 2.0;
      const auto ttl =
          std::max<int64_t>(1, static_cast<int64_t>(std::ceil(2.0 * medianMs / 1000.0)));
      m.set("median_repeat_interval_seconds", jnum(medianMs / 1000.0))
          .set("suggested_ttl_seconds", jint(ttl))
          .set("reason",
               jstr("requests repeat a cache key after a median of " +
                    toJson(jnum(medianMs / 1000.0)) + " s: keep entries at least twice that long"));
    }
    lowModels.push(std::move(m));
  }
  Json details = Json::object();
  details.set("near_duplicates", std::move(nearDuplicates))
      .set("normalize_prompts", std::move(*normalize))
      .set("low_hit_rate_models", std::move(lowModels));
  Json opportunities = opportunityList(details);

  Json o = Json::object();
  o.set("window", windowJson(query))
      .set("total_requests", jint(total))
      .set("temporal", std::move(temporal))
      .set("model_distribution", std::move(modelJson))
      .set("prompt_categories", std::move(categoryJson))
      .set("user_patterns", std::move(userJson))
      .set("optimization_opportunities", std::move(opportunities))
      .set("optimization_details", std::move(details));
  return o;
}

}  // namespace llmcache::analytics
