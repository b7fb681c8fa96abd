#include "invalidation/s3_broadcast.h"

#include <cstdio>
#include <fstream>
#include <sstream>

#include "invalidation/request.h"

namespace llmcache::invalidation {

S3InvalidationBroadcast::S3InvalidationBroadcast(cache::s3::S3Client& client, std::string keyPrefix,
                                                 std::string instanceId, Invalidator& invalidator,
                                                 std::filesystem::path stateFile,
                                                 std::chrono::milliseconds poll, const Clock& clock)
    : client_(client),
      keyPrefix_(keyPrefix),
      prefix_(std::move(keyPrefix) + "cache-index/invalidations/"),
      instanceId_(std::move(instanceId)),
      invalidator_(invalidator),
      stateFile_(std::move(stateFile)),
      poll_(poll),
      clock_(clock) {
  std::ifstream in(stateFile_);
  if (in && std::getline(in, watermark_) && !watermark_.empty()) primed_ = true;
  thread_ = std::thread([this] { loop(); });
}

S3InvalidationBroadcast::~S3InvalidationBroadcast() {
  {
    std::lock_guard lock(stopMutex_);
    stopping_ = true;
  }
  stopCv_.notify_all();
  thread_.join();
}

void S3InvalidationBroadcast::loop() {
  for (;;) {
    (void)pollOnce();
    std::unique_lock lock(stopMutex_);
    if (stopCv_.wait_for(lock, poll_, [this] { return stopping_; })) return;
  }
}

Result<void> writeInvalidationRecord(cache::s3::S3Client& client, std::string_view keyPrefix,
                                     std::string_view instanceId, const Json& body,
                                     const Clock& clock, uint64_t n) {
  if (body.getBool("dry_run") == std::optional<bool>(true)) return {};
  Json record = body;
  record.erase("dry_run");
  // "older_than": "7d" -> the instant it means now, so every instance removes the same entries.
  if (auto age = body.getString("older_than")) {
    if (auto d = parseDuration(*age))
      record.set("older_than", Json::string(formatIso8601(clock.now() - *d)));
  }
  Json out = Json::object()
                 .set("version", Json::integer(1))
                 .set("instance_id", Json::string(std::string(instanceId)))
                 .set("created", Json::string(formatIso8601(clock.now())))
                 .set("request", std::move(record));
  char name[64];
  std::snprintf(name, sizeof name, "%013lld-", static_cast<long long>(toUnixMillis(clock.now())));
  const std::string key = std::string(keyPrefix) + "cache-index/invalidations/" + name +
                          std::string(instanceId) + "-" + std::to_string(n) + ".json";
  return client.put(key, toJson(out), "application/json");
}

Result<void> S3InvalidationBroadcast::publish(const Json& body) {
  return writeInvalidationRecord(client_, keyPrefix_, instanceId_, body, clock_, ++counter_);
}

Result<size_t> S3InvalidationBroadcast::pollOnce() {
  std::lock_guard lock(mutex_);
  auto listed = client_.list(prefix_);
  if (!listed) return listed.error();
  size_t applied = 0;
  std::string newest;
  for (const auto& object : *listed) {
    if (object.key.size() <= prefix_.size()) continue;
    const std::string name = object.key.substr(prefix_.size());
    if (name < watermark_ || !seen_.insert(name).second) continue;
    newest = std::max(newest, name);
    if (!primed_) continue;  // a new instance: earlier records concern entries it lacks
    if (name.find("-" + instanceId_ + "-") != std::string::npos) continue;  // our own
    auto text = client_.get(object.key);
    if (!text || !*text) continue;
    auto json = parseJson(**text);
    if (!json) continue;
    const Json* request = json->find("request");
    auto parsed =
        request ? parseRequest(*request) : Result<Request>(makeError(Errc::Corrupt, "no request"));
    if (!parsed) continue;
    // Entries stored before the record's creation are condemned here even if a shared tier
    // still holds them unmarked (Invalidator::condemns); the issuer searched the bucket already.
    if (auto created = json->getString("created")) {
      TimePoint at{};
      if (parseIso8601(*created, at)) parsed->issuedAt = at;
    }
    parsed->searchShared = false;
    if (invalidator_.apply(*parsed)) {
      ++applied;
      ++appliedRemote_;
    }
  }
  primed_ = true;
  if (newest.empty() && watermark_.empty()) {
    // No record yet: remember that this instance listed them now, so that after a restart it
    // applies the records written meanwhile (a watermark on file is what makes it "primed").
    char now[32];
    std::snprintf(now, sizeof now, "%013lld", static_cast<long long>(toUnixMillis(clock_.now())));
    newest = now;
  }
  if (!newest.empty()) {
    long long ms = 0;
    std::sscanf(newest.c_str(), "%13lld", &ms);
    char mark[32];
    std::snprintf(mark, sizeof mark, "%013lld", std::max(0LL, ms - kSkewMs));
    if (mark > watermark_) {
      watermark_ = mark;
      seen_.erase(seen_.begin(), seen_.lower_bound(watermark_));
      std::ofstream(stateFile_, std::ios::trunc) << watermark_ << "\n";
    }
  }
  return applied;
}

}  // namespace llmcache::invalidation
