#include "config/config.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>

namespace llmcache::config {
namespace {

auto envOf(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const char* name) -> const char* {
    auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  };
}

TEST(Config, DefaultsAreTheEmbeddedMemoryPlusDiskSetup) {
  Config c;
  EXPECT_TRUE(c.enabled);
  EXPECT_EQ(c.listen, "127.0.0.1:8080");
  EXPECT_EQ(c.memoryEntries, 100u);
  EXPECT_EQ(c.diskEntries, 1000u);
  EXPECT_TRUE(c.s3Bucket.empty());
  EXPECT_NO_THROW(validate(c));
}

TEST(Config, EnvironmentOverridesFileAndFlagsOverrideEnvironment) {
  const auto path = std::filesystem::temp_directory_path() / "llmcache_config_test.json";
  std::ofstream(path) << R"({"CACHE_TTL": 10, "CACHE_DIR": "/from/file", "CACHE_COMPRESSION": true})";
  Config c;
  applyFile(c, path.string());
  applyEnvironment(c, envOf({{"CACHE_TTL", "20"}}));
  setValue(c, "CACHE_DIR", "/from/flag");
  EXPECT_EQ(c.ttlSeconds, 20);
  EXPECT_EQ(c.cacheDir, "/from/flag");
  EXPECT_TRUE(c.compression);
  std::filesystem::remove(path);
}

TEST(Config, WrongTypesNameTheVariable) {
  Config c;
  try {
    applyEnvironment(c, envOf({{"CACHE_TTL", "soon"}}));
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("CACHE_TTL"), std::string::npos);
  }
  EXPECT_THROW(setValue(c, "CACHE_ENABLED", "maybe"), ConfigError);
  EXPECT_THROW(setValue(c, "CACHE_NOPE", "1"), ConfigError);
}

TEST(Config, ValidateRejectsBadListenAndModes) {
  Config c;
  c.listen = "nohost";
  EXPECT_THROW(validate(c), ConfigError);
  c = Config{};
  c.keyNormalize = "lower";
  EXPECT_THROW(validate(c), ConfigError);
  c = Config{};
  c.listen = "[::1]:9000";
  EXPECT_EQ(c.listenEndpoint().first, "::1");
  EXPECT_EQ(c.listenEndpoint().second, 9000);
}

TEST(Config, PrintConfigMasksSecrets) {
  Config c;
  c.adminToken = "super-secret-token";
  c.encryptionKey = "k";
  const std::string out = printConfig(c);
  EXPECT_EQ(out.find("super-secret-token"), std::string::npos);
  EXPECT_NE(out.find("CACHE_ADMIN_TOKEN=****"), std::string::npos);
  EXPECT_NE(out.find("CACHE_LISTEN=127.0.0.1:8080"), std::string::npos);
}

}  // namespace
}  // namespace llmcache::config
