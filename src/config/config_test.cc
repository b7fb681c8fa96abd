#include "config/config.h"

#include <gtest/gtest.h>
#include <unistd.h>

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
  std::ofstream(path)
      << R"({"CACHE_TTL": 10, "CACHE_DIR": "/from/file", "CACHE_COMPRESSION": true})";
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

TEST(Config, EvictionPoliciesAreReadPerTierAndUnknownNamesRefused) {
  Config c;
  EXPECT_EQ(c.memoryPolicy, "default");
  EXPECT_EQ(c.diskPolicy, "default");
  applyEnvironment(c, envOf({{"CACHE_MEMORY_POLICY", "lru"}, {"CACHE_DISK_POLICY", "gdsf"}}));
  EXPECT_EQ(c.memoryPolicy, "lru");
  EXPECT_EQ(c.diskPolicy, "gdsf");
  EXPECT_NO_THROW(validate(c));
  for (const char* name : {"lru", "sieve", "gdsf", "cost-sieve", "default"}) {
    c.diskPolicy = name;
    EXPECT_NO_THROW(validate(c)) << name;
  }
  c.diskPolicy = "arc";
  try {
    validate(c);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()),
              "CACHE_DISK_POLICY: expected lru, sieve, gdsf, cost-sieve or default, got 'arc'");
  }
  c = Config{};
  c.memoryPolicy = "LRU";
  EXPECT_THROW(validate(c), ConfigError);
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

TEST(Config, SemanticEfIs128ByDefaultAndBounded) {
  Config c;
  EXPECT_EQ(c.semanticEf, 128);
  setValue(c, "CACHE_SEMANTIC_EF", "512");
  EXPECT_NO_THROW(validate(c));
  EXPECT_EQ(c.semanticEf, 512);
  for (const char* bad : {"8", "5000"}) {
    setValue(c, "CACHE_SEMANTIC_EF", bad);
    EXPECT_THROW(validate(c), ConfigError) << bad;
  }
}

TEST(Config, DiskSyncIsAnIntervalByDefaultAndUnknownModesAreRefused) {
  Config c;
  EXPECT_EQ(c.diskSync, "interval");
  EXPECT_EQ(c.diskSyncIntervalMs, 1000);
  EXPECT_NO_THROW(validate(c));
  for (const char* mode : {"always", "never", "interval"}) {
    setValue(c, "CACHE_DISK_SYNC", mode);
    EXPECT_NO_THROW(validate(c)) << mode;
  }
  setValue(c, "CACHE_DISK_SYNC", "sometimes");
  try {
    validate(c);
    ADD_FAILURE() << "CACHE_DISK_SYNC=sometimes was accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("always, interval or never"), std::string::npos)
        << e.what();
  }
  c = Config{};
  setValue(c, "CACHE_DISK_SYNC_INTERVAL_MS", "0");
  EXPECT_THROW(validate(c), ConfigError);
}

TEST(Config, TheRecentKeysJournalPollsEverySecondByDefaultAndZeroTurnsItOff) {
  Config c;
  EXPECT_EQ(c.s3JournalPollMs, 1000);
  setValue(c, "CACHE_S3_JOURNAL_POLL_MS", "0");
  EXPECT_EQ(c.s3JournalPollMs, 0);
  EXPECT_NO_THROW(validate(c));
  setValue(c, "CACHE_S3_JOURNAL_POLL_MS", "-1");
  EXPECT_THROW(validate(c), ConfigError);
}

TEST(Config, SizingIsOnByDefaultTurnsOffAndRefusesARateOutsideZeroToOne) {
  Config c;
  EXPECT_TRUE(c.sizing);
  EXPECT_EQ(c.sizingRate, 1.0);
  EXPECT_EQ(c.sizingMaxKeys, 32768u);
  setValue(c, "CACHE_SIZING", "off");
  EXPECT_FALSE(c.sizing);
  setValue(c, "CACHE_SIZING_RATE", "0.01");
  EXPECT_EQ(c.sizingRate, 0.01);
  EXPECT_NO_THROW(validate(c));
  setValue(c, "CACHE_SIZING_RATE", "0");
  EXPECT_THROW(validate(c), ConfigError);
  setValue(c, "CACHE_SIZING_RATE", "1.5");
  EXPECT_THROW(validate(c), ConfigError);
  setValue(c, "CACHE_SIZING_RATE", "1");
  setValue(c, "CACHE_SIZING_MAX_KEYS", "0");
  EXPECT_THROW(validate(c), ConfigError);
}

TEST(Config, SemanticHitsAreOffUntilAThresholdShadowOrIndexIsSet) {
  Config c;
  EXPECT_FALSE(c.semanticOn());
  EXPECT_FALSE(c.semanticThresholdValue());
  setValue(c, "CACHE_SEMANTIC_THRESHOLD", "0.92");
  EXPECT_TRUE(c.semanticOn());
  EXPECT_EQ(c.semanticThresholdValue(), 0.92);
  setValue(c, "CACHE_SEMANTIC_NAMESPACES", "faq=0.9, docs=0.95");
  const auto ns = c.semanticNamespaceThresholds();
  ASSERT_EQ(ns.size(), 2u);
  EXPECT_EQ(ns[1], (std::pair<std::string, double>("docs", 0.95)));
  validate(c);
  c.mode = "replay";
  c.cassetteDir = "/tmp/x";
  EXPECT_FALSE(c.semanticOn());  // the cassette is the only store
}

TEST(Config, SemanticSettingsOutOfRangeAreRefused) {
  for (const auto& [name, value] :
       std::vector<std::pair<std::string, std::string>>{{"CACHE_SEMANTIC_THRESHOLD", "1.5"},
                                                        {"CACHE_SEMANTIC_THRESHOLD", "0"},
                                                        {"CACHE_SEMANTIC_THRESHOLD", "high"},
                                                        {"CACHE_SEMANTIC_NAMESPACES", "faq"},
                                                        {"CACHE_SEMANTIC_NAMESPACES", "faq=2"},
                                                        {"CACHE_SEMANTIC_TARGET", "0"},
                                                        {"CACHE_SEMANTIC_TEXT", "everything"},
                                                        {"CACHE_SEMANTIC_EMBEDDINGS", "openai:"}}) {
    Config c;
    setValue(c, name, value);
    EXPECT_THROW(validate(c), ConfigError) << name << "=" << value;
  }
}

TEST(Config, PrintConfigMasksSecrets) {
  Config c;
  c.adminToken = "super-secret-token";
  c.encryptionKey = "k";
  c.semanticEmbeddingsKey = "sk-embeddings-secret";
  const std::string out = printConfig(c);
  EXPECT_EQ(out.find("super-secret-token"), std::string::npos);
  EXPECT_EQ(out.find("sk-embeddings-secret"), std::string::npos);
  EXPECT_NE(out.find("CACHE_SEMANTIC_EMBEDDINGS_KEY=****"), std::string::npos);
  EXPECT_NE(out.find("CACHE_ADMIN_TOKEN=****"), std::string::npos);
  EXPECT_NE(out.find("CACHE_LISTEN=127.0.0.1:8080"), std::string::npos);
}

// The base64 of bytes 0, 1, ..., 31 (python3 -c "import
// base64;print(base64.b64encode(bytes(range(32))).decode())").
constexpr const char* kKey = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

std::string validateMessage(const Config& c) {
  try {
    validate(c);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(ConfigEncryption, KeyIsTheBase64OfThirtyTwoBytes) {
  Config c;
  c.encryption = true;
  c.encryptionKey = kKey;
  EXPECT_NO_THROW(validate(c));
  const auto key = encryptionKeyBytes(c);
  for (size_t i = 0; i < key.size(); ++i) EXPECT_EQ(key[i], i);
}

TEST(ConfigEncryption, KeyFileHoldsTheBase64WithSurroundingWhitespace) {
  const auto path =
      std::filesystem::temp_directory_path() / ("llmcache-key-" + std::to_string(::getpid()));
  std::ofstream(path) << "  " << kKey << "\n";
  Config c;
  setValue(c, "CACHE_ENCRYPTION", "true");
  setValue(c, "CACHE_ENCRYPTION_KEY_FILE", path.string());
  EXPECT_NO_THROW(validate(c));
  EXPECT_EQ(encryptionKeyBytes(c)[31], 31);
  // The path is not a secret: print-config shows it.
  EXPECT_NE(printConfig(c).find("CACHE_ENCRYPTION_KEY_FILE=" + path.string()), std::string::npos);
  std::filesystem::remove(path);
  EXPECT_NE(validateMessage(c).find("CACHE_ENCRYPTION_KEY_FILE: cannot read"), std::string::npos)
      << validateMessage(c);
}

TEST(ConfigEncryption, EncryptionWithoutAKeyIsRefused) {
  Config c;
  c.encryption = true;
  EXPECT_NE(validateMessage(c).find("CACHE_ENCRYPTION_KEY"), std::string::npos);
}

TEST(ConfigEncryption, BothAKeyAndAKeyFileAreRefused) {
  Config c;
  c.encryption = true;
  c.encryptionKey = kKey;
  c.encryptionKeyFile = "/etc/hostname";
  EXPECT_NE(validateMessage(c).find("both"), std::string::npos);
}

TEST(ConfigEncryption, MalformedKeysAreRefusedWithoutEchoingThem) {
  const std::string tooShort = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd";      // 30 bytes
  const std::string tooLong = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g";   // 33 bytes
  const std::string badDigit = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd*h8=";  // '*'
  const std::string space = "AAECAwQFBgcICQoLDA0O DxAREhMUFRYXGBkaGxwdHh8=";    // inner space
  const std::string twoPads = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh==";
  for (const std::string& bad :
       {tooShort, tooLong, badDigit, space, twoPads, std::string("secret")}) {
    Config c;
    c.encryption = true;
    c.encryptionKey = bad;
    const std::string message = validateMessage(c);
    EXPECT_NE(message.find("CACHE_ENCRYPTION_KEY: expected the base64 of exactly 32 bytes"),
              std::string::npos)
        << bad << ": " << message;
    EXPECT_EQ(message.find(bad), std::string::npos) << message;
  }
}

TEST(ConfigEncryption, KeyIsNotCheckedWhileEncryptionIsOff) {
  Config c;
  c.encryptionKey = "not-a-key";
  EXPECT_NO_THROW(validate(c));
  EXPECT_NE(printConfig(c).find("CACHE_ENCRYPTION_KEY=****"), std::string::npos);
}

TEST(Config, ModelTtlRulesParseInOrderAndRejectGarbage) {
  Config c;
  c.modelTtls = "gpt-4o*=3600, claude-*=0";
  auto rules = c.modelTtlRules();
  ASSERT_EQ(rules.size(), 2u);
  EXPECT_EQ(rules[0], (std::pair<std::string, int64_t>{"gpt-4o*", 3600}));
  EXPECT_EQ(rules[1].second, 0);
  for (const char* bad : {"gpt-4o", "=5", "x=soon", "x=-1"}) {
    c.modelTtls = bad;
    EXPECT_THROW(validate(c), ConfigError) << bad;
  }
}

}  // namespace
}  // namespace llmcache::config

namespace llmcache::config {
namespace {

TEST(ConfigAlerts, SettingsHaveTheirDefaultsAndParseFromText) {
  Config c;
  EXPECT_EQ(c.alertHitRateMin, 0.1);
  EXPECT_EQ(c.alertWindowSeconds, 300);
  EXPECT_EQ(c.alertCooldownSeconds, 3600);
  EXPECT_EQ(c.alertOutboxMax, 1000u);
  EXPECT_EQ(c.alertTierErrors, 10u);
  setValue(c, "CACHE_ALERT_HIT_RATE_MIN", "0.25");
  setValue(c, "CACHE_ALERT_WINDOW", "60");
  setValue(c, "CACHE_SMTP_URL", "smtp://127.0.0.1:2525");
  setValue(c, "CACHE_ALERT_EMAIL", " ops@example.com, oncall@example.com ,");
  EXPECT_EQ(c.alertHitRateMin, 0.25);
  EXPECT_EQ(c.alertRecipients(),
            (std::vector<std::string>{"ops@example.com", "oncall@example.com"}));
  EXPECT_NO_THROW(validate(c));
  EXPECT_NE(printConfig(c).find("CACHE_ALERT_HIT_RATE_MIN=0.25\n"), std::string::npos);
  EXPECT_THROW(setValue(c, "CACHE_ALERT_HIT_RATE_MIN", "low"), ConfigError);
}

TEST(ConfigAlerts, BadThresholdsAddressesAndUrlsAreRefused) {
  const auto refused = [](auto change) {
    Config c;
    c.alertEmail = "ops@example.com";
    change(c);
    EXPECT_THROW(validate(c), ConfigError);
  };
  refused([](Config& c) { c.alertHitRateMin = 1.5; });
  refused([](Config& c) { c.alertWindowSeconds = 0; });
  refused([](Config& c) { c.alertCooldownSeconds = -1; });
  refused([](Config& c) { c.smtpUrl = "http://mail.example.com"; });
  refused([](Config& c) { c.alertEmail = "ops@example.com\r\nBcc: x@evil.example"; });
  refused([](Config& c) { c.alertFrom = "nobody"; });
}

TEST(ConfigAlerts, SmtpCredentialsAreMaskedInPrintConfig) {
  Config c;
  c.smtpUrl = "smtps://alerts:hunter2@mail.example.com:465";
  const std::string printed = printConfig(c);
  EXPECT_EQ(printed.find("hunter2"), std::string::npos);
  EXPECT_NE(printed.find("CACHE_SMTP_URL=smtps://****@mail.example.com:465\n"), std::string::npos);
}

TEST(Config, KeySettingsAreSafeByDefaultAndParsedOnce) {
  Config c;
  EXPECT_EQ(c.keyNormalize, "exact");
  EXPECT_EQ(c.keyHeaderNames(),
            (std::vector<std::string>{"anthropic-version", "anthropic-beta", "openai-beta"}));
  c.keyHeaders = " X-Shape ,anthropic-beta,";
  EXPECT_EQ(c.keyHeaderNames().back(), "x-shape");
  EXPECT_EQ(c.keyHeaderNames().size(), 4u);
  c.keyNormalizeNamespaces = "faq=seed, docs=whitespace";
  EXPECT_EQ(c.namespaceNormalizations(), (std::vector<std::pair<std::string, std::string>>{
                                             {"faq", "seed"}, {"docs", "whitespace"}}));
  c.keyNormalizeNamespaces = "faq=loud";
  EXPECT_THROW(validate(c), ConfigError);
  c.keyNormalizeNamespaces.clear();
  EXPECT_EQ(c.credentialSources(),
            (std::vector<std::string>{"authorization", "x-api-key", "api-key", "x-goog-api-key",
                                      "query:key"}));
  c.scopeCredentials = "query:";
  EXPECT_THROW(validate(c), ConfigError);
  c.scopeCredentials = "Authorization";
  c.ttlMaxSeconds = -1;
  EXPECT_THROW(validate(c), ConfigError);
}

TEST(Config, AGeneratedSecretIsKeptOwnerOnlyAndReadBack) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("llmcache-secret-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "scope-secret").string();
  const std::string first = loadOrCreateSecretFile(path);
  EXPECT_EQ(first.size(), 64u);
  EXPECT_EQ(std::filesystem::status(path).permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  EXPECT_EQ(loadOrCreateSecretFile(path), first);
  std::filesystem::remove_all(dir);
  EXPECT_THROW(loadOrCreateSecretFile(path + "-missing-dir/x"), ConfigError);
}

}  // namespace
}  // namespace llmcache::config
