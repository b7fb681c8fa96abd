#include "index/index.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <limits>
#include <random>
#include <system_error>
#include <thread>

#include "common/json.h"
#include "common/thread.h"
#include "index/schema.h"

namespace llmcache::index {

namespace fs = std::filesystem;

// A prepared statement borrowed from Index::statements_ for one use: reset and unbound when the
// borrow ends, so the next user finds it clean. Binding indexes are 1-based, as in SQLite.
class Index::Stmt {
 public:
  explicit Stmt(sqlite3_stmt* s) : s_(s) {}
  ~Stmt() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  void bind(int i, std::string_view v) {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  }
  // Binds without copying: the caller keeps the text alive until this Stmt is gone.
  void bindStatic(int i, std::string_view v) {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
  }
  void bind(int i, int64_t v) { sqlite3_bind_int64(s_, i, v); }
  void bind(int i, double v) { sqlite3_bind_double(s_, i, v); }
  void bindNull(int i) { sqlite3_bind_null(s_, i); }
  int step() { return sqlite3_step(s_); }
  void reset() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  sqlite3_stmt* get() const { return s_; }

 private:
  sqlite3_stmt* s_;
};

namespace {

constexpr const char* kColumns =
    "cache_id, cache_key, request_hash, model, platform, provider, endpoint, namespace, tags, "
    "created, expires, last_accessed, hit_count, size_stored, size_raw, tokens_in, tokens_out, "
    "cost_total, latency_ms, tiers, invalid, tenant";

std::string columnText(sqlite3_stmt* s, int i) {
  const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s, i));
  return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(s, i))) : std::string();
}

std::vector<std::string> parseTags(const std::string& text) {
  std::vector<std::string> tags;
  auto json = parseJson(text);
  if (!json || !json->isArray()) return tags;
  for (const Json& t : json->items())
    if (t.isString()) tags.emplace_back(t.text());
  return tags;
}

std::string tagsJson(const std::vector<std::string>& tags) {
  Json a = Json::array();
  for (const auto& t : tags) a.push(Json::string(t));
  return toJson(a);
}

Row readRow(sqlite3_stmt* s) {
  Row r;
  r.cacheId = columnText(s, 0);
  r.cacheKey = columnText(s, 1);
  r.requestHash = columnText(s, 2);
  r.model = columnText(s, 3);
  r.platform = columnText(s, 4);
  r.provider = columnText(s, 5);
  r.endpoint = columnText(s, 6);
  r.cacheNamespace = columnText(s, 7);
  r.tags = parseTags(columnText(s, 8));
  r.created = fromUnixMillis(sqlite3_column_int64(s, 9));
  if (sqlite3_column_type(s, 10) != SQLITE_NULL)
    r.expires = fromUnixMillis(sqlite3_column_int64(s, 10));
  r.lastAccessed = fromUnixMillis(sqlite3_column_int64(s, 11));
  r.hitCount = sqlite3_column_int64(s, 12);
  r.sizeStored = sqlite3_column_int64(s, 13);
  r.sizeRaw = sqlite3_column_int64(s, 14);
  r.tokensIn = sqlite3_column_int64(s, 15);
  r.tokensOut = sqlite3_column_int64(s, 16);
  r.costTotal = sqlite3_column_double(s, 17);
  r.latencyMs = sqlite3_column_int64(s, 18);
  r.tiers = static_cast<unsigned>(sqlite3_column_int64(s, 19));
  r.invalid = sqlite3_column_int64(s, 20) != 0;
  r.tenant = columnText(s, 21);
  return r;
}

Error rawSqlError(sqlite3* db, int rc, std::string_view what) {
  const int primary = rc & 0xff;
  const Errc code =
      (primary == SQLITE_NOTADB || primary == SQLITE_CORRUPT) ? Errc::Corrupt : Errc::Io;
  return makeError(
      code, "index: " + std::string(what) + ": " + (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc)));
}

// fnmatch(pattern, text) in SQL: the same globMatch that matches() uses, so SQL and memory agree.
void sqlFnmatch(sqlite3_context* ctx, int, sqlite3_value** argv) {
  const auto* p = reinterpret_cast<const char*>(sqlite3_value_text(argv[0]));
  const int pn = sqlite3_value_bytes(argv[0]);
  const auto* t = reinterpret_cast<const char*>(sqlite3_value_text(argv[1]));
  const int tn = sqlite3_value_bytes(argv[1]);
  if (!p || !t) {
    sqlite3_result_int(ctx, 0);
    return;
  }
  sqlite3_result_int(ctx,
                     globMatch({p, static_cast<size_t>(pn)}, {t, static_cast<size_t>(tn)}) ? 1 : 0);
}

// Runs a statement whose rows are single text values; collects them.
Result<std::vector<std::string>> textRows(sqlite3* db, const char* sql, std::string_view what) {
  sqlite3_stmt* s = nullptr;
  int rc = sqlite3_prepare_v2(db, sql, -1, &s, nullptr);
  if (rc != SQLITE_OK) return rawSqlError(db, rc, what);
  std::vector<std::string> out;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) out.push_back(columnText(s, 0));
  sqlite3_finalize(s);
  if (rc != SQLITE_DONE) return rawSqlError(db, rc, what);
  return out;
}

bool parseCursor(std::string_view cursor, int64_t& created, std::string& id) {
  const size_t dot = cursor.find('.');
  if (dot == std::string_view::npos || dot == 0 || dot + 1 >= cursor.size()) return false;
  auto r = std::from_chars(cursor.data(), cursor.data() + dot, created);
  if (r.ec != std::errc{} || r.ptr != cursor.data() + dot) return false;
  id = std::string(cursor.substr(dot + 1));
  return true;
}

// The index holds prompt previews, models, tags and tenants: the gateway user's alone. Makes the
// database file and any -wal and -shm files mode 0600 (files an older build left readable), and
// creates a missing database file so (an empty file is a new database); SQLite gives the -wal and
// -shm files it creates the database file's mode. A file that cannot be created here is left to
// sqlite3_open_v2 and its error.
Result<void> makePrivate(const fs::path& path) {
  constexpr mode_t kPrivate = S_IRUSR | S_IWUSR;
  for (const char* suffix : {"", "-wal", "-shm"}) {
    const std::string file = path.string() + suffix;
    struct stat st {};
    if (::stat(file.c_str(), &st) != 0 || (st.st_mode & 07777) == kPrivate) continue;
    // A read-only file system: nobody can change the files there, nor could we.
    if (::chmod(file.c_str(), kPrivate) != 0 && errno != EROFS)
      return makeError(Errc::Io, "index: making " + file + " private (mode 0600): " +
                                     std::generic_category().message(errno));
  }
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, kPrivate);
  if (fd >= 0) {
    (void)::fchmod(fd, kPrivate);  // whatever the umask took away
    ::close(fd);
  }
  return {};
}

}  // namespace

fs::path Index::defaultPath(const fs::path& cacheDir) { return cacheDir / "index.sqlite"; }

Result<void> Index::removeFiles(const fs::path& path) {
  for (const char* suffix : {"", "-wal", "-shm"}) {
    std::error_code ec;
    fs::remove(fs::path(path.string() + suffix), ec);
    if (ec)
      return makeError(Errc::Io, "index: removing " + path.string() + suffix + ": " + ec.message());
  }
  return {};
}

Result<std::unique_ptr<Index>> Index::open(const fs::path& path, IndexOptions options) {
  if (path.has_parent_path()) {
    std::error_code ec;
    fs::create_directories(path.parent_path(), ec);
    if (ec)
      return makeError(Errc::Io,
                       "index: creating " + path.parent_path().string() + ": " + ec.message());
  }
  // Before SQLite's first use in the process: no allocation statistics. They cost a global
  // mutex per SQLite allocation, ~1.3% of all CPU under a hit load (perf: the events writer).
  static const int configured = sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
  (void)configured;
  if (auto r = makePrivate(path); !r) return r.error();
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(
      path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  auto fail = [&](Error e) -> Result<std::unique_ptr<Index>> {
    sqlite3_close_v2(db);
    return e;
  };
  if (rc != SQLITE_OK) return fail(rawSqlError(db, rc, "opening " + path.string()));
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, static_cast<int>(options.busyTimeout.count()));
  rc = sqlite3_create_function_v2(db, "fnmatch", 2, SQLITE_UTF8 | SQLITE_DETERMINISTIC, nullptr,
                                  sqlFnmatch, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return fail(rawSqlError(db, rc, "registering fnmatch"));

  // The first statement that reads the file: a file that is not a database fails here (NOTADB).
  auto mode = textRows(db, "PRAGMA journal_mode=WAL", "setting WAL mode on " + path.string());
  if (!mode) return fail(mode.error());
  if (mode->empty() || (*mode)[0] != "wal")
    return fail(makeError(Errc::Io, "index: " + path.string() + " refused WAL mode"));
  for (const char* pragma : {"PRAGMA synchronous=NORMAL", "PRAGMA foreign_keys=ON"}) {
    rc = sqlite3_exec(db, pragma, nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) return fail(rawSqlError(db, rc, pragma));
  }
  if (options.integrityCheck) {
    auto check = textRows(db, "PRAGMA integrity_check(10)", "checking " + path.string());
    if (!check) return fail(check.error());
    if (check->size() != 1 || (*check)[0] != "ok") {
      std::string detail = check->empty() ? "no answer" : (*check)[0];
      return fail(makeError(Errc::Corrupt,
                            "index: " + path.string() + " fails integrity_check: " + detail));
    }
  }
  auto version = migrate(db, migrations());
  if (!version) return fail(version.error());
  // A database of the right version but someone else's tables is not ours to write into.
  auto tables = textRows(db,
                         "SELECT name FROM sqlite_master WHERE type='table' AND name IN "
                         "('entries','entry_tags','events')",
                         "reading the schema");
  if (!tables) return fail(tables.error());
  if (tables->size() != 3)
    return fail(makeError(Errc::Corrupt, "index: " + path.string() + " has schema version " +
                                             std::to_string(*version) + " but lacks its tables"));
  return std::unique_ptr<Index>(new Index(db, options, *version));
}

Index::Index(sqlite3* db, IndexOptions options, int schemaVersion)
    : db_(db), options_(options), schemaVersion_(schemaVersion) {
  if (options_.hitFlushBatch == 0) options_.hitFlushBatch = 1;
  // A random start: after a restart with the clock set back, ids of one millisecond still differ.
  eventSequence_ = std::random_device{}();
  hitWriter_ = std::thread([this] { hitWriterLoop(); });
  if (options_.backgroundCheckpoints) {
    // Replaces SQLite's automatic checkpoint (itself a WAL hook) with walHook.
    sqlite3_wal_hook(db_, &Index::walHook, this);
    const char* file = sqlite3_db_filename(db_, "main");
    checkpointer_ =
        std::thread([this, path = std::string(file ? file : "")] { checkpointLoop(path); });
  }
}

int Index::walHook(void* self, sqlite3* db, const char* name, int pages) {
  // After each commit on the writing connection, with the WAL's size in pages.
  if (pages >= kWalSafetyPages) {
    (void)sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
  } else if (pages >= kWalRaisePages) {
    auto* index = static_cast<Index*>(self);
    // The idle checkpointer gets no turn (busy cores): raise it until it has checkpointed.
    if (index->checkpointerIdle_.exchange(false))
      (void)setIdlePriority(index->checkpointerTid_.load(), false);
    {
      std::lock_guard lock(index->checkpointMutex_);
      index->checkpointNow_ = true;
    }
    index->checkpointCv_.notify_one();
  }
  return SQLITE_OK;
}

void Index::checkpointLoop(std::string path) {
  // Idle priority while the WAL stays small; walHook raises it to nice 10 past kWalRaisePages.
  // Where a thread may not leave SCHED_IDLE, it runs at nice 10 throughout.
  checkpointerTid_ = currentThreadId();
  lowerThreadPriority();
  const bool adaptive = canLeaveIdlePriority();
  auto goIdle = [&] {
    if (adaptive && setIdlePriority(checkpointerTid_, true)) checkpointerIdle_ = true;
  };
  goIdle();
  sqlite3* db = nullptr;
  if (path.empty() ||
      sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr) !=
          SQLITE_OK) {
    sqlite3_close_v2(db);
    return;  // walHook's safety checkpoints remain
  }
  sqlite3_wal_autocheckpoint(db, 0);
  sqlite3_busy_timeout(db, 0);
  // A connection sees the WAL only once it has read the file (before, a checkpoint does nothing).
  (void)sqlite3_exec(db, "PRAGMA journal_mode", nullptr, nullptr, nullptr);
  std::unique_lock lock(checkpointMutex_);
  while (!checkpointStop_) {
    checkpointCv_.wait_for(lock, options_.checkpointInterval,
                           [&] { return checkpointStop_ || checkpointNow_; });
    if (checkpointStop_) break;
    checkpointNow_ = false;
    lock.unlock();
    // PASSIVE: copies what no reader still needs, never waits for a lock. Busy is fine: next time.
    (void)sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    if (!checkpointerIdle_) goIdle();
    lock.lock();
  }
  lock.unlock();
  sqlite3_close_v2(db);
}

Index::~Index() {
  {
    std::lock_guard lock(hitWakeMutex_);
    stopping_ = true;
  }
  hitCv_.notify_all();
  hitWriter_.join();
  {
    std::lock_guard lock(checkpointMutex_);
    checkpointStop_ = true;
  }
  checkpointCv_.notify_all();
  if (checkpointer_.joinable()) {
    // At idle priority it could wait long for a free core just to see that it should stop.
    if (checkpointerIdle_.exchange(false)) (void)setIdlePriority(checkpointerTid_.load(), false);
    checkpointer_.join();
  }
  {
    std::lock_guard f(flushMutex_);
    drainHits();
  }
  std::lock_guard lock(dbMutex_);
  for (auto& [sql, stmt] : statements_) sqlite3_finalize(stmt);
  sqlite3_close_v2(db_);
}

Error Index::sqlError(int rc, std::string_view what) const { return rawSqlError(db_, rc, what); }

sqlite3_stmt* Index::prepared(const std::string& sql, Error& error) {
  if (auto it = statements_.find(sql); it != statements_.end()) return it->second;
  sqlite3_stmt* s = nullptr;
  const int rc = sqlite3_prepare_v3(db_, sql.c_str(), -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr);
  if (rc != SQLITE_OK) {
    error = sqlError(rc, "preparing a statement");
    return nullptr;
  }
  // Filter combinations are few (list) and the rest fixed, so the cache stays small.
  statements_.emplace(sql, s);
  return s;
}

Result<void> Index::execLocked(const char* sql) {
  const int rc = sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return sqlError(rc, sql);
  return {};
}

Result<void> Index::upsertLocked(const cache::Entry& e, unsigned tiers, size_t sizeStored,
                                 size_t sizeRaw) {
  {
    // An eviction of this key queued before this write is older than it: the bits set now stay.
    std::lock_guard lock(evictMutex_);
    if (auto it = pendingEvictions_.find(e.cacheKey); it != pendingEvictions_.end()) {
      it->second &= ~tiers;
      if (it->second == 0) pendingEvictions_.erase(it);
    }
  }
  Error err;
  static const std::string kReplaceKey =
      "DELETE FROM entries WHERE cache_key = ?1 AND cache_id <> ?2";
  static const std::string kUpsert =
      std::string("INSERT INTO entries(") + kColumns +
      ") VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19,?20,0,?21) "
      "ON CONFLICT(cache_id) DO UPDATE SET cache_key=excluded.cache_key, "
      "request_hash=excluded.request_hash, model=excluded.model, platform=excluded.platform, "
      "provider=excluded.provider, endpoint=excluded.endpoint, namespace=excluded.namespace, "
      "tenant=excluded.tenant, tags=excluded.tags, created=excluded.created, "
      "expires=excluded.expires, "
      "last_accessed=max(last_accessed, excluded.last_accessed), "
      "hit_count=max(hit_count, excluded.hit_count), "
      "size_stored=CASE WHEN ?22 THEN excluded.size_stored ELSE size_stored END, "
      "size_raw=excluded.size_raw, tokens_in=excluded.tokens_in, tokens_out=excluded.tokens_out, "
      "cost_total=excluded.cost_total, latency_ms=excluded.latency_ms, tiers=tiers | "
      "excluded.tiers";
  static const std::string kClearTags = "DELETE FROM entry_tags WHERE cache_id = ?1";
  static const std::string kAddTag =
      "INSERT OR IGNORE INTO entry_tags(cache_id, tag) VALUES(?1, ?2)";

  sqlite3_stmt* s = prepared(kReplaceKey, err);
  if (!s) return err;
  {
    Stmt st(s);
    st.bind(1, std::string_view(e.cacheKey));
    st.bind(2, std::string_view(e.cacheId));
    if (int rc = st.step(); rc != SQLITE_DONE)
      return sqlError(rc, "replacing rows of " + e.cacheKey);
  }
  if (!(s = prepared(kUpsert, err))) return err;
  {
    Stmt st(s);
    st.bind(1, std::string_view(e.cacheId));
    st.bind(2, std::string_view(e.cacheKey));
    st.bind(3, std::string_view(e.requestHash));
    st.bind(4, std::string_view(e.model));
    st.bind(5, std::string_view(e.platform));
    st.bind(6, std::string_view(e.provider));
    st.bind(7, std::string_view(e.endpoint));
    st.bind(8, std::string_view(e.cacheNamespace));
    st.bind(9, std::string_view(tagsJson(e.tags)));
    st.bind(10, toUnixMillis(e.responseTimestamp));
    if (e.expiresAt)
      st.bind(11, toUnixMillis(*e.expiresAt));
    else
      st.bindNull(11);
    st.bind(12, toUnixMillis(std::max(e.lastAccessed, e.responseTimestamp)));
    st.bind(13, e.hitCount);
    // 0: not known (a tier that does not report its stored bytes): a new row takes the raw
    // estimate, an existing one keeps what a tier reported.
    st.bind(14, static_cast<int64_t>(sizeStored ? sizeStored : sizeRaw));
    st.bind(15, static_cast<int64_t>(sizeRaw));
    st.bind(16, e.tokensInput);
    st.bind(17, e.tokensOutput);
    st.bind(18, e.costTotal);
    st.bind(19, e.latencyMs);
    st.bind(20, static_cast<int64_t>(tiers));
    st.bind(21, std::string_view(e.tenant));
    st.bind(22, static_cast<int64_t>(sizeStored ? 1 : 0));
    if (int rc = st.step(); rc != SQLITE_DONE)
      return sqlError(rc, "writing the row of " + e.cacheId);
  }
  if (!(s = prepared(kClearTags, err))) return err;
  {
    Stmt st(s);
    st.bind(1, std::string_view(e.cacheId));
    if (int rc = st.step(); rc != SQLITE_DONE)
      return sqlError(rc, "writing the tags of " + e.cacheId);
  }
  if (!(s = prepared(kAddTag, err))) return err;
  for (const auto& tag : e.tags) {
    Stmt st(s);
    st.bind(1, std::string_view(e.cacheId));
    st.bind(2, std::string_view(tag));
    if (int rc = st.step(); rc != SQLITE_DONE)
      return sqlError(rc, "writing the tags of " + e.cacheId);
  }
  return {};
}

Result<void> Index::upsert(const cache::Entry& entry, unsigned tiers, size_t sizeStored,
                           size_t sizeRaw) {
  if (entry.cacheId.empty() || entry.cacheKey.empty())
    return makeError(Errc::InvalidArgument, "index: an entry needs a cache_id and a cache_key");
  std::lock_guard lock(dbMutex_);
  if (auto r = execLocked("BEGIN IMMEDIATE"); !r) return r;
  auto r = upsertLocked(entry, tiers, sizeStored, sizeRaw);
  if (r) r = execLocked("COMMIT");
  if (!r) (void)execLocked("ROLLBACK");
  return r;
}

void Index::recordHit(std::string_view cacheId, TimePoint at) {
  const int64_t ms = toUnixMillis(at);
  HitShard& shard = hitShards_[threadSlot() % kHitShards];
  size_t n = 0;
  {
    std::lock_guard lock(shard.mutex);
    auto it = shard.pending.find(cacheId);
    if (it == shard.pending.end()) {
      if (pendingIds_.load(std::memory_order_relaxed) >= options_.maxPendingIds) {
        droppedHits_.fetch_add(1, std::memory_order_relaxed);
        return;
      }
      it = shard.pending.emplace(std::string(cacheId), PendingHit{}).first;
      pendingIds_.fetch_add(1, std::memory_order_relaxed);
    }
    ++it->second.count;
    it->second.lastMs = std::max(it->second.lastMs, ms);
    n = pendingHits_.fetch_add(1, std::memory_order_relaxed) + 1;
  }
  // Only drainHits lowers the count, and the writer checks it under hitWakeMutex_ before it
  // sleeps: while it sleeps the count passes the batch exactly once.
  if (n == options_.hitFlushBatch) {
    { std::lock_guard wake(hitWakeMutex_); }
    hitCv_.notify_one();
  }
}

void Index::hitWriterLoop() {
  lowerThreadPriority();
  std::unique_lock lock(hitWakeMutex_);
  while (!stopping_) {
    hitCv_.wait_for(lock, options_.hitFlushInterval,
                    [&] { return stopping_ || pendingHits_.load() >= options_.hitFlushBatch; });
    if (stopping_) break;
    bool evictions;
    {
      std::lock_guard e(evictMutex_);
      evictions = !pendingEvictions_.empty();
    }
    if (pendingIds_.load() == 0 && !evictions) continue;
    lock.unlock();
    {
      std::lock_guard f(flushMutex_);
      drainHits();
    }
    lock.lock();
  }
}

void Index::flush() {
  std::lock_guard f(flushMutex_);
  drainHits();
}

void Index::drainEvictions() {
  static const std::string kSql =
      "UPDATE entries SET tiers = tiers & ~?2 WHERE cache_key = ?1 AND (tiers & ?2) <> 0";
  std::lock_guard lock(dbMutex_);
  std::unordered_map<std::string, unsigned> batch;
  {
    std::lock_guard e(evictMutex_);
    batch.swap(pendingEvictions_);
  }
  if (batch.empty()) return;
  Result<void> r = execLocked("BEGIN IMMEDIATE");
  if (r) {
    Error err;
    sqlite3_stmt* s = prepared(kSql, err);
    if (!s) r = err;
    for (auto it = batch.begin(); r && it != batch.end(); ++it) {
      Stmt st(s);
      st.bind(1, std::string_view(it->first));
      st.bind(2, static_cast<int64_t>(it->second));
      if (int rc = st.step(); rc != SQLITE_DONE) r = sqlError(rc, "clearing evicted tiers");
    }
    if (r) r = execLocked("COMMIT");
    if (!r) (void)execLocked("ROLLBACK");
  }
  if (!r) hitWriteErrors_.fetch_add(1);  // figures, not the cache's truth: counted, not retried
}

void Index::drainHits() {
  // Every shard's counts, merged per id (one thread's shard is taken whole, without a copy).
  PendingHits batch;
  size_t hits = 0, ids = 0;
  for (HitShard& shard : hitShards_) {
    PendingHits taken;
    {
      std::lock_guard lock(shard.mutex);
      taken.swap(shard.pending);
    }
    ids += taken.size();
    for (const auto& [id, hit] : taken) hits += hit.count;
    if (batch.empty()) {
      batch.swap(taken);
      continue;
    }
    for (auto& [id, hit] : taken) {
      auto [it, fresh] = batch.try_emplace(id, hit);
      if (fresh) continue;
      it->second.count += hit.count;
      it->second.lastMs = std::max(it->second.lastMs, hit.lastMs);
      it->second.misses = std::max(it->second.misses, hit.misses);
    }
  }
  pendingHits_.fetch_sub(hits);
  pendingIds_.fetch_sub(ids);
  drainEvictions();
  if (batch.empty()) return;
  static const std::string kHit =
      "UPDATE entries SET hit_count = hit_count + ?1, last_accessed = max(last_accessed, ?2) WHERE "
      "cache_id = ?3";
  // A hit can reach here before its entry's row: the row is written by the gateway's background
  // store, which may still be queued. Such hits wait for a later flush instead of vanishing.
  std::vector<std::pair<std::string, PendingHit>> early;
  Result<void> r;
  {
    std::lock_guard lock(dbMutex_);
    r = execLocked("BEGIN IMMEDIATE");
    if (r) {
      Error err;
      sqlite3_stmt* s = prepared(kHit, err);
      if (!s) r = err;
      for (auto it = batch.begin(); r && it != batch.end(); ++it) {
        Stmt st(s);
        st.bind(1, static_cast<int64_t>(it->second.count));
        st.bind(2, it->second.lastMs);
        st.bind(3, std::string_view(it->first));
        if (int rc = st.step(); rc != SQLITE_DONE)
          r = sqlError(rc, "writing hits");
        else if (sqlite3_changes(db_) == 0)
          early.emplace_back(it->first, it->second);
      }
      if (r) r = execLocked("COMMIT");
      if (!r) (void)execLocked("ROLLBACK");
    }
  }
  if (!r) {
    hitWriteErrors_.fetch_add(
        1);  // the batch is lost: hit counts are statistics, not the cache's truth
    return;
  }
  HitShard& shard = hitShards_[threadSlot() % kHitShards];
  std::lock_guard lock(shard.mutex);
  for (auto& [id, hit] : early) {
    if (++hit.misses > kHitRetries) {
      droppedHits_.fetch_add(hit.count);  // no row ever came (an entry the index does not hold)
      continue;
    }
    auto [it, fresh] = shard.pending.try_emplace(id);  // merged with hits that arrived meanwhile
    if (fresh) pendingIds_.fetch_add(1);
    PendingHit& p = it->second;
    p.count += hit.count;
    p.lastMs = std::max(p.lastMs, hit.lastMs);
    p.misses = std::max(p.misses, hit.misses);
    pendingHits_.fetch_add(hit.count);
  }
}

uint64_t Index::droppedHits() const { return droppedHits_; }

uint64_t Index::hitWriteErrors() const { return hitWriteErrors_; }

Result<std::vector<Row>> Index::rowsLocked(const std::string& sql,
                                           const std::function<void(Stmt&)>& bind) {
  Error err;
  sqlite3_stmt* s = prepared(sql, err);
  if (!s) return err;
  Stmt st(s);
  bind(st);
  std::vector<Row> rows;
  int rc;
  while ((rc = st.step()) == SQLITE_ROW) rows.push_back(readRow(s));
  if (rc != SQLITE_DONE) return sqlError(rc, "reading rows");
  return rows;
}

Result<std::optional<Row>> Index::byCacheId(std::string_view cacheId) {
  static const std::string kSql =
      std::string("SELECT ") + kColumns + " FROM entries WHERE cache_id = ?1";
  std::lock_guard lock(dbMutex_);
  auto rows = rowsLocked(kSql, [&](Stmt& s) { s.bind(1, cacheId); });
  if (!rows) return rows.error();
  if (rows->empty()) return std::optional<Row>{};
  return std::optional<Row>{std::move(rows->front())};
}

Result<std::optional<Row>> Index::byRequestHash(std::string_view requestHash) {
  static const std::string kSql = std::string("SELECT ") + kColumns +
                                  " FROM entries WHERE request_hash = ?1 AND invalid = 0"
                                  " ORDER BY created DESC, cache_id DESC LIMIT 1";
  std::lock_guard lock(dbMutex_);
  auto rows = rowsLocked(kSql, [&](Stmt& s) { s.bind(1, requestHash); });
  if (!rows) return rows.error();
  if (rows->empty()) return std::optional<Row>{};
  return std::optional<Row>{std::move(rows->front())};
}

Result<Page> Index::list(const Filter& f) {
  int64_t cursorCreated = 0;
  std::string cursorId;
  if (!f.cursor.empty() && !parseCursor(f.cursor, cursorCreated, cursorId))
    return makeError(Errc::InvalidArgument,
                     "cursor is malformed: pass next_cursor from the previous page");
  const size_t limit = std::clamp<size_t>(f.limit, 1, kMaxPageSize);

  std::string sql = std::string("SELECT ") + kColumns + " FROM entries e WHERE 1=1";
  if (!f.includeInvalid) sql += " AND invalid = 0";
  if (f.model) sql += " AND model = ?1";
  if (f.cacheNamespace) sql += " AND namespace = ?2";
  if (f.tag)
    sql += " AND EXISTS (SELECT 1 FROM entry_tags t WHERE t.cache_id = e.cache_id AND t.tag = ?3)";
  if (f.from) sql += " AND created >= ?4";
  if (f.to) sql += " AND created < ?5";
  if (!f.cursor.empty()) sql += " AND (created, cache_id) < (?6, ?7)";
  if (f.tenant) sql += " AND tenant = ?9";
  sql += " ORDER BY created DESC, cache_id DESC LIMIT ?8";

  std::lock_guard lock(dbMutex_);
  auto rows = rowsLocked(sql, [&](Stmt& s) {
    if (f.model) s.bind(1, std::string_view(*f.model));
    if (f.cacheNamespace) s.bind(2, std::string_view(*f.cacheNamespace));
    if (f.tag) s.bind(3, std::string_view(*f.tag));
    if (f.from) s.bind(4, toUnixMillis(*f.from));
    if (f.to) s.bind(5, toUnixMillis(*f.to));
    if (!f.cursor.empty()) {
      s.bind(6, cursorCreated);
      s.bind(7, std::string_view(cursorId));
    }
    s.bind(8, static_cast<int64_t>(limit + 1));  // one more: is there a next page?
    if (f.tenant) s.bind(9, std::string_view(*f.tenant));
  });
  if (!rows) return rows.error();
  Page page;
  page.rows = std::move(*rows);
  if (page.rows.size() > limit) {
    page.rows.resize(limit);
    const Row& last = page.rows.back();
    page.nextCursor = std::to_string(toUnixMillis(last.created)) + "." + last.cacheId;
  }
  return page;
}

Result<std::vector<Row>> Index::match(const Criterion& c, TimePoint now) {
  std::string sql = std::string("SELECT ") + kColumns + " FROM entries e WHERE invalid = 0 AND ";
  using K = Criterion::Kind;
  switch (c.kind) {
    case K::Model:
      sql += "model = ?1";
      break;
    case K::OlderThan:
      sql += "created < ?2";
      break;
    case K::Pattern:
      sql += "(fnmatch(?1, cache_key) OR fnmatch(?1, model))";
      break;
    case K::Key:
      sql += "cache_key = ?1";
      break;
    case K::Tag:
      sql += "EXISTS (SELECT 1 FROM entry_tags t WHERE t.cache_id = e.cache_id AND t.tag = ?1)";
      break;
    case K::Namespace:
      sql += "namespace = ?1";
      break;
    case K::CacheId:
      sql += "cache_id = ?1";
      break;
  }
  sql += " ORDER BY created, cache_id";
  std::lock_guard lock(dbMutex_);
  return rowsLocked(sql, [&](Stmt& s) {
    if (c.kind == K::OlderThan)
      s.bind(2, toUnixMillis(c.cutoff(now)));
    else
      s.bind(1, std::string_view(c.value));
  });
}

Result<size_t> Index::markInvalid(const std::vector<std::string>& ids) {
  return eachIdInTransaction("UPDATE entries SET invalid = 1 WHERE cache_id = ?1 AND invalid = 0",
                             ids, "marking rows invalid");
}

Result<size_t> Index::erase(const std::vector<std::string>& ids) {
  return eachIdInTransaction("DELETE FROM entries WHERE cache_id = ?1", ids, "erasing rows");
}

Result<size_t> Index::eachIdInTransaction(const std::string& sql,
                                          const std::vector<std::string>& ids, const char* what) {
  std::lock_guard lock(dbMutex_);
  if (auto r = execLocked("BEGIN IMMEDIATE"); !r) return r.error();
  size_t n = 0;
  Result<void> r;
  Error err;
  sqlite3_stmt* s = prepared(sql, err);
  if (!s) r = err;
  for (size_t i = 0; r && i < ids.size(); ++i) {
    Stmt st(s);
    st.bind(1, std::string_view(ids[i]));
    if (int rc = st.step(); rc != SQLITE_DONE)
      r = sqlError(rc, what);
    else
      n += static_cast<size_t>(sqlite3_changes(db_));
  }
  if (r) r = execLocked("COMMIT");
  if (!r) {
    (void)execLocked("ROLLBACK");
    return r.error();
  }
  return n;
}

Result<std::vector<std::string>> Index::expired(TimePoint now, size_t limit) {
  static const std::string kSql =
      "SELECT cache_id FROM entries WHERE expires <= ?1 AND invalid = 0 ORDER BY expires, cache_id "
      "LIMIT ?2";
  std::lock_guard lock(dbMutex_);
  Error err;
  sqlite3_stmt* s = prepared(kSql, err);
  if (!s) return err;
  Stmt st(s);
  st.bind(1, toUnixMillis(now));
  st.bind(2, static_cast<int64_t>(std::min<size_t>(limit, INT64_MAX)));
  std::vector<std::string> ids;
  int rc;
  while ((rc = st.step()) == SQLITE_ROW) ids.push_back(columnText(s, 0));
  if (rc != SQLITE_DONE) return sqlError(rc, "listing expired rows");
  return ids;
}

Result<Stats> Index::stats() {
  static const std::string kSql =
      "SELECT COALESCE(SUM(invalid = 0 AND tiers <> 0), 0), COALESCE(SUM(CASE WHEN invalid = 0 "
      "AND tiers <> 0 THEN size_stored ELSE 0 END), 0), "
      "COALESCE(SUM(invalid), 0), COALESCE(SUM(hit_count), 0), COALESCE(SUM(hit_count * "
      "cost_total), 0.0), "
      "COALESCE(SUM(hit_count * (tokens_in + tokens_out)), 0) FROM entries";
  std::lock_guard lock(dbMutex_);
  Error err;
  sqlite3_stmt* s = prepared(kSql, err);
  if (!s) return err;
  Stmt st(s);
  if (int rc = st.step(); rc != SQLITE_ROW) return sqlError(rc, "reading totals");
  Stats out;
  out.entries = static_cast<uint64_t>(sqlite3_column_int64(s, 0));
  out.bytes = static_cast<uint64_t>(sqlite3_column_int64(s, 1));
  out.invalidEntries = static_cast<uint64_t>(sqlite3_column_int64(s, 2));
  out.hits = static_cast<uint64_t>(sqlite3_column_int64(s, 3));
  out.costSaved = sqlite3_column_double(s, 4);
  out.tokensSaved = static_cast<uint64_t>(sqlite3_column_int64(s, 5));
  return out;
}

Result<size_t> Index::rebuildFrom(const std::function<void(const EntrySink&)>& scan) {
  std::lock_guard lock(dbMutex_);
  if (auto r = execLocked("BEGIN IMMEDIATE"); !r) return r.error();
  std::optional<Error> failure;
  auto rollback = [&](Error e) -> Result<size_t> {
    (void)execLocked("ROLLBACK");
    return e;
  };
  if (auto r = execLocked("DELETE FROM entry_tags"); !r) return rollback(r.error());
  if (auto r = execLocked("DELETE FROM entries"); !r) return rollback(r.error());
  EntrySink sink = [&](const cache::Entry& e, unsigned tiers, size_t stored, size_t raw) {
    if (failure) return;
    if (e.cacheId.empty() || e.cacheKey.empty())
      return;  // not indexable; decodeEntry never yields one
    if (auto r = upsertLocked(e, tiers, stored, raw); !r) failure = r.error();
  };
  try {
    scan(sink);
  } catch (const std::exception& ex) {
    failure = makeError(Errc::Io, std::string("index: rebuild: the scan failed: ") + ex.what());
  }
  if (failure) return rollback(*failure);
  if (auto r = execLocked("COMMIT"); !r) return rollback(r.error());
  auto count = textRows(db_, "SELECT COUNT(*) FROM entries", "counting rows");
  if (!count) return count.error();
  return static_cast<size_t>(std::stoull(count->at(0)));
}

namespace {

constexpr int kEventColumns = 23;

// INSERT of n event rows in one statement (kEventColumns parameters per row), for n up to
// kEventRowsPerYield, built once (the text is also the prepared-statement cache's key). OR
// IGNORE: an id can only repeat when the clock went back to a millisecond already written and
// the sequence number came round to the same value (one in 2^20); that event is dropped, not the
// batch.
const std::string& eventInsert(size_t n) {
  static const auto kSql = [] {
    std::array<std::string, Index::kEventRowsPerYield + 1> sql;
    for (size_t rows = 1; rows < sql.size(); ++rows) {
      std::string& s = sql[rows];
      s = "INSERT OR IGNORE INTO events(id, time, cache_key, model, platform, provider, endpoint, "
          "outcome, tier, "
          "latency_ms, tokens_in, tokens_out, cost, cost_saved, latency_saved_ms, caller_hash, "
          "prompt_category, "
          "prompt_simhash, requests, tenant, namespace, seed_hash, semantic) VALUES ";
      for (size_t i = 0; i < rows; ++i) {
        s += i ? ",(" : "(";
        for (int c = 0; c < kEventColumns; ++c) s += c ? ",?" : "?";
        s += ")";
      }
    }
    return sql;
  }();
  return kSql[n];
}

}  // namespace

int64_t Index::eventIdBound(int64_t timeMs) {
  if (timeMs <= 0) return 0;
  if (timeMs >= (int64_t{1} << (63 - kEventSequenceBits)))
    return std::numeric_limits<int64_t>::max();
  return timeMs << kEventSequenceBits;
}

int64_t Index::eventId(int64_t timeMs) {
  // Clustered by time (schema version 4): the high bits are the time, the low 20 a sequence.
  const int64_t limit = (int64_t{1} << (63 - kEventSequenceBits)) - 1;
  return (std::clamp<int64_t>(timeMs, 0, limit) << kEventSequenceBits) |
         static_cast<int64_t>(eventSequence_++ & ((uint64_t{1} << kEventSequenceBits) - 1));
}

Result<void> Index::appendEvents(std::span<const EventRow> rows) {
  if (rows.empty()) return {};
  static const std::string kSignature =
      "UPDATE entries SET prompt_simhash = ?2, prompt_preview = ?3 WHERE cache_key = ?1 AND "
      "prompt_simhash IS NULL";
  std::lock_guard lock(dbMutex_);
  if (auto r = execLocked("BEGIN IMMEDIATE"); !r) return r;
  Result<void> r;
  Error err;
  sqlite3_stmt* sig = prepared(kSignature, err);
  if (!sig) r = err;
  // Rows go kEventRowsPerYield to a statement (one step for several rows), and the thread
  // yields between statements. The writer runs beside the request threads: a 1,000-row batch
  // held a core for ~2 ms, and a request thread woken meanwhile waited for all of it (the
  // scheduler does not preempt a running nice-10 thread for a nice-0 one). Yielding bounds that
  // wait to a few rows' work: memory-hit p99 at 2 connections went from ~2.2 ms to ~0.3 ms
  // (bench/compare_nginx.sh). A yield with nothing else runnable returns at once.
  for (size_t first = 0; r && first < rows.size(); first += kEventRowsPerYield) {
    if (first > 0) std::this_thread::yield();
    const size_t n = std::min(kEventRowsPerYield, rows.size() - first);
    sqlite3_stmt* ins = prepared(eventInsert(n), err);
    if (!ins) {
      r = err;
      break;
    }
    Stmt st(ins);
    for (size_t k = 0; k < n; ++k) {
      const EventRow& e = rows[first + k];
      const int p = static_cast<int>(k) * kEventColumns;
      st.bind(p + 1, eventId(e.timeMs));
      st.bind(p + 2, e.timeMs);
      // bindStatic: the rows outlive the statement's use (copying each text was ~5% of the
      // writer's time).
      st.bindStatic(p + 3, e.cacheKey);
      st.bindStatic(p + 4, e.model);
      st.bindStatic(p + 5, e.platform);
      st.bindStatic(p + 6, e.provider);
      st.bindStatic(p + 7, e.endpoint);
      st.bindStatic(p + 8, e.outcome);
      st.bindStatic(p + 9, e.tier);
      st.bind(p + 10, e.latencyMs);
      st.bind(p + 11, e.tokensIn);
      st.bind(p + 12, e.tokensOut);
      st.bind(p + 13, e.cost);
      st.bind(p + 14, e.costSaved);
      st.bind(p + 15, e.latencySavedMs);
      st.bindStatic(p + 16, e.callerHash);
      st.bindStatic(p + 17, e.promptCategory);
      if (e.promptSimhash)
        st.bind(p + 18, static_cast<int64_t>(*e.promptSimhash));
      else
        st.bindNull(p + 18);
      st.bind(p + 19, e.requests);
      st.bindStatic(p + 20, e.tenant);
      st.bindStatic(p + 21, e.keyNamespace);
      if (e.seedHash != 0)
        st.bind(p + 22, static_cast<int64_t>(e.seedHash));
      else
        st.bindNull(p + 22);
      st.bind(p + 23, int64_t{e.semantic ? 1 : 0});
    }
    if (int rc = st.step(); rc != SQLITE_DONE) r = sqlError(rc, "writing events");
    // A hit's row was signed when its answer was stored (the gateway's store step); only other
    // outcomes (a miss whose row may not be written yet) need the lookup.
    for (size_t k = 0; r && k < n; ++k) {
      const EventRow& e = rows[first + k];
      if (!e.promptSimhash || e.cacheKey.empty() || e.outcome == "HIT") continue;
      Stmt sst(sig);
      sst.bind(1, std::string_view(e.cacheKey));
      sst.bind(2, static_cast<int64_t>(*e.promptSimhash));
      sst.bind(3, std::string_view(e.promptPreview));
      if (int rc = sst.step(); rc != SQLITE_DONE) r = sqlError(rc, "writing prompt signatures");
    }
  }
  if (r) r = execLocked("COMMIT");
  if (!r) (void)execLocked("ROLLBACK");
  return r;
}

Result<size_t> Index::purgeEvents(TimePoint before) {
  // id >> kEventSequenceBits is the time: a range of the table's own b-tree.
  static const std::string kSql = "DELETE FROM events WHERE id < ?1";
  std::lock_guard lock(dbMutex_);
  Error err;
  sqlite3_stmt* s = prepared(kSql, err);
  if (!s) return err;
  Stmt st(s);
  st.bind(1, eventIdBound(toUnixMillis(before)));
  if (int rc = st.step(); rc != SQLITE_DONE) return sqlError(rc, "purging events");
  return static_cast<size_t>(sqlite3_changes(db_));
}

void Index::recordEviction(std::string_view key, unsigned tierBit) {
  std::lock_guard lock(evictMutex_);
  pendingEvictions_[std::string(key)] |= tierBit;
}

Result<bool> Index::setPromptSignature(std::string_view cacheKey, uint64_t simhash,
                                       std::string_view preview) {
  static const std::string kSql =
      "UPDATE entries SET prompt_simhash = ?2, prompt_preview = ?3 WHERE cache_key = ?1";
  std::lock_guard lock(dbMutex_);
  Error err;
  sqlite3_stmt* s = prepared(kSql, err);
  if (!s) return err;
  Stmt st(s);
  st.bind(1, cacheKey);
  st.bind(2, static_cast<int64_t>(simhash));
  st.bind(3, preview);
  if (int rc = st.step(); rc != SQLITE_DONE) return sqlError(rc, "writing a prompt signature");
  return sqlite3_changes(db_) > 0;
}

Result<void> Index::query(std::string_view sql, const std::vector<SqlValue>& params,
                          const std::function<void(const std::vector<SqlValue>&)>& onRow) {
  std::lock_guard lock(dbMutex_);
  Error err;
  sqlite3_stmt* s = prepared(std::string(sql), err);
  if (!s) return err;
  if (!sqlite3_stmt_readonly(s))
    return makeError(Errc::InvalidArgument, "index: query() runs read-only statements only");
  Stmt st(s);
  for (size_t i = 0; i < params.size(); ++i) {
    const int n = static_cast<int>(i + 1);
    std::visit(
        [&](const auto& v) {
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, std::monostate>)
            st.bindNull(n);
          else if constexpr (std::is_same_v<T, std::string>)
            st.bind(n, std::string_view(v));
          else
            st.bind(n, v);
        },
        params[i]);
  }
  std::vector<SqlValue> row;
  int rc;
  while ((rc = st.step()) == SQLITE_ROW) {
    const int columns = sqlite3_column_count(s);
    row.assign(static_cast<size_t>(columns), SqlValue{});
    for (int c = 0; c < columns; ++c) {
      switch (sqlite3_column_type(s, c)) {
        case SQLITE_NULL:
          break;
        case SQLITE_INTEGER:
          row[static_cast<size_t>(c)] = static_cast<int64_t>(sqlite3_column_int64(s, c));
          break;
        case SQLITE_FLOAT:
          row[static_cast<size_t>(c)] = sqlite3_column_double(s, c);
          break;
        default:
          row[static_cast<size_t>(c)] = columnText(s, c);
          break;
      }
    }
    onRow(row);
  }
  if (rc != SQLITE_DONE) return sqlError(rc, "running a query");
  return {};
}

}  // namespace llmcache::index
