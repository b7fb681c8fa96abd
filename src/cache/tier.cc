#include "cache/tier.h"

namespace llmcache::cache {

std::string_view tierName(TierId id) {
  switch (id) {
    case TierId::Memory:
      return "memory";
    case TierId::Disk:
      return "disk";
    case TierId::S3:
      return "s3";
    case TierId::Redis:
      return "redis";
    case TierId::Cassette:
      return "cassette";
  }
  return "unknown";
}

std::optional<TierId> parseTierId(std::string_view name) {
  for (TierId id : {TierId::Memory, TierId::Disk, TierId::S3, TierId::Redis, TierId::Cassette})
    if (tierName(id) == name) return id;
  return std::nullopt;
}

}  // namespace llmcache::cache
