#include "index/disk_scan.h"

#include <fstream>
#include <iterator>
#include <stdexcept>
#include <system_error>

#include "cache/codec.h"

namespace llmcache::index {

namespace fs = std::filesystem;

namespace {

// docs/disk-layout.md; cache/disk's kDiskLayoutVersion, restated so that the index need not link
// the disk tier.
constexpr int kDiskLayoutVersion = 1;
constexpr size_t kMaxProblems = 100;

void note(DiskScanReport& report, const fs::path& p, std::string why) {
  if (report.problems.size() < kMaxProblems)
    report.problems.push_back(p.string() + ": " + std::move(why));
}

bool isEntryFile(const fs::path& p) {
  const std::string name = p.filename().string();
  return name.size() > 6 && name.ends_with(".entry");  // "x.entry.tmp.AbC123" ends otherwise
}

}  // namespace

Result<DiskScanReport> scanDiskTier(const fs::path& dir, const EntrySink& sink,
                                    const cache::CodecOptions& codec) {
  std::error_code ec;
  const fs::path versionFile = dir / "disk-layout-version";
  if (fs::exists(versionFile, ec)) {
    std::ifstream in(versionFile);
    int version = 0;
    if (!(in >> version) || version != kDiskLayoutVersion)
      return makeError(Errc::Corrupt,
                       "index: " + versionFile.string() + " names a layout this build cannot read");
  }
  const fs::path entries = dir / "entries";
  if (!fs::is_directory(entries, ec))
    return makeError(Errc::NotFound, "index: " + entries.string() + " is not a disk-tier folder");

  DiskScanReport report;
  fs::directory_iterator fans(entries, ec);
  if (ec) return makeError(Errc::Io, "index: listing " + entries.string() + ": " + ec.message());
  for (const auto& fan : fans) {
    if (!fan.is_directory(ec)) continue;
    fs::directory_iterator files(fan.path(), ec);
    if (ec)
      return makeError(Errc::Io, "index: listing " + fan.path().string() + ": " + ec.message());
    for (const auto& file : files) {
      if (!isEntryFile(file.path()) || !file.is_regular_file(ec)) continue;
      ++report.files;
      std::ifstream in(file.path(), std::ios::binary);
      std::string bytes{std::istreambuf_iterator<char>(in), {}};
      if (!in && !in.eof()) {
        ++report.unreadable;
        note(report, file.path(), "unreadable");
        continue;
      }
      if (bytes.empty() && !fs::exists(file.path(), ec)) {
        ++report.unreadable;
        note(report, file.path(), "vanished during the scan");
        continue;
      }
      auto entry = cache::decodeEntry(bytes, codec);
      if (!entry) {
        ++report.corrupt;
        note(report, file.path(), entry.error().message);
        continue;
      }
      const size_t raw = toJson(cache::entryToJson(*entry)).size();
      sink(*entry, kTierDisk, bytes.size(), raw);
      ++report.entries;
    }
  }
  return report;
}

Result<DiskScanReport> rebuildFromDiskTier(Index& index, const fs::path& dir,
                                           const cache::CodecOptions& codec) {
  Result<DiskScanReport> report = makeError(Errc::Io, "index: the scan did not run");
  auto rebuilt = index.rebuildFrom([&](const EntrySink& sink) {
    report = scanDiskTier(dir, sink, codec);
    // A scan that could not run must not leave an empty index behind.
    if (!report) throw std::runtime_error(report.error().message);
  });
  if (!report) return report.error();
  if (!rebuilt) return rebuilt.error();
  return report;
}

}  // namespace llmcache::index
