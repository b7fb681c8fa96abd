#include "index/schema.h"

#include <sqlite3.h>

#include <array>
#include <string>

namespace llmcache::index {

namespace {

// Version 1: entries (one row per stored answer) and entry_tags (its tags, for lookups).
constexpr std::string_view kV1 = R"sql(
CREATE TABLE entries (
  cache_id      TEXT PRIMARY KEY NOT NULL,
  cache_key     TEXT NOT NULL,
  request_hash  TEXT NOT NULL,
  model         TEXT NOT NULL DEFAULT '',
  platform      TEXT NOT NULL DEFAULT '',
  provider      TEXT NOT NULL DEFAULT '',
  endpoint      TEXT NOT NULL DEFAULT '',
  namespace     TEXT NOT NULL DEFAULT '',
  tags          TEXT NOT NULL DEFAULT '[]',
  created       INTEGER NOT NULL,
  expires       INTEGER,
  last_accessed INTEGER NOT NULL,
  hit_count     INTEGER NOT NULL DEFAULT 0,
  size_stored   INTEGER NOT NULL DEFAULT 0,
  size_raw      INTEGER NOT NULL DEFAULT 0,
  tokens_in     INTEGER NOT NULL DEFAULT 0,
  tokens_out    INTEGER NOT NULL DEFAULT 0,
  cost_total    REAL NOT NULL DEFAULT 0,
  latency_ms    INTEGER NOT NULL DEFAULT 0,
  tiers         INTEGER NOT NULL DEFAULT 0,
  invalid       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX entries_by_key ON entries(cache_key);
CREATE INDEX entries_by_hash ON entries(request_hash, created);
CREATE INDEX entries_by_created ON entries(created, cache_id);
CREATE INDEX entries_by_model ON entries(model, created, cache_id);
CREATE INDEX entries_by_namespace ON entries(namespace, created, cache_id);
CREATE INDEX entries_by_expires ON entries(expires) WHERE expires IS NOT NULL;
CREATE TABLE entry_tags (
  cache_id TEXT NOT NULL REFERENCES entries(cache_id) ON DELETE CASCADE,
  tag      TEXT NOT NULL,
  PRIMARY KEY (cache_id, tag)
) WITHOUT ROWID;
CREATE INDEX entry_tags_by_tag ON entry_tags(tag, cache_id);
)sql";

// Version 2: events (one row per request, written by analytics::EventRecorder) and each entry's
// prompt signature (SimHash of the normalized last user message, plus a short preview) for the
// near-duplicate finder.
constexpr std::string_view kV2 = R"sql(
CREATE TABLE events (
  id               INTEGER PRIMARY KEY,
  time             INTEGER NOT NULL,
  cache_key        TEXT NOT NULL DEFAULT '',
  model            TEXT NOT NULL DEFAULT '',
  platform         TEXT NOT NULL DEFAULT '',
  provider         TEXT NOT NULL DEFAULT '',
  endpoint         TEXT NOT NULL DEFAULT '',
  outcome          TEXT NOT NULL,
  tier             TEXT NOT NULL DEFAULT '',
  latency_ms       REAL NOT NULL DEFAULT 0,
  tokens_in        INTEGER NOT NULL DEFAULT 0,
  tokens_out       INTEGER NOT NULL DEFAULT 0,
  cost             REAL NOT NULL DEFAULT 0,
  cost_saved       REAL NOT NULL DEFAULT 0,
  latency_saved_ms INTEGER NOT NULL DEFAULT 0,
  caller_hash      TEXT NOT NULL DEFAULT '',
  prompt_category  TEXT NOT NULL DEFAULT '',
  prompt_simhash   INTEGER
);
CREATE INDEX events_by_time ON events(time);
CREATE INDEX events_by_key ON events(cache_key, time);
ALTER TABLE entries ADD COLUMN prompt_simhash INTEGER;
ALTER TABLE entries ADD COLUMN prompt_preview TEXT NOT NULL DEFAULT '';
)sql";

// Version 3: each entry's tenant (the scope in its key: a keyed hash of the caller's credential
// or a header value; empty when unscoped), for listing one tenant's entries.
constexpr std::string_view kV3 = R"sql(
ALTER TABLE entries ADD COLUMN tenant TEXT NOT NULL DEFAULT '';
CREATE INDEX entries_by_tenant ON entries(tenant, created, cache_id);
)sql";

// Version 4: events clustered by time. The id becomes (time << 20) | a 20-bit sequence number,
// so the table's own b-tree is in time order: time windows are id ranges, and the two secondary
// indexes go (events_by_time, and events_by_key, which no query needed). Each index was a second
// b-tree insert per event: the events writer's CPU per row went from 2.2 us to ~1.4-1.6 us
// (build/bench/events_bench), and the writer runs beside the request threads.
constexpr std::string_view kV4 = R"sql(
CREATE TABLE events_v4 (
  id               INTEGER PRIMARY KEY,
  time             INTEGER NOT NULL,
  cache_key        TEXT NOT NULL DEFAULT '',
  model            TEXT NOT NULL DEFAULT '',
  platform         TEXT NOT NULL DEFAULT '',
  provider         TEXT NOT NULL DEFAULT '',
  endpoint         TEXT NOT NULL DEFAULT '',
  outcome          TEXT NOT NULL,
  tier             TEXT NOT NULL DEFAULT '',
  latency_ms       REAL NOT NULL DEFAULT 0,
  tokens_in        INTEGER NOT NULL DEFAULT 0,
  tokens_out       INTEGER NOT NULL DEFAULT 0,
  cost             REAL NOT NULL DEFAULT 0,
  cost_saved       REAL NOT NULL DEFAULT 0,
  latency_saved_ms INTEGER NOT NULL DEFAULT 0,
  caller_hash      TEXT NOT NULL DEFAULT '',
  prompt_category  TEXT NOT NULL DEFAULT '',
  prompt_simhash   INTEGER
);
INSERT OR IGNORE INTO events_v4
  SELECT (max(time, 0) << 20) | (id & 1048575), time, cache_key, model, platform, provider, endpoint, outcome,
         tier, latency_ms, tokens_in, tokens_out, cost, cost_saved, latency_saved_ms, caller_hash,
         prompt_category, prompt_simhash
  FROM events;
DROP TABLE events;
ALTER TABLE events_v4 RENAME TO events;
)sql";

// Version 5: an events row may stand for several requests: `requests` is how many, and its
// additive columns (latency_ms, tokens, cost, cost_saved, latency_saved_ms) are their totals. The
// events writer merges the hits on one key by one caller within one second into one row
// (docs/analytics.md, Storage): a hot key no longer writes a row per request. Old rows are 1.
constexpr std::string_view kV5 = R"sql(
ALTER TABLE events ADD COLUMN requests INTEGER NOT NULL DEFAULT 1;
)sql";

// Version 6: what /cache/patterns needs to count, per tenant, the requests that `seed` key
// normalization would have merged (docs/analytics.md, normalize_prompts): each event's tenant
// and namespace (the key's scope and x-llmcache-namespace, as on entries) and seed_hash, the
// first 64 bits of the request_hash the request would have had under `seed` normalization
// (NULL: not known, e.g. rows from before this version). Old rows read as unscoped ('').
constexpr std::string_view kV6 = R"sql(
ALTER TABLE events ADD COLUMN tenant TEXT NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN namespace TEXT NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN seed_hash INTEGER;
)sql";

// Version 7: whether a HIT was served by similarity (x-llmcache-match: semantic, docs/semantic.md)
// rather than by its key, so /cache/analytics can count semantic hits apart (they stay hits).
// Old rows read as exact (0): no semantic hit was told apart before this version.
constexpr std::string_view kV7 = R"sql(
ALTER TABLE events ADD COLUMN semantic INTEGER NOT NULL DEFAULT 0;
)sql";

constexpr std::array kMigrations = {Migration{1, kV1}, Migration{2, kV2}, Migration{3, kV3},
                                    Migration{4, kV4}, Migration{5, kV5}, Migration{6, kV6},
                                    Migration{7, kV7}};
static_assert(kMigrations.back().version == kSchemaVersion);

Error sqlError(sqlite3* db, int rc, std::string what) {
  const int primary = rc & 0xff;
  const Errc code =
      (primary == SQLITE_NOTADB || primary == SQLITE_CORRUPT) ? Errc::Corrupt : Errc::Io;
  return makeError(code, "index: " + what + ": " + sqlite3_errmsg(db));
}

Result<void> exec(sqlite3* db, const std::string& sql, const std::string& what) {
  char* msg = nullptr;
  const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &msg);
  if (rc == SQLITE_OK) return {};
  Error e = sqlError(db, rc, what);
  if (msg) {
    e.message = "index: " + what + ": " + msg;
    sqlite3_free(msg);
  }
  return e;
}

Result<int> userVersion(sqlite3* db) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &stmt, nullptr);
  if (rc != SQLITE_OK) return sqlError(db, rc, "reading the schema version");
  rc = sqlite3_step(stmt);
  const int v = rc == SQLITE_ROW ? sqlite3_column_int(stmt, 0) : 0;
  sqlite3_finalize(stmt);
  if (rc != SQLITE_ROW) return sqlError(db, rc, "reading the schema version");
  return v;
}

}  // namespace

std::span<const Migration> migrations() { return kMigrations; }

Result<int> migrate(sqlite3* db, std::span<const Migration> steps) {
  auto current = userVersion(db);
  if (!current) return current.error();
  const int last = steps.empty() ? 0 : steps.back().version;
  if (*current > last)
    return makeError(Errc::Corrupt, "index: schema version " + std::to_string(*current) +
                                        " is newer than this build's " + std::to_string(last));
  int version = *current;
  for (const Migration& m : steps) {
    if (m.version <= version) continue;
    if (m.version != version + 1)
      return makeError(Errc::Io, "index: migration steps skip from version " +
                                     std::to_string(version) + " to " + std::to_string(m.version));
    const std::string what = "migrating to schema version " + std::to_string(m.version);
    // IMMEDIATE: take the write lock first, so two processes opening one new file do not both
    // run the step (the second waits, then sees the new version and skips it).
    if (auto r = exec(db, "BEGIN IMMEDIATE", what); !r) return r.error();
    auto again = userVersion(db);
    if (!again) {
      (void)exec(db, "ROLLBACK", what);
      return again.error();
    }
    if (*again >= m.version) {
      (void)exec(db, "ROLLBACK", what);
      version = *again;
      continue;
    }
    auto r = exec(db, std::string(m.sql), what);
    if (r) r = exec(db, "PRAGMA user_version = " + std::to_string(m.version), what);
    if (r) r = exec(db, "COMMIT", what);
    if (!r) {
      (void)exec(db, "ROLLBACK", what);
      return r.error();
    }
    version = m.version;
  }
  return version;
}

}  // namespace llmcache::index
