#pragma once
// The index's SQLite schema and its migrations (docs/index-schema.md). The schema version is
// the database's PRAGMA user_version: 0 for a new file, kSchemaVersion once migrated.
#include <span>
#include <string_view>

#include "common/result.h"

struct sqlite3;

namespace llmcache::index {

// One step: SQL that takes the schema from version - 1 to version. Steps are applied in order,
// each in its own transaction together with the user_version bump, so a crash or a failing
// step leaves the database at the previous version, never half-migrated.
// To change the schema, append a step (never edit a shipped one) and raise kSchemaVersion.
struct Migration {
  int version;
  std::string_view sql;
};

inline constexpr int kSchemaVersion = 7;
std::span<const Migration> migrations();

// Brings db up to the last step of `steps`. Returns the version reached.
// Errors: Corrupt when the database's version is newer than the last step (a newer build wrote
// it: refusing beats misreading), or when it is not a database; Io when a step fails (the
// database stays at the last version that succeeded). Caller holds the only use of db.
Result<int> migrate(sqlite3* db, std::span<const Migration> steps);

}  // namespace llmcache::index
