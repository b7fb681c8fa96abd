#include "cache/cassette/cassette_tier.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <stdexcept>

namespace llmcache::cache {

namespace fs = std::filesystem;

namespace {

constexpr const char* kManifest = "cassette.json";
constexpr const char* kLastReplay = "last-replay.json";
constexpr const char* kEntriesDir = "entries";

void pretty(const Json& v, std::string& out, int depth) {
  auto indent = [&](int d) { out.append(static_cast<size_t>(d) * 2, ' '); };
  if (v.isObject()) {
    const auto keys = v.keys();
    const auto values = v.items();
    if (keys.empty()) {
      out += "{}";
      return;
    }
    out += "{\n";
    for (size_t i = 0; i < keys.size(); ++i) {
      indent(depth + 1);
      writeJsonString(keys[i], out);
      out += ": ";
      pretty(values[i], out, depth + 1);
      if (i + 1 < keys.size()) out += ',';
      out += '\n';
    }
    indent(depth);
    out += '}';
  } else if (v.isArray()) {
    const auto items = v.items();
    if (items.empty()) {
      out += "[]";
      return;
    }
    out += "[\n";
    for (size_t i = 0; i < items.size(); ++i) {
      indent(depth + 1);
      pretty(items[i], out, depth + 1);
      if (i + 1 < items.size()) out += ',';
      out += '\n';
    }
    indent(depth);
    out += ']';
  } else {
    writeJson(v, out);
  }
}

Result<std::string> readAll(const fs::path& path) {
  // open(2), not an ifstream: a missing file (ENOENT) must be told from an unreadable one without
  // a second look that a concurrent insert could answer differently.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return makeError(Errc::NotFound, path.string() + ": no such file");
    return makeError(Errc::Io, path.string() + ": cannot be read");
  }
  std::string out;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      ::close(fd);
      return makeError(Errc::Io, path.string() + ": cannot be read");
    }
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

}  // namespace

std::string prettyJson(const Json& value) {
  std::string out;
  pretty(value, out, 0);
  out += '\n';
  return out;
}

std::string CassetteTier::fileName(std::string_view cacheKey) {
  std::string name(cacheKey);
  for (char& c : name) {
    const bool keep = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                      c == '_' || c == '-';
    if (!keep) c = '_';
  }
  if (name.empty()) name.push_back('_');
  name.append(".json");
  return name;
}

fs::path CassetteTier::entryPath(const fs::path& dir, std::string_view cacheKey) {
  return dir / kEntriesDir / fileName(cacheKey);
}

std::string CassetteTier::entryText(const Entry& entry) { return prettyJson(entryToJson(entry)); }

Result<Entry> CassetteTier::readFile(const fs::path& path) {
  auto text = readAll(path);
  if (!text) return text.error();
  auto json = parseJson(*text);
  if (!json) return makeError(Errc::Corrupt, path.string() + ": " + json.error().message);
  auto entry = entryFromJson(*json);
  if (!entry) return makeError(Errc::Corrupt, path.string() + ": " + entry.error().message);
  return entry;
}

std::vector<CassetteFile> CassetteTier::listFiles(const fs::path& dir) {
  std::vector<fs::path> paths;
  std::error_code ec;
  for (fs::directory_iterator it(dir / kEntriesDir, ec), end; !ec && it != end; it.increment(ec))
    if (it->path().extension() == ".json") paths.push_back(it->path());
  std::sort(paths.begin(), paths.end());
  std::vector<CassetteFile> out;
  out.reserve(paths.size());
  for (auto& p : paths) {
    auto entry = readFile(p);
    out.push_back({std::move(p), std::move(entry)});
  }
  return out;
}

Result<std::set<std::string>> CassetteTier::lastReplayKeys(const fs::path& dir) {
  auto text = readAll(dir / kLastReplay);
  if (!text) return text.error();
  auto json = parseJson(*text);
  const Json* used = json ? json->find("used") : nullptr;
  if (!used || !used->isArray())
    return makeError(Errc::Corrupt, (dir / kLastReplay).string() + ": not a list of used keys");
  std::set<std::string> keys;
  for (const Json& k : used->items())
    if (k.isString()) keys.emplace(k.text());
  return keys;
}

Result<void> CassetteTier::writeAtomically(const fs::path& path, std::string_view text) {
  // Temp file, fsync, rename: a reader sees the old file or the new one whole. The temp name
  // starts with '.' and does not end in .json, so a listing never takes it for an entry.
  static std::atomic<uint64_t> serial{0};
  std::string name(1, '.');
  name.append(path.filename().string())
      .append(".tmp")
      .append(std::to_string(::getpid()))
      .append("-")
      .append(std::to_string(serial.fetch_add(1, std::memory_order_relaxed)));
  const fs::path tmp = path.parent_path() / name;
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return makeError(Errc::Io, tmp.string() + ": cannot be created");
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n <= 0) {
      ::close(fd);
      ::unlink(tmp.c_str());
      return makeError(Errc::Io, tmp.string() + ": write failed");
    }
    done += static_cast<size_t>(n);
  }
  const bool synced = ::fsync(fd) == 0;
  ::close(fd);
  std::error_code ec;
  if (synced) fs::rename(tmp, path, ec);
  if (!synced || ec) {
    ::unlink(tmp.c_str());
    return makeError(Errc::Io, path.string() + ": cannot be written");
  }
  return {};
}

CassetteTier::CassetteTier(CassetteTierOptions options) : options_(std::move(options)) {
  if (options_.dir.empty()) throw std::runtime_error("cassette: no folder configured");
  fs::create_directories(options_.dir / kEntriesDir);  // throws filesystem_error
  const fs::path manifest = options_.dir / kManifest;
  if (auto text = readAll(manifest)) {
    auto json = parseJson(*text);
    const auto version = json ? json->find("version") : nullptr;
    if (!version || version->asInt64() != kCassetteFormatVersion)
      throw std::runtime_error(manifest.string() + ": not a cassette of format version " +
                               std::to_string(kCassetteFormatVersion));
  } else {
    Json m = Json::object();
    m.set("format", Json::string("llmcache-cassette"));
    m.set("version", Json::integer(kCassetteFormatVersion));
    if (auto r = writeAtomically(manifest, prettyJson(m)); !r)
      throw std::runtime_error(r.error().message);
  }
  if (options_.trackUse) {
    std::lock_guard lock(useMutex_);
    noteUse({});  // a fresh run: the list starts empty
  }
}

void CassetteTier::noteUse(std::string_view cacheKey) {
  // Under useMutex_. Rewritten whole at each new key: a test suite's few hundred keys at most.
  if (!cacheKey.empty() && !used_.emplace(cacheKey).second) return;
  Json keys = Json::array();
  for (const std::string& k : used_) keys.push(Json::string(k));
  Json doc = Json::object();
  doc.set("version", Json::integer(kCassetteFormatVersion));
  doc.set("used", std::move(keys));
  (void)writeAtomically(options_.dir / kLastReplay, prettyJson(doc));  // best effort: prune's aid
}

Result<std::optional<EntryPtr>> CassetteTier::lookup(std::string_view cacheKey) {
  auto entry = readFile(entryPath(options_.dir, cacheKey));
  if (!entry) {
    if (entry.error().code == Errc::NotFound) return std::optional<EntryPtr>{};
    if (entry.error().code == Errc::Corrupt) {
      unreadable_.fetch_add(1, std::memory_order_relaxed);
      return std::optional<EntryPtr>{};
    }
    return entry.error();
  }
  // Two keys that sanitize to one name: the file holds the other one's entry, a miss.
  if (entry->cacheKey != cacheKey) return std::optional<EntryPtr>{};
  if (options_.trackUse) {
    std::lock_guard lock(useMutex_);
    noteUse(cacheKey);
  }
  return std::optional<EntryPtr>{std::make_shared<const Entry>(std::move(*entry))};
}

Result<void> CassetteTier::insert(EntryPtr entry) {
  const std::string text = entryText(*entry);
  {
    std::lock_guard lock(writeMutex_);
    if (auto r = writeAtomically(entryPath(options_.dir, entry->cacheKey), text); !r) return r;
  }
  if (options_.trackUse) {  // replay-or-record: what this run recorded, it also used
    std::lock_guard lock(useMutex_);
    noteUse(entry->cacheKey);
  }
  return {};
}

Result<bool> CassetteTier::erase(std::string_view cacheKey) {
  const fs::path path = entryPath(options_.dir, cacheKey);
  std::lock_guard lock(writeMutex_);
  auto entry = readFile(path);
  if (!entry) {
    if (entry.error().code == Errc::NotFound) return false;
    if (entry.error().code == Errc::Io) return entry.error();
  } else if (entry->cacheKey != cacheKey) {
    return false;  // another key's file
  }
  std::error_code ec;
  const bool removed = fs::remove(path, ec);
  if (ec) return makeError(Errc::Io, path.string() + ": cannot be removed");
  return removed;
}

uint64_t CassetteTier::storedBytes(std::string_view cacheKey) const {
  std::error_code ec;
  const auto size = fs::file_size(entryPath(options_.dir, cacheKey), ec);
  return ec ? 0 : size;
}

}  // namespace llmcache::cache
