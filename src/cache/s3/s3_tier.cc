#include "cache/s3/s3_tier.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>

namespace llmcache::cache::s3 {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kJsonType = "application/json";
constexpr std::string_view kBinaryType = "application/octet-stream";

// Adds every number in `from` to the same member of `into`, recursing into objects: how the
// per-instance counts merge. Integers stay integers; anything else sums as double.
void addCounts(Json& into, const Json& from) {
  if (!from.isObject()) return;
  for (size_t i = 0; i < from.size(); ++i) {
    const std::string_view key = from.keys()[i];
    const Json& v = from.items()[i];
    Json* have = into.find(key);
    if (v.isNumber()) {
      if (have && have->isNumber()) {
        auto a = have->asInt64();
        auto b = v.asInt64();
        if (have->isIntegerNumber() && v.isIntegerNumber() && a && b)
          *have = Json::integer(*a + *b);
        else
          *have = Json::number(have->asDouble().value_or(0) + v.asDouble().value_or(0));
      } else {
        into.set(key, v);
      }
    } else if (v.isObject()) {
      if (!have || !have->isObject()) {
        into.set(key, Json::object());
        have = into.find(key);
      }
      addCounts(*have, v);
    }
  }
}

const Json* member(const Json& j, std::string_view name, Json::Kind kind) {
  const Json* m = j.isObject() ? j.find(name) : nullptr;
  return m && m->kind() == kind ? m : nullptr;
}

std::string metadataKeyOf(std::string_view entryKey) {
  for (std::string_view suffix : {".json.zst", ".json"})
    if (entryKey.ends_with(suffix))
      return std::string(entryKey.substr(0, entryKey.size() - suffix.size())) + ".metadata.json";
  return std::string(entryKey) + ".metadata.json";
}

// The entry a pointer names, from the object's bytes. Corrupt when the checksum, the decoding or
// the identity (cache_id, cache_key) does not match the pointer. With a key (CACHE_ENCRYPTION) only
// sealed Llmc objects are read: a plain JSON object is not authenticated, so it is not served.
Result<Entry> decodeObject(const Pointer& ptr, std::string_view bytes, const CodecOptions& codec) {
  if (!ptr.entrySha256.empty() && sha256Hex(bytes) != ptr.entrySha256)
    return makeError(Errc::Corrupt,
                     "s3 entry " + ptr.entryKey + ": SHA-256 differs from the pointer's");
  Result<Entry> entry = [&]() -> Result<Entry> {
    if (ptr.format == EntryFormat::Llmc) return decodeEntry(bytes, codec);
    if (codec.key)
      return makeError(Errc::Corrupt,
                       "s3 entry " + ptr.entryKey + ": plain JSON while CACHE_ENCRYPTION is on");
    auto json = parseJson(bytes);
    if (!json)
      return makeError(Errc::Corrupt, "s3 entry " + ptr.entryKey + ": " + json.error().message);
    return entryFromJson(*json);
  }();
  if (!entry) return entry.error();
  if (entry->cacheId != ptr.cacheId || entry->cacheKey != ptr.cacheKey)
    return makeError(Errc::Corrupt, "s3 entry " + ptr.entryKey +
                                        ": cache_id or cache_key differs from the pointer's");
  return entry;
}

Json statsJson(const S3TierStats& s) {
  Json j = Json::object();
  j.set("lookups", Json::integer(static_cast<int64_t>(s.lookups)));
  j.set("hits", Json::integer(static_cast<int64_t>(s.hits)));
  j.set("misses", Json::integer(static_cast<int64_t>(s.misses)));
  j.set("errors", Json::integer(static_cast<int64_t>(s.errors)));
  j.set("inserts", Json::integer(static_cast<int64_t>(s.inserts)));
  j.set("erases", Json::integer(static_cast<int64_t>(s.erases)));
  j.set("bytes_written", Json::integer(static_cast<int64_t>(s.bytesWritten)));
  j.set("corrupt_entries", Json::integer(static_cast<int64_t>(s.corruptEntries)));
  j.set("dangling_pointers", Json::integer(static_cast<int64_t>(s.danglingPointers)));
  j.set("corrupt_pointers", Json::integer(static_cast<int64_t>(s.corruptPointers)));
  j.set("index_items_dropped", Json::integer(static_cast<int64_t>(s.indexItemsDropped)));
  j.set("hit_updates", Json::integer(static_cast<int64_t>(s.hitUpdates)));
  j.set("hit_updates_dropped", Json::integer(static_cast<int64_t>(s.hitUpdatesDropped)));
  return j;
}

// The part of an instance file that merges by summing: its "counts", "models" and "gateway"
// members.
Json countsOf(const Json& file) {
  Json out = Json::object();
  for (std::string_view name : {"counts", "models", "gateway"})
    if (const Json* m = member(file, name, Json::Kind::Object)) out.set(std::string(name), *m);
  return out;
}

// Sets "hit_rate" = hits / figures[denominator] (0 without requests): a rate, derived after the
// counts are summed, never summed itself.
void withHitRate(Json& figures, std::string_view denominator) {
  if (!figures.isObject()) return;
  const Json* h = figures.find("hits");
  const Json* d = figures.find(denominator);
  const double hv = h && h->isNumber() ? h->asDouble().value_or(0) : 0;
  const double dv = d && d->isNumber() ? d->asDouble().value_or(0) : 0;
  figures.set("hit_rate", Json::number(dv > 0 ? hv / dv : 0.0));
}

}  // namespace

std::string loadOrCreateInstanceId(const fs::path& dir) {
  const fs::path file = dir / "s3-instance-id";
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (fs::exists(file)) {
    std::ifstream in(file);
    std::string id;
    std::getline(in, id);
    while (!id.empty() && (id.back() == '\r' || id.back() == ' ')) id.pop_back();
    if (!in.bad() && !id.empty()) return id;
    throw std::runtime_error("s3: cannot read the instance id in " + file.string());
  }
  char host[256] = {0};
  ::gethostname(host, sizeof host - 1);
  std::string id = sanitizeKey(std::string(host).substr(0, 40)) + "-" + newCacheId().substr(0, 12);
  const fs::path tmp = file.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << id << "\n";
    if (!out.flush())
      throw std::runtime_error("s3: cannot write the instance id to " + tmp.string());
  }
  fs::rename(tmp, file, ec);
  if (ec)
    throw std::runtime_error("s3: cannot write the instance id to " + file.string() + ": " +
                             ec.message());
  return id;
}

S3Tier::S3Tier(S3Client& client, S3TierOptions options)
    : client_(client),
      options_(std::move(options)),
      clock_(options_.clock ? options_.clock : &Clock::system()) {
  layout_.prefix = normalizePrefix(options_.prefix);
  if (options_.instanceId.empty()) options_.instanceId = "default";
}

S3TierStats S3Tier::stats() const {
  auto r = [](const std::atomic<uint64_t>& a) { return a.load(std::memory_order_relaxed); };
  return S3TierStats{r(lookups_),          r(hits_),
                     r(misses_),           r(errors_),
                     r(inserts_),          r(erases_),
                     r(bytesWritten_),     r(corruptEntries_),
                     r(danglingPointers_), r(corruptPointers_),
                     r(indexErrors_),      r(indexItemsDropped_),
                     r(hitUpdates_),       r(hitUpdatesDropped_)};
}

Result<std::optional<Pointer>> S3Tier::readPointer(const std::string& pointerKey,
                                                   S3Deadline deadline) {
  auto body = client_.get(pointerKey, deadline);
  if (!body) return body.error();
  if (!*body) return std::optional<Pointer>{};
  auto json = parseJson(**body);
  Result<Pointer> ptr = json ? pointerFromJson(*json) : Result<Pointer>(json.error());
  if (!ptr) {
    // Not deleted: on a store whose PUT is not atomic (s3rver) a concurrent rewrite reads torn
    // once; the next insert of the key replaces it, erase removes it.
    ++corruptPointers_;
    return std::optional<Pointer>{};
  }
  return std::optional<Pointer>(std::move(*ptr));
}

void S3Tier::deletePointerIfNames(const std::string& pointerKey, const std::string& cacheId,
                                  S3Deadline deadline) {
  // Race, accepted: another instance may replace the pointer between this read and the delete;
  // the cost is a miss for that key until its next insert, never a wrong answer.
  auto ptr = readPointer(pointerKey, deadline);
  if (ptr && *ptr && (*ptr)->cacheId == cacheId) (void)client_.erase(pointerKey, deadline);
}

Result<std::optional<EntryPtr>> S3Tier::lookup(std::string_view cacheKey) {
  return lookupVia(layout_.byKeyKey(cacheKey), cacheKey, {});
}

Result<std::optional<EntryPtr>> S3Tier::lookupByHash(std::string_view requestHash) {
  return lookupVia(layout_.byHashKey(requestHash), {}, requestHash);
}

Result<std::optional<EntryPtr>> S3Tier::lookupVia(const std::string& pointerKey,
                                                  std::string_view cacheKey,
                                                  std::string_view requestHash) {
  ++lookups_;
  const S3Deadline deadline = client_.deadline();  // the pointer, the entry and any clean-up
  auto fail = [&](Error e) -> Result<std::optional<EntryPtr>> {
    ++errors_;
    return e;
  };
  auto miss = [&]() -> Result<std::optional<EntryPtr>> {
    ++misses_;
    return std::optional<EntryPtr>{};
  };

  auto found = readPointer(pointerKey, deadline);
  if (!found) return fail(found.error());
  if (!*found) return miss();
  const Pointer ptr = std::move(**found);
  if (!cacheKey.empty() && ptr.cacheKey != cacheKey) return miss();  // another key sanitized alike
  if (!requestHash.empty() && ptr.requestHash != requestHash) return miss();
  if (ptr.invalid) return miss();
  const std::string otherPointer =
      cacheKey.empty() ? layout_.byKeyKey(ptr.cacheKey) : layout_.byHashKey(ptr.requestHash);

  Result<Entry> entry = makeError(Errc::Corrupt, "not read");
  // A second read before declaring the object corrupt: a store whose PUT is not atomic may serve
  // a torn object once; a real defect fails twice.
  for (int read = 0; read < 2 && !entry; ++read) {
    auto bytes = client_.get(ptr.entryKey, deadline);
    if (!bytes) return fail(bytes.error());
    if (!*bytes) {
      ++danglingPointers_;
      deletePointerIfNames(pointerKey, ptr.cacheId, deadline);
      deletePointerIfNames(otherPointer, ptr.cacheId, deadline);
      return miss();
    }
    entry = decodeObject(ptr, **bytes, options_.codec);
  }
  if (!entry) {
    ++corruptEntries_;
    (void)client_.erase(ptr.entryKey, deadline);
    (void)client_.erase(metadataKeyOf(ptr.entryKey), deadline);
    deletePointerIfNames(pointerKey, ptr.cacheId, deadline);
    deletePointerIfNames(otherPointer, ptr.cacheId, deadline);
    return miss();
  }
  ++hits_;
  return std::optional<EntryPtr>(std::make_shared<const Entry>(std::move(*entry)));
}

Result<void> S3Tier::insert(EntryPtr entry) {
  if (!entry || entry->cacheKey.empty()) {
    ++errors_;
    return makeError(Errc::InvalidArgument, "s3 insert: an entry with a cache_key is required");
  }
  // Encryption forces the framing: a plain JSON object would put the prompt and answer in S3.
  const EntryFormat format =
      options_.codec.compress || options_.codec.key ? EntryFormat::Llmc : EntryFormat::Json;
  const std::string body = format == EntryFormat::Json ? toJson(entryToJson(*entry))
                                                       : encodeEntry(*entry, options_.codec);
  const std::string entryKey = layout_.entryKey(*entry, format);

  Pointer ptr;
  ptr.cacheKey = entry->cacheKey;
  ptr.requestHash = entry->requestHash;
  ptr.cacheId = entry->cacheId;
  ptr.entryKey = entryKey;
  ptr.format = format;
  ptr.entrySha256 = sha256Hex(body);
  ptr.created = now();
  ptr.expiresAt = entry->expiresAt;
  const std::string pointerBody = toJson(pointerToJson(ptr));

  // Order matters: a pointer is written only once what it names exists. One deadline for all.
  const S3Deadline deadline = client_.deadline();
  auto run = [&]() -> Result<void> {
    if (auto r = client_.put(entryKey, body, format == EntryFormat::Json ? kJsonType : kBinaryType,
                             deadline);
        !r)
      return r;
    if (auto r = client_.put(layout_.metadataKey(*entry), toJson(metadataJson(*entry, entryKey)),
                             kJsonType, deadline);
        !r)
      return r;
    if (!entry->requestHash.empty())
      if (auto r =
              client_.put(layout_.byHashKey(entry->requestHash), pointerBody, kJsonType, deadline);
          !r)
        return r;
    return client_.put(layout_.byKeyKey(entry->cacheKey), pointerBody, kJsonType, deadline);
  };
  if (auto r = run(); !r) {
    ++errors_;
    return r;
  }
  // Named when the pointer exists: a reader that lists the marker finds the entry. Named by this
  // clock, so a reader lists a window of the last seconds (other clocks may differ a little).
  if (options_.writeJournal) {
    const std::string marker = layout_.recentKeyMarker(now(), options_.instanceId, entry->cacheKey);
    const std::string markerBody =
        "{\"version\":1,\"cache_id\":" + toJson(Json::string(entry->cacheId)) + "}";
    if (!client_.put(marker, markerBody, kJsonType, deadline)) {
      ++journalErrors_;
    } else {
      std::lock_guard lock(journalMutex_);
      journal_.emplace_back(now(), marker);
      if (journal_.size() > kMaxHeldMarkers) journal_.pop_front();
    }
  }
  ++inserts_;
  bytesWritten_ += body.size();
  recordInsert(*entry, entryKey, body.size());
  (void)flushIndexIfDue();
  return {};
}

size_t S3Tier::pruneJournal(size_t limit) {
  const TimePoint cutoff = now() - options_.journalRetention;
  size_t deleted = 0;
  while (deleted < limit) {
    std::string marker;
    {
      std::lock_guard lock(journalMutex_);
      if (journal_.empty() || journal_.front().first > cutoff) break;
      marker = std::move(journal_.front().second);
      journal_.pop_front();
    }
    if (client_.erase(marker)) {
      ++deleted;
    } else {
      ++journalErrors_;
    }
  }
  return deleted;
}

size_t S3Tier::journalHeld() const {
  std::lock_guard lock(journalMutex_);
  return journal_.size();
}

Result<bool> S3Tier::erase(std::string_view cacheKey) { return markInvalid(cacheKey, "erased"); }

Result<bool> S3Tier::markInvalid(std::string_view cacheKey, std::string_view reason) {
  return markInvalidIf(cacheKey, reason, {});
}

Result<bool> S3Tier::markInvalidIf(std::string_view cacheKey, std::string_view reason,
                                   std::string_view cacheId) {
  const S3Deadline deadline = client_.deadline();  // every read and write below
  auto fail = [&](Error e) -> Result<bool> {
    ++errors_;
    return e;
  };
  const std::string byKey = layout_.byKeyKey(cacheKey);
  auto body = client_.get(byKey, deadline);
  if (!body) return fail(body.error());
  if (!*body) return false;
  auto json = parseJson(**body);
  Result<Pointer> ptr = json ? pointerFromJson(*json) : Result<Pointer>(json.error());
  if (!ptr) {
    // Unreadable: nothing to follow or mark, but the object is in the key's place.
    if (auto r = client_.erase(byKey, deadline); !r) return fail(r.error());
    ++erases_;
    return true;
  }
  if (ptr->cacheKey != cacheKey) return false;  // another key's pointer (sanitized alike)
  if (ptr->invalid) return false;               // marked already
  if (!cacheId.empty() && ptr->cacheId != cacheId) return false;  // names a newer answer
  const TimePoint at = now();

  // 1. The record the purge lists: written first, so that no marked entry escapes it.
  Json record = Json::object();
  record.set("version", Json::integer(kS3LayoutVersion));
  record.set("cache_id", Json::string(ptr->cacheId));
  record.set("cache_key", Json::string(ptr->cacheKey));
  record.set("request_hash", Json::string(ptr->requestHash));
  record.set("entry_key", Json::string(ptr->entryKey));
  record.set("metadata_key", Json::string(metadataKeyOf(ptr->entryKey)));
  record.set("invalidated_at", Json::string(formatIso8601(at)));
  record.set("invalidation_reason", Json::string(std::string(reason)));
  record.set("instance_id", Json::string(options_.instanceId));
  if (auto r =
          client_.put(layout_.invalidRecordKey(ptr->cacheId), toJson(record), kJsonType, deadline);
      !r)
    return fail(r.error());

  // 2. The pointers: what every gateway's lookup reads.
  Pointer marked = *ptr;
  marked.invalid = true;
  marked.invalidatedAt = at;
  marked.invalidationReason = std::string(reason);
  const std::string markedBody = toJson(pointerToJson(marked));
  if (auto r = client_.put(byKey, markedBody, kJsonType, deadline); !r) return fail(r.error());
  if (!ptr->requestHash.empty()) {
    const std::string byHash = layout_.byHashKey(ptr->requestHash);
    auto other = readPointer(byHash, deadline);
    if (!other) return fail(other.error());
    // Race, accepted: a pointer replaced between this read and the write below is marked too: a
    // miss until the key's next insert, never a wrong answer.
    if (*other && (*other)->cacheId == ptr->cacheId && !(*other)->invalid)
      if (auto r = client_.put(byHash, markedBody, kJsonType, deadline); !r) return fail(r.error());
  }

  // 3. The metadata object says so too (the entry object stays as written).
  const std::string metadataKey = metadataKeyOf(ptr->entryKey);
  auto meta = client_.get(metadataKey, deadline);
  if (!meta) return fail(meta.error());
  if (*meta)
    if (auto m = parseJson(**meta); m && m->isObject()) {
      m->set("invalid", Json::boolean(true));
      m->set("invalidated_at", Json::string(formatIso8601(at)));
      m->set("invalidation_reason", Json::string(std::string(reason)));
      if (auto r = client_.put(metadataKey, toJson(*m), kJsonType, deadline); !r)
        return fail(r.error());
    }
  ++erases_;
  return true;
}

Result<SharedTier::Marked> S3Tier::markMatching(const Search& search) {
  Marked out;
  const std::string folder = layout_.prefix + "llm-cache/" +
                             (search.model.empty() ? "" : modelSegment(search.model) + "/");
  constexpr std::string_view kMetadataSuffix = ".metadata.json";
  auto expired = [&] {
    return search.deadline && std::chrono::steady_clock::now() >= *search.deadline;
  };
  // One page (up to 1,000 metadata objects) at a time, read by kWorkers threads at once: each
  // object costs a GET (and a matched one a pointer read and the marks), one S3 round trip after
  // another otherwise. A worker stops taking objects at the deadline; the search then resumes
  // after the last object of the page's prefix that was wholly done. Every call reads at least one
  // object (a deadline already passed included), so searches resumed one after another finish.
  constexpr size_t kWorkers = 8;
  std::atomic<bool> progressed{false};
  std::mutex outMutex;
  std::optional<Error> failure;
  std::optional<std::string> token;
  std::string before = search.startAfter;  // the position before the current page
  do {
    if ((expired() && progressed) || out.scanned >= search.limit) {
      out.resumeAfter = before.empty() ? folder : before;
      return out;
    }
    auto page = client_.listPage(folder, token, 1000, std::nullopt,
                                 token || search.startAfter.empty()
                                     ? std::nullopt
                                     : std::optional<std::string>(search.startAfter));
    if (!page) return page.error();
    std::vector<const std::string*> keys;
    for (const auto& object : page->objects) {
      const std::string& key = object.key;
      if (key.size() >= kMetadataSuffix.size() &&
          key.compare(key.size() - kMetadataSuffix.size(), std::string::npos, kMetadataSuffix) == 0)
        keys.push_back(&key);
    }
    std::vector<char> done(keys.size(), 0);
    std::atomic<size_t> next{0};
    auto work = [&] {
      for (;;) {
        {
          std::lock_guard lock(outMutex);
          if (failure || out.scanned >= search.limit) return;
        }
        if (expired() && progressed) return;
        const size_t i = next.fetch_add(1);
        if (i >= keys.size()) return;
        auto fail = [&](Error e) {
          std::lock_guard lock(outMutex);
          if (!failure) failure = std::move(e);
        };
        auto body = client_.get(*keys[i]);
        if (!body) return fail(body.error());
        done[i] = 1;
        progressed = true;
        if (!*body) continue;  // purged since the listing
        auto meta = parseJson(**body);
        if (!meta || !meta->isObject()) continue;
        if (meta->getBool("invalid") == std::optional<bool>(true)) continue;
        {
          std::lock_guard lock(outMutex);
          ++out.scanned;
        }
        // The metadata is the entry without its bodies: give the parser an empty answer.
        Json shaped = *meta;
        if (!shaped.find("response")) shaped.set("response", Json::object());
        auto entry = entryFromJson(shaped);
        if (!entry) continue;  // not an entry's metadata: nothing this gateway would serve
        if (!search.model.empty() && entry->model != search.model) continue;  // sanitized alike
        if (search.select && !search.select(*entry)) continue;
        done[i] = 0;  // not done until its pointer is read and its marks written
        auto ptr = readPointer(layout_.byKeyKey(entry->cacheKey), client_.deadline());
        if (!ptr) return fail(ptr.error());
        if (!*ptr || (*ptr)->cacheId != entry->cacheId || (*ptr)->invalid) {
          done[i] = 1;
          continue;
        }
        bool marked = false;
        if (!search.dryRun) {
          auto m = markInvalidIf(entry->cacheKey, search.reason, entry->cacheId);
          if (!m) return fail(m.error());
          marked = *m;
        }
        done[i] = 1;
        std::lock_guard lock(outMutex);
        ++out.matched;
        out.cacheIds.push_back(entry->cacheId);
        if (marked) ++out.marked;
      }
    };
    const size_t n = std::min(kWorkers, keys.size());
    std::vector<std::thread> workers;
    for (size_t w = 1; w < n; ++w) workers.emplace_back(work);
    if (n > 0) work();
    for (auto& t : workers) t.join();
    if (failure) return *failure;
    size_t prefixDone = 0;
    while (prefixDone < keys.size() && done[prefixDone]) ++prefixDone;
    if (prefixDone < keys.size()) {  // stopped inside the page (deadline or limit)
      out.resumeAfter = prefixDone > 0 ? *keys[prefixDone - 1] : (before.empty() ? folder : before);
      return out;
    }
    if (!page->objects.empty()) before = page->objects.back().key;
    token = page->nextContinuationToken;
  } while (token);
  return out;
}

Result<S3Tier::PurgeOutcome> S3Tier::purgeInvalid(std::chrono::milliseconds minAge, size_t limit,
                                                  bool dryRun) {
  PurgeOutcome out;
  const TimePoint cutoff = now() - minAge;
  std::optional<std::string> token;
  do {
    auto page = client_.listPage(layout_.invalidPrefix(), token);
    if (!page) return page.error();
    for (const auto& object : page->objects) {
      if (out.records >= limit) return out;
      auto body = client_.get(object.key);
      if (!body) return body.error();
      if (!*body) continue;  // purged by another instance since the listing
      ++out.records;
      auto json = parseJson(**body);
      TimePoint at{};
      const auto cacheId = json ? json->getString("cache_id") : std::nullopt;
      const auto entryKey = json ? json->getString("entry_key") : std::nullopt;
      const auto when = json ? json->getString("invalidated_at") : std::nullopt;
      const bool readable = cacheId && entryKey && when && parseIso8601(*when, at);
      if (readable && at > cutoff) {
        ++out.younger;
        continue;
      }
      ++out.purged;
      if (dryRun) continue;
      const S3Deadline deadline = client_.deadline();
      if (readable) {
        const std::string id(*cacheId);
        for (const std::string& key : {std::string(*entryKey), metadataKeyOf(*entryKey)})
          if (auto r = client_.erase(key, deadline); !r) return r.error();
        if (auto k = json->getString("cache_key"))
          deletePointerIfNames(layout_.byKeyKey(*k), id, deadline);
        if (auto h = json->getString("request_hash"); h && !h->empty())
          deletePointerIfNames(layout_.byHashKey(*h), id, deadline);
      }
      // An unreadable record names nothing to delete: it goes alone.
      if (auto r = client_.erase(object.key, deadline); !r) return r.error();
    }
    token = page->nextContinuationToken;
  } while (token);
  return out;
}

void S3Tier::recordInsert(const Entry& entry, const std::string& entryKey, uint64_t bytes) {
  if (!options_.writeIndex) return;
  Json counts = Json::object();
  counts.set("entries", Json::integer(1));
  counts.set("bytes", Json::integer(static_cast<int64_t>(bytes)));
  counts.set("cost_total", Json::number(entry.costTotal));
  counts.set("tokens_input", Json::integer(entry.tokensInput));
  counts.set("tokens_output", Json::integer(entry.tokensOutput));
  Json model = Json::object();
  model.set("entries", Json::integer(1));
  model.set("bytes", Json::integer(static_cast<int64_t>(bytes)));
  model.set("cost_total", Json::number(entry.costTotal));
  Json models = Json::object();
  models.set(entry.model.empty() ? "_" : entry.model, std::move(model));
  Json delta = Json::object();
  delta.set("counts", std::move(counts));
  delta.set("models", std::move(models));

  const std::string dayName = dayOf(entry.responseTimestamp);
  Json item = dayItemJson(entry, entryKey);
  std::lock_guard lock(mutex_);
  Day& day = days_[dayName];
  day.items[entry.cacheId] = std::move(item);
  day.dirty = true;
  if (dayName > newestDay_) newestDay_ = dayName;
  if (day.items.size() >= std::max<size_t>(1, options_.dayPartEntries)) sealOpenPart(day);
  addCounts(indexDelta_, delta);
}

void S3Tier::sealOpenPart(Day& day) {
  FullPart part;
  part.number = day.next >= 0 ? day.next++ : -1;
  part.items.reserve(day.items.size());
  for (auto& [cid, item] : day.items) part.items.push_back(std::move(item));
  day.items.clear();
  day.dirty = false;  // the open part is empty again (the next item makes it dirty)
  day.full.push_back(std::move(part));
  ++pendingParts_;
  // Bounded: when writes keep failing, the oldest waiting part goes (its entries stay in the
  // bucket, only unlisted by by-date). Days sort by name, so the first with parts is the oldest.
  while (pendingParts_ > kMaxPendingParts) {
    auto oldest = std::find_if(days_.begin(), days_.end(),
                               [](const auto& kv) { return !kv.second.full.empty(); });
    if (oldest == days_.end()) break;  // the others are being written
    indexItemsDropped_ += oldest->second.full.front().items.size();
    oldest->second.full.pop_front();
    --pendingParts_;
  }
}

size_t S3Tier::indexEntriesHeld() const {
  std::lock_guard lock(mutex_);
  size_t n = 0;
  for (const auto& [name, d] : days_) {
    n += d.items.size();
    for (const FullPart& p : d.full) n += p.items.size();
  }
  return n;
}

bool S3Tier::flushIndexIfDue() {
  if (!options_.writeIndex) return false;
  std::unique_lock flush(flushMutex_, std::try_to_lock);
  if (!flush.owns_lock()) return false;  // a flush is running; what it missed stays dirty
  if (options_.indexFlushInterval.count() > 0 && now() - lastFlush_ < options_.indexFlushInterval) {
    // Not due; but full parts are written at once, so that memory stays bounded.
    {
      std::lock_guard lock(mutex_);
      if (pendingParts_ == 0) return false;
    }
    if (!writeDayParts(false)) ++indexErrors_;
    return true;
  }
  bool changed = stats() != flushedStats_ || pendingHitEntries() > 0;
  if (!changed && options_.instanceFigures)
    changed = toJson(options_.instanceFigures()) != flushedFigures_;
  if (!changed) {
    std::lock_guard lock(mutex_);
    changed = pendingParts_ > 0;
    for (const auto& [day, d] : days_) changed = changed || d.dirty || d.viewDirty;
  }
  if (!changed) return false;
  if (!flushLocked()) ++indexErrors_;
  return true;
}

Result<void> S3Tier::flushIndex() {
  std::lock_guard flush(flushMutex_);
  auto r = flushLocked();
  if (!r) ++indexErrors_;
  return r;
}

Result<void> S3Tier::flushLocked() {
  const std::string& id = options_.instanceId;
  lastFlush_ = now();
  flushedStats_ = stats();
  // What this instance wrote before a restart: the totals go on from there.
  if (!baseLoaded_) {
    for (auto [key, base] : {std::pair{layout_.instanceIndexKey(id), &indexBase_},
                             std::pair{layout_.instanceStatisticsKey(id), &statsBase_}}) {
      auto body = client_.get(key);
      if (!body) return body.error();
      *base = Json::object();
      if (*body)
        if (auto json = parseJson(**body)) *base = countsOf(*json);
    }
    baseLoaded_ = true;
  }

  std::optional<Error> firstError;
  auto note = [&](const Error& e) {
    if (!firstError) firstError = e;
  };

  // 1. This instance's by-date parts, then each day's merged view; then the days that are done
  //    leave memory.
  if (auto r = writeDayParts(true); !r) note(r.error());
  std::vector<std::string> views;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [day, d] : days_)
      if (d.viewDirty) views.push_back(day);
  }
  for (const std::string& day : views) {
    if (auto r = mergeDayView(day); !r) {
      note(r.error());
      continue;
    }
    std::lock_guard lock(mutex_);
    days_[day].viewDirty = false;
  }
  {
    std::lock_guard lock(mutex_);
    std::erase_if(days_, [&](const auto& kv) {
      const Day& d = kv.second;
      return kv.first != newestDay_ && !d.dirty && !d.viewDirty && d.full.empty();
    });
  }

  // 2. This instance's totals, then the global merged views.
  Json delta;
  {
    std::lock_guard lock(mutex_);
    delta = std::move(indexDelta_);
    indexDelta_ = Json::object();
  }
  Json index = indexBase_;
  addCounts(index, delta);
  Json indexFile = Json::object();
  indexFile.set("version", Json::integer(kS3LayoutVersion));
  indexFile.set("instance_id", Json::string(id));
  indexFile.set("updated", Json::string(formatIso8601(now())));
  indexFile.set("counts", index.find("counts") ? *index.find("counts") : Json::object());
  indexFile.set("models", index.find("models") ? *index.find("models") : Json::object());
  if (auto r = client_.put(layout_.instanceIndexKey(id), toJson(indexFile), kJsonType); r) {
    indexBase_ = std::move(index);
  } else {
    note(r.error());
    std::lock_guard lock(mutex_);
    addCounts(indexDelta_, delta);
  }
  // Hit counts of stored entries, before the statistics that count their rewrites.
  (void)writeHitCounts();
  Json statistics = statsBase_;
  Json current = Json::object();
  current.set("counts", statsJson(stats()));
  if (options_.instanceFigures) {
    Json figures = options_.instanceFigures();
    flushedFigures_ = toJson(figures);
    current.set("gateway", std::move(figures));
  }
  addCounts(statistics, current);
  Json statsFile = Json::object();
  statsFile.set("version", Json::integer(kS3LayoutVersion));
  statsFile.set("instance_id", Json::string(id));
  statsFile.set("updated", Json::string(formatIso8601(now())));
  statsFile.set("interval_seconds", Json::integer(options_.metricsInterval.count()));
  statsFile.set("counts", statistics.find("counts") ? *statistics.find("counts") : Json::object());
  if (const Json* g = statistics.find("gateway")) statsFile.set("gateway", *g);
  if (auto r = client_.put(layout_.instanceStatisticsKey(id), toJson(statsFile), kJsonType); !r)
    note(r.error());
  if (auto r = mergeGlobalViews(); !r) note(r.error());

  if (firstError) return *firstError;
  return {};
}

Result<void> S3Tier::writeDayParts(bool open) {
  const std::string& id = options_.instanceId;
  std::optional<Error> firstError;
  auto note = [&](const Error& e) {
    if (!firstError) firstError = e;
  };
  auto partBody = [&](const std::string& day, int64_t number, bool full, auto&& forEachItem) {
    Json part = Json::object();
    part.set("version", Json::integer(kByDateVersion));
    part.set("day", Json::string(day));
    part.set("instance_id", Json::string(id));
    part.set("part", Json::integer(number));
    part.set("full", Json::boolean(full));
    part.set("updated", Json::string(formatIso8601(now())));
    Json entries = Json::array();
    forEachItem([&](const Json& item) { entries.push(item); });
    part.set("entries", std::move(entries));
    return toJson(part);
  };

  std::vector<std::string> days;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [day, d] : days_)
      if (!d.full.empty() || (open && d.dirty)) days.push_back(day);
  }
  for (const std::string& day : days) {
    bool numbered;
    {
      std::lock_guard lock(mutex_);
      numbered = days_[day].next >= 0;
    }
    if (!numbered) {
      // This instance's parts of the day so far (an earlier run's): go on after the highest.
      const std::string base = layout_.byDateInstancePrefix(day, id);
      auto listed = client_.list(base);
      if (!listed) {
        note(listed.error());
        continue;
      }
      int64_t next = 0;
      for (const auto& object : *listed) {
        std::string_view name = std::string_view(object.key).substr(base.size());
        if (!name.ends_with(".json")) continue;
        name.remove_suffix(5);
        if (name.empty() || name.size() > 12 ||
            name.find_first_not_of("0123456789") != std::string_view::npos)
          continue;
        next = std::max<int64_t>(next, std::stoll(std::string(name)) + 1);
      }
      std::lock_guard lock(mutex_);
      Day& d = days_[day];
      d.next = next;
      for (FullPart& p : d.full)
        if (p.number < 0) p.number = d.next++;
    }
    // Full parts, oldest first: each written once, then dropped from memory.
    bool wrote = false;
    for (;;) {
      FullPart part;
      {
        std::lock_guard lock(mutex_);
        Day& d = days_[day];
        if (d.full.empty()) break;
        part = std::move(d.full.front());
        d.full.pop_front();
        --pendingParts_;
      }
      const std::string body = partBody(day, part.number, true, [&](auto&& add) {
        for (const Json& item : part.items) add(item);
      });
      if (auto r = client_.put(layout_.byDatePartKey(day, id, part.number), body, kJsonType); !r) {
        note(r.error());
        std::lock_guard lock(mutex_);
        days_[day].full.push_front(std::move(part));  // retried at the next flush
        ++pendingParts_;
        break;
      }
      wrote = true;
    }
    if (open) {
      std::string body;
      int64_t number = -1;
      {
        std::lock_guard lock(mutex_);
        Day& d = days_[day];
        if (d.dirty && !d.items.empty()) {
          number = d.next;
          body = partBody(day, number, false, [&](auto&& add) {
            for (const auto& [cid, item] : d.items) add(item);
          });
          d.dirty = false;
        }
      }
      if (number >= 0) {
        if (auto r = client_.put(layout_.byDatePartKey(day, id, number), body, kJsonType); !r) {
          note(r.error());
          std::lock_guard lock(mutex_);
          days_[day].dirty = true;
        } else {
          wrote = true;
        }
      }
    }
    if (wrote) {
      std::lock_guard lock(mutex_);
      days_[day].viewDirty = true;
    }
  }
  if (firstError) return *firstError;
  return {};
}

namespace {

// The items of one by-date object: a version-2 part or a version-1 segment. nullptr: unreadable
// or of another version (skipped by readers).
const Json* dayItemsOf(const Json& object) {
  const auto version = object.getInt("version");
  if (version != kByDateVersion && version != 1) return nullptr;
  return member(object, "entries", Json::Kind::Array);
}

}  // namespace

Result<void> S3Tier::forEachDayItem(std::string_view day,
                                    const std::function<void(const Json&)>& fn) {
  auto objects = client_.list(layout_.byDatePrefix(day));
  if (!objects) return objects.error();
  for (const auto& object : *objects) {
    if (!object.key.ends_with(".json")) continue;
    auto body = client_.get(object.key);
    if (!body) return body.error();
    if (!*body) continue;  // deleted since the listing
    auto json = parseJson(**body);
    if (!json) continue;  // an unreadable object is skipped, not fatal to the others
    if (const Json* entries = dayItemsOf(*json))
      for (const Json& item : entries->items()) fn(item);
  }
  return {};
}

Result<Json> S3Tier::dayEntries(std::string_view day) {
  std::map<std::string, Json> byId;
  auto r = forEachDayItem(day, [&](const Json& item) {
    if (auto cid = item.getString("cache_id")) byId.emplace(std::string(*cid), item);
  });
  if (!r) return r.error();
  std::vector<Json> items;
  items.reserve(byId.size());
  for (auto& [cid, item] : byId) items.push_back(std::move(item));
  std::stable_sort(items.begin(), items.end(), [](const Json& a, const Json& b) {
    return a.getString("response_timestamp").value_or("") <
           b.getString("response_timestamp").value_or("");
  });
  Json out = Json::array();
  for (auto& item : items) out.push(std::move(item));
  return out;
}

Result<void> S3Tier::mergeDayView(const std::string& day) {
  // One listing of the day's objects; their entries are copied only while they are small.
  auto objects = client_.list(layout_.byDatePrefix(day));
  if (!objects) return objects.error();
  const std::string base = layout_.byDatePrefix(day);
  uint64_t bytes = 0;
  Json parts = Json::array();
  for (const auto& object : *objects) {
    if (!object.key.ends_with(".json")) continue;
    bytes += object.size;
    const std::string rest = object.key.substr(base.size());
    const auto slash = rest.find('/');
    Json part = Json::object();
    part.set("key", Json::string(object.key));
    part.set("instance_id",
             Json::string(slash == std::string::npos ? rest.substr(0, rest.size() - 5)  // version 1
                                                     : rest.substr(0, slash)));
    part.set("bytes", Json::integer(static_cast<int64_t>(object.size)));
    parts.push(std::move(part));
  }
  Json view = Json::object();
  view.set("version", Json::integer(kByDateVersion));
  view.set("day", Json::string(day));
  view.set("updated", Json::string(formatIso8601(now())));
  view.set("merged_by", Json::string(options_.instanceId));
  const bool complete = bytes <= options_.dayViewMaxBytes;
  view.set("complete", Json::boolean(complete));
  view.set("parts", std::move(parts));
  if (complete) {
    // The parts listed since are in the next flush's view.
    auto entries = dayEntries(day);
    if (!entries) return entries.error();
    view.set("entries", std::move(*entries));
  }
  return client_.put(layout_.byDateMergedKey(day), toJson(view), kJsonType);
}

void S3Tier::onTierEvent(const TierEvent& event) {
  if (event.kind != TierEvent::Kind::Hit || !event.entry || options_.hitUpdatesPerFlush == 0 ||
      event.entry->cacheId.empty())
    return;
  const Entry& e = *event.entry;
  const TimePoint at = now();
  std::lock_guard lock(hitMutex_);
  auto it = pendingHits_.find(e.cacheId);
  if (it == pendingHits_.end()) {
    if (pendingHits_.size() >= options_.maxPendingHitEntries) {
      ++hitUpdatesDropped_;
      return;
    }
    it = pendingHits_.emplace(e.cacheId, PendingHits{.metadataKey = layout_.metadataKey(e)}).first;
  }
  ++it->second.count;
  it->second.last = std::max(it->second.last, at);
}

size_t S3Tier::pendingHitEntries() const {
  std::lock_guard lock(hitMutex_);
  return pendingHits_.size();
}

size_t S3Tier::writeHitCounts() {
  std::vector<std::pair<std::string, PendingHits>> batch;  // cache_id, its hits
  {
    std::lock_guard lock(hitMutex_);
    // Round robin from where the last batch stopped, so that no entry waits behind hotter ones.
    auto it = pendingHits_.upper_bound(hitCursor_);
    while (!pendingHits_.empty() && batch.size() < options_.hitUpdatesPerFlush) {
      if (it == pendingHits_.end()) it = pendingHits_.begin();
      hitCursor_ = it->first;
      batch.emplace_back(it->first, std::move(it->second));
      it = pendingHits_.erase(it);
    }
  }
  size_t written = 0;
  std::vector<std::pair<std::string, PendingHits>> retry;
  bool failed = false;
  for (auto& [cacheId, p] : batch) {
    if (failed) {  // S3 is failing: the rest wait for the next flush without a request each
      retry.emplace_back(cacheId, std::move(p));
      continue;
    }
    const S3Deadline deadline = client_.deadline();
    auto body = client_.get(p.metadataKey, deadline);
    std::optional<Json> meta;
    if (body && *body)
      if (auto m = parseJson(**body); m && m->isObject()) meta = std::move(*m);
    if (body && !meta) {
      // No metadata object (or not one we can read): maybe not yet, an asynchronous write still
      // in the outbox; after kHitAttempts flushes, not to be.
      if (++p.misses >= kHitAttempts) {
        hitUpdatesDropped_ += static_cast<uint64_t>(p.count);
        continue;
      }
      retry.emplace_back(cacheId, std::move(p));
      continue;
    }
    if (meta) {
      const int64_t had = meta->getInt("hit_count").value_or(0);
      meta->set("hit_count", Json::integer(had + p.count));
      TimePoint last = p.last;
      if (auto prev = meta->getString("last_accessed")) {
        TimePoint t;
        if (parseIso8601(*prev, t)) last = std::max(last, t);
      }
      meta->set("last_accessed", Json::string(formatIso8601(last)));
      if (client_.put(p.metadataKey, toJson(*meta), kJsonType, deadline)) {
        ++written;
        ++hitUpdates_;
        continue;
      }
    }
    failed = true;  // a failed request: the next flush tries again
    retry.emplace_back(cacheId, std::move(p));
  }
  if (!retry.empty()) {
    std::lock_guard lock(hitMutex_);
    for (auto& [key, p] : retry) {
      auto [it, fresh] = pendingHits_.try_emplace(key, p);
      if (!fresh) {
        it->second.misses = std::max(it->second.misses, p.misses);
        it->second.count += p.count;
        it->second.last = std::max(it->second.last, p.last);
      }
    }
  }
  return written;
}

Result<Json> S3Tier::globalStatistics() {
  auto objects = client_.list(layout_.instancesPrefix());
  if (!objects) return objects.error();
  Json index = Json::object();
  Json statistics = Json::object();
  Json byInstance = Json::object();
  std::set<std::string> instances;
  const std::string base = layout_.instancesPrefix();
  for (const auto& object : *objects) {
    const std::string rest = object.key.substr(base.size());
    const auto slash = rest.find('/');
    if (slash == std::string::npos) continue;
    const std::string file = rest.substr(slash + 1);
    Json* into = file == "cache_index.json"  ? &index
                 : file == "statistics.json" ? &statistics
                                             : nullptr;
    if (!into) continue;
    auto body = client_.get(object.key);
    if (!body) return body.error();
    if (!*body) continue;
    auto json = parseJson(**body);
    if (!json || json->getInt("version") != kS3LayoutVersion) continue;
    const std::string instance = rest.substr(0, slash);
    instances.insert(instance);
    addCounts(*into, countsOf(*json));
    if (into == &statistics) {
      // Each gateway's part and how fresh it is: its totals as of its last flush ("updated").
      Json part = Json::object();
      for (std::string_view name : {"updated", "interval_seconds"})
        if (const Json* v = json->find(name)) part.set(name, *v);
      if (const Json* g = member(*json, "gateway", Json::Kind::Object)) {
        for (std::string_view name : {"requests", "cacheable", "hits", "misses", "coalesced",
                                      "cost_saved_usd", "latency_saved_ms", "hits_by_tier"})
          if (const Json* v = g->find(name)) part.set(name, *v);
        withHitRate(part, "cacheable");
      }
      byInstance.set(instance, std::move(part));
    }
  }
  Json ids = Json::array();
  for (const auto& i : instances) ids.push(Json::string(i));
  for (Json* j : {&index, &statistics})
    if (!j->find("counts")) j->set("counts", Json::object());
  if (!index.find("models")) index.set("models", Json::object());
  // The gateways' figures, summed, at the top of the statistics view (with the rates, which do
  // not add up, derived here); the S3 tier's own operations stay under "counts".
  if (Json* g = statistics.find("gateway"); g && g->isObject()) {
    Json figures = std::move(*g);
    for (size_t i = 0; i < figures.size(); ++i)
      statistics.set(figures.keys()[i], figures.items()[i]);
    Json view = Json::object();
    for (size_t i = 0; i < statistics.size(); ++i)
      if (statistics.keys()[i] != "gateway") view.set(statistics.keys()[i], statistics.items()[i]);
    statistics = std::move(view);
    withHitRate(statistics, "cacheable");
    for (std::string_view group : {"by_model", "by_platform"})
      if (Json* m = statistics.find(group); m && m->isObject())
        for (Json& f : m->items()) withHitRate(f, "requests");
  }
  statistics.set("by_instance", std::move(byInstance));
  Json out = Json::object();
  out.set("cache_index", std::move(index));
  out.set("statistics", std::move(statistics));
  out.set("instances", std::move(ids));
  return out;
}

Result<void> S3Tier::mergeGlobalViews() {
  auto merged = globalStatistics();
  if (!merged) return merged.error();
  for (auto [name, key] : {std::pair{"cache_index", layout_.globalIndexKey()},
                           std::pair{"statistics", layout_.globalStatisticsKey()}}) {
    const Json* part = merged->find(name);
    Json view = Json::object();
    view.set("version", Json::integer(kS3LayoutVersion));
    view.set("updated", Json::string(formatIso8601(now())));
    view.set("merged_by", Json::string(options_.instanceId));
    view.set("instances", *merged->find("instances"));
    for (size_t i = 0; i < part->size(); ++i) view.set(part->keys()[i], part->items()[i]);
    if (auto r = client_.put(key, toJson(view), kJsonType); !r) return r;
  }
  return {};
}

}  // namespace llmcache::cache::s3
