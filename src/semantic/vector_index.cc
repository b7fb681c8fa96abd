#include "semantic/vector_index.h"

#include <fcntl.h>
#include <hnswlib/hnswlib.h>
#include <unistd.h>

#include <cmath>
#include <fstream>
#include <mutex>
#include <sstream>

#include "common/json.h"

namespace llmcache::semantic {

namespace fs = std::filesystem;

namespace {
constexpr int kManifestVersion = 1;
constexpr size_t kInitialCapacity = 16;

struct KeyHash {
  std::string cacheKey;
  std::string requestHash;
  bool live = false;
};

Result<void> writeFileSynced(const fs::path& path, std::string_view bytes) {
  const fs::path tmp = path.string() + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return makeError(Errc::Io, "semantic index: cannot write " + tmp.string());
  size_t off = 0;
  while (off < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + off, bytes.size() - off);
    if (n <= 0) {
      ::close(fd);
      return makeError(Errc::Io, "semantic index: write failed: " + tmp.string());
    }
    off += static_cast<size_t>(n);
  }
  ::fsync(fd);
  ::close(fd);
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) return makeError(Errc::Io, "semantic index: rename failed: " + path.string());
  return {};
}
}  // namespace

struct VectorIndex::Partition {
  Partition(size_t dim, const IndexOptions& o)
      : space(dim),
        graph(std::make_unique<hnswlib::HierarchicalNSW<float>>(&space, kInitialCapacity, o.m,
                                                                o.efConstruction)) {
    graph->setEf(o.efSearch);
  }
  hnswlib::InnerProductSpace space;
  std::unique_ptr<hnswlib::HierarchicalNSW<float>> graph;
  std::vector<KeyHash> slots;  // by label
  size_t live = 0;
};

bool normalizeVector(std::vector<float>& v) {
  double sum = 0;
  for (float f : v) sum += static_cast<double>(f) * f;
  if (v.empty() || !(sum > 0) || !std::isfinite(sum)) return false;
  const float inv = static_cast<float>(1.0 / std::sqrt(sum));
  for (float& f : v) f *= inv;
  return true;
}

float cosine(std::span<const float> a, std::span<const float> b) {
  if (a.size() != b.size() || a.empty()) return 0;
  double dot = 0, na = 0, nb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    dot += static_cast<double>(a[i]) * b[i];
    na += static_cast<double>(a[i]) * a[i];
    nb += static_cast<double>(b[i]) * b[i];
  }
  if (na <= 0 || nb <= 0) return 0;
  return static_cast<float>(dot / std::sqrt(na * nb));
}

VectorIndex::VectorIndex(IndexOptions options) : options_(options) {}
VectorIndex::~VectorIndex() = default;

VectorIndex::Partition* VectorIndex::partitionFor(std::string_view partition) {
  auto it = partitions_.find(std::string(partition));
  if (it != partitions_.end()) return it->second.get();
  auto made = std::make_unique<Partition>(dimension_, options_);
  Partition* p = made.get();
  partitions_.emplace(std::string(partition), std::move(made));
  return p;
}

Result<void> VectorIndex::add(std::string_view partition, std::string_view cacheKey,
                              std::string_view requestHash, std::span<const float> vector) {
  std::vector<float> v(vector.begin(), vector.end());
  if (!normalizeVector(v))
    return makeError(Errc::InvalidArgument, "semantic index: an empty or zero vector");
  std::unique_lock lock(mutex_);
  if (dimension_ == 0) dimension_ = v.size();
  if (v.size() != dimension_)
    return makeError(Errc::InvalidArgument,
                     "semantic index: a vector of dimension " + std::to_string(v.size()) +
                         " in an index of dimension " + std::to_string(dimension_));
  // One vector per key: the old one goes first (it may be in another partition).
  if (auto old = byKey_.find(std::string(cacheKey)); old != byKey_.end()) {
    Partition* p = old->second.partition;
    p->graph->markDelete(old->second.slot);
    p->slots[old->second.slot] = KeyHash{};
    --p->live;
    byKey_.erase(old);
  }
  Partition* p = partitionFor(partition);
  try {
    if (p->slots.size() >= p->graph->max_elements_)
      p->graph->resizeIndex(std::max(kInitialCapacity, p->graph->max_elements_ * 2));
    const auto slot = static_cast<uint32_t>(p->slots.size());
    p->graph->addPoint(v.data(), slot);
    p->slots.push_back(KeyHash{std::string(cacheKey), std::string(requestHash), true});
    ++p->live;
    byKey_.emplace(std::string(cacheKey), Label{p, slot});
  } catch (const std::exception& e) {
    return makeError(Errc::Unavailable, std::string("semantic index: ") + e.what());
  }
  return {};
}

bool VectorIndex::remove(std::string_view cacheKey) {
  std::unique_lock lock(mutex_);
  auto it = byKey_.find(std::string(cacheKey));
  if (it == byKey_.end()) return false;
  Partition* p = it->second.partition;
  try {
    p->graph->markDelete(it->second.slot);
  } catch (const std::exception&) {
  }
  p->slots[it->second.slot] = KeyHash{};
  --p->live;
  byKey_.erase(it);
  return true;
}

std::optional<Match> VectorIndex::nearest(std::string_view partition, std::span<const float> vector,
                                          std::string_view excludeKey) const {
  std::vector<float> v(vector.begin(), vector.end());
  if (!normalizeVector(v)) return std::nullopt;
  std::shared_lock lock(mutex_);
  if (v.size() != dimension_) return std::nullopt;
  auto it = partitions_.find(std::string(partition));
  if (it == partitions_.end() || it->second->live == 0) return std::nullopt;
  const Partition& p = *it->second;
  const size_t k = excludeKey.empty() ? 1 : std::min<size_t>(2, p.live);
  try {
    auto found = p.graph->searchKnn(v.data(), k);
    std::optional<Match> best;
    while (!found.empty()) {  // farthest first
      const auto [distance, slot] = found.top();
      found.pop();
      const KeyHash& kh = p.slots[slot];
      if (!kh.live || kh.cacheKey == excludeKey) continue;
      best = Match{kh.cacheKey, kh.requestHash, 1.0f - distance};
    }
    return best;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

void VectorIndex::setEfSearch(size_t ef) {
  std::unique_lock lock(mutex_);
  options_.efSearch = ef;
  for (auto& [name, p] : partitions_) p->graph->setEf(ef);
}

size_t VectorIndex::efSearch() const {
  std::shared_lock lock(mutex_);
  return options_.efSearch;
}

bool VectorIndex::contains(std::string_view cacheKey) const {
  std::shared_lock lock(mutex_);
  return byKey_.contains(std::string(cacheKey));
}

size_t VectorIndex::size() const {
  std::shared_lock lock(mutex_);
  return byKey_.size();
}

size_t VectorIndex::partitions() const {
  std::shared_lock lock(mutex_);
  size_t n = 0;
  for (const auto& [name, p] : partitions_) n += p->live > 0 ? 1 : 0;
  return n;
}

size_t VectorIndex::dimension() const {
  std::shared_lock lock(mutex_);
  return dimension_;
}

size_t VectorIndex::memoryBytes() const {
  std::shared_lock lock(mutex_);
  size_t bytes = 0;
  for (const auto& [name, p] : partitions_) {
    const auto& g = *p->graph;
    // hnswlib: level 0 holds every slot's vector and links; upper levels ~1/M of the nodes.
    bytes += g.max_elements_ * g.size_data_per_element_;
    bytes += g.max_elements_ * (sizeof(void*) + sizeof(int) + sizeof(std::mutex));
    bytes += g.cur_element_count * g.size_links_per_element_ / std::max<size_t>(1, g.M_);
    bytes += g.cur_element_count * (sizeof(hnswlib::labeltype) + sizeof(uint32_t) + 16);
    for (const KeyHash& s : p->slots)
      bytes += sizeof(KeyHash) + s.cacheKey.capacity() + s.requestHash.capacity();
    bytes += name.capacity() + sizeof(Partition);
  }
  bytes += byKey_.size() * (sizeof(std::string) + sizeof(Label) + 48);
  for (const auto& [key, label] : byKey_) bytes += key.capacity();
  return bytes;
}

Result<void> VectorIndex::save(const fs::path& dir) const {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return makeError(Errc::Io, "semantic index: cannot create " + dir.string());
  uint64_t generation = 1;
  if (auto old = std::ifstream(dir / "manifest.json")) {
    std::stringstream ss;
    ss << old.rdbuf();
    if (auto parsed = parseJson(ss.str()))
      generation = static_cast<uint64_t>(parsed->getInt("generation").value_or(0)) + 1;
  }
  const std::string prefix = "g" + std::to_string(generation) + "-";
  std::shared_lock lock(mutex_);
  Json parts = Json::array();
  size_t n = 0;
  for (const auto& [name, p] : partitions_) {
    if (p->live == 0) continue;
    const std::string file = prefix + std::to_string(n++) + ".hnsw";
    try {
      p->graph->saveIndex((dir / file).string());
    } catch (const std::exception& e) {
      return makeError(Errc::Unavailable, std::string("semantic index: ") + e.what());
    }
    Json slots = Json::array();
    for (const KeyHash& s : p->slots)
      slots.push(
          s.live ? Json::array().push(Json::string(s.cacheKey)).push(Json::string(s.requestHash))
                 : Json::null());
    parts.push(Json::object()
                   .set("partition", Json::string(name))
                   .set("file", Json::string(file))
                   .set("slots", std::move(slots)));
  }
  Json manifest = Json::object()
                      .set("version", Json::integer(kManifestVersion))
                      .set("generation", Json::integer(static_cast<int64_t>(generation)))
                      .set("dimension", Json::integer(static_cast<int64_t>(dimension_)))
                      .set("partitions", std::move(parts));
  lock.unlock();
  if (auto written = writeFileSynced(dir / "manifest.json", toJson(manifest)); !written)
    return written;
  // The older generations' graphs are no longer named by the manifest.
  for (const auto& f : fs::directory_iterator(dir, ec)) {
    const std::string fname = f.path().filename().string();
    if (f.path().extension() == ".hnsw" && fname.rfind(prefix, 0) != 0) fs::remove(f.path(), ec);
  }
  return {};
}

Result<void> VectorIndex::load(const fs::path& dir) {
  std::ifstream in(dir / "manifest.json");
  if (!in) return makeError(Errc::NotFound, "semantic index: no manifest in " + dir.string());
  std::stringstream ss;
  ss << in.rdbuf();
  auto manifest = parseJson(ss.str(), {.maxDepth = 8, .maxValues = size_t{1} << 30});
  auto corrupt = [&](std::string what) {
    return makeError(Errc::Corrupt, "semantic index: " + (dir / "manifest.json").string() + ": " +
                                        std::move(what));
  };
  if (!manifest || !manifest->isObject()) return corrupt("not JSON");
  if (manifest->getInt("version") != std::optional<int64_t>(kManifestVersion))
    return corrupt("unknown version");
  const int64_t dim = manifest->getInt("dimension").value_or(-1);
  const Json* parts = manifest->find("partitions");
  if (dim < 0 || !parts || !parts->isArray()) return corrupt("no dimension or partitions");
  std::unordered_map<std::string, std::unique_ptr<Partition>> loaded;
  std::unordered_map<std::string, Label> byKey;
  for (const Json& part : parts->items()) {
    auto name = part.getString("partition");
    auto file = part.getString("file");
    const Json* slots = part.find("slots");
    if (!name || !file || !slots || !slots->isArray() || file->find('/') != std::string_view::npos)
      return corrupt("a partition without name, file or slots");
    auto p = std::make_unique<Partition>(static_cast<size_t>(dim), options_);
    try {
      p->graph = std::make_unique<hnswlib::HierarchicalNSW<float>>(
          &p->space, (dir / std::string(*file)).string(), false, 0);
      p->graph->setEf(options_.efSearch);
    } catch (const std::exception& e) {
      return corrupt(std::string(*file) + ": " + e.what());
    }
    if (p->graph->cur_element_count != slots->size())
      return corrupt(std::string(*file) + ": holds another number of vectors than its slots");
    for (const Json& s : slots->items()) {
      const auto slot = static_cast<uint32_t>(p->slots.size());
      if (s.isArray() && s.size() == 2 && s.items()[0].isString() && s.items()[1].isString()) {
        p->slots.push_back(
            {std::string(s.items()[0].text()), std::string(s.items()[1].text()), true});
        ++p->live;
        byKey[p->slots.back().cacheKey] = Label{p.get(), slot};
      } else {
        p->slots.push_back(KeyHash{});
      }
    }
    loaded.emplace(std::string(*name), std::move(p));
  }
  std::unique_lock lock(mutex_);
  dimension_ = static_cast<size_t>(dim);
  partitions_ = std::move(loaded);
  byKey_ = std::move(byKey);
  return {};
}

}  // namespace llmcache::semantic
