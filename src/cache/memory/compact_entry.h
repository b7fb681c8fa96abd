#pragma once
// CompactEntry: how the memory tier holds an entry. One heap block per entry: the fixed fields,
// then length-prefixed strings, the answer last; 32-hex ids are kept as their 16 bytes. It
// exists because an Entry object costs ~800 bytes beyond its answer (a 512-byte struct, three
// heap strings, a control block); the block costs ~150 (bench/memory_bench). A lookup rebuilds an
// Entry from it (a few allocations and one copy of the answer, ~0.3 us), which is what the
// hit path pays for the memory saved.
//
// Not a storage format: it never leaves the process, so it has no version. The request text is
// not kept (the memory tier drops it: see CacheTier::keepsRequest).
#include <string>
#include <string_view>

#include "cache/entry.h"

namespace llmcache::cache {

// The block for entry (its `request` is left out).
std::string packEntry(const Entry& entry);
// The entry of a block packEntry made (request empty). Undefined for other bytes.
Entry unpackEntry(std::string_view block);
// The cache_key inside a block, without unpacking it (the memory tier's index keys view it).
std::string_view packedCacheKey(std::string_view block);

}  // namespace llmcache::cache
