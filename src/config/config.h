#pragma once
// Config: every setting of `llmcache serve`, its default, and where it can come from.
// Precedence: flags > environment > config file > defaults (DESIGN.md, Configuration).
// Loading and validation happen once at start-up; errors there are exceptions (ConfigError).
#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace llmcache::config {

struct ConfigError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Config {
  // Gateway
  bool enabled = true;                                 // CACHE_ENABLED: false = pure pass-through
  std::string listen = "127.0.0.1:8080";               // CACHE_LISTEN / --listen
  std::string upstream = "https://api.openai.com/v1";  // CACHE_UPSTREAM / --upstream
  std::string platforms;                               // CACHE_PLATFORMS: "name=url,..."
  std::string pricingFile;                             // CACHE_PRICING_FILE: overrides prices
  int threads = 0;                                     // CACHE_THREADS: 0 = one per core
  // CACHE_MODE / --mode: normal | record | replay | replay-or-record (docs/record-replay.md).
  // The last three use only the cassette folder (CACHE_CASSETTE_DIR) as their store.
  std::string mode = "normal";
  std::string cassetteDir;  // CACHE_CASSETTE_DIR / --cassette: the recorded folder
  // CACHE_NEAR_MISS_SAMPLE: misses explained per second in the background (normal mode) for the
  // near-miss patterns of /cache/patterns; 0: off
  int nearMissSample = 2;
  // Online miss-ratio curves (docs/sizing.md): CACHE_SIZING=off disables them; the starting
  // sampling rate, (0, 1] (1: every key until the bound is reached, then the rate falls); the
  // bound on the sampled keys tracked (~100 bytes each)
  bool sizing = true;              // CACHE_SIZING
  double sizingRate = 1.0;         // CACHE_SIZING_RATE
  uint64_t sizingMaxKeys = 32768;  // CACHE_SIZING_MAX_KEYS
  // Semantic hits (docs/semantic.md). The vector index is kept (every stored miss embedded) when
  // any of CACHE_SEMANTIC_THRESHOLD, CACHE_SEMANTIC_NAMESPACES, CACHE_SEMANTIC_SHADOW or
  // CACHE_SEMANTIC_INDEX is set; only then does x-llmcache-semantic have anything to match.
  std::string
      semanticThreshold;  // CACHE_SEMANTIC_THRESHOLD: serve from this similarity; empty: off
  std::string semanticNamespaces;  // CACHE_SEMANTIC_NAMESPACES: "namespace=threshold,..."
  bool semanticShadow = false;   // CACHE_SEMANTIC_SHADOW: measure, never serve (unless a threshold)
  bool semanticIndex = false;    // CACHE_SEMANTIC_INDEX: keep the index for per-request opt-in
  double semanticTarget = 0.98;  // CACHE_SEMANTIC_TARGET: the agreement a suggested threshold meets
  // CACHE_SEMANTIC_ANSWER_AGREEMENT: two answers agree when equal or their embeddings' cosine is
  // at least this
  double semanticAnswerAgreement = 0.95;
  double semanticMaxTemperature = 1.0;  // CACHE_SEMANTIC_MAX_TEMPERATURE: above: never semantic
  bool semanticAllowTools = false;      // CACHE_SEMANTIC_ALLOW_TOOLS: requests with tools too
  // CACHE_SEMANTIC_EMBEDDINGS: "[platform:]model" of an OpenAI-compatible /embeddings endpoint;
  // no platform: the default upstream (CACHE_UPSTREAM)
  std::string semanticEmbeddings = "text-embedding-3-small";
  // CACHE_SEMANTIC_EMBEDDINGS_KEY (secret): the embeddings call's bearer key; empty: the caller's
  // own Authorization
  std::string semanticEmbeddingsKey;
  std::string semanticText = "last_user";  // CACHE_SEMANTIC_TEXT: last_user | all_user
  uint64_t semanticEmbeddingCache =
      10000;                     // CACHE_SEMANTIC_EMBEDDING_CACHE: texts whose vector is kept
  int semanticSaveSeconds = 60;  // CACHE_SEMANTIC_SAVE: the index files, this often
  // CACHE_SEMANTIC_MAX_PENDING: stored misses waiting to be embedded and indexed; beyond it a
  // stored miss is not indexed (counted in /cache/semantic), so a miss storm cannot hold answers
  // in memory without bound
  int semanticMaxPending = 1000;
  int semanticEf = 128;  // CACHE_SEMANTIC_EF: candidates a search weighs (recall against CPU)
  // Limits
  uint64_t maxBodyBytes = 32u << 20;    // CACHE_MAX_BODY_BYTES: request bodies
  uint64_t maxHeaderBytes = 64u << 10;  // CACHE_MAX_HEADER_BYTES
  // CACHE_MAX_INFLIGHT_BODY_BYTES: request bodies held at once, all connections together (0: no
  // budget); above it a request is a 503 with Retry-After
  uint64_t maxBodyBytesInFlight = uint64_t{256} << 20;
  // CACHE_MAX_CONNECTIONS: concurrent client connections. 0 (default): min(10000, what the
  // descriptor limit leaves room for); a value above that room is clamped with a warning
  // (http/descriptor_limit.h)
  uint64_t maxConnections = 0;
  int readTimeoutSeconds = 30;             // CACHE_READ_TIMEOUT: one request's head and body
  int idleTimeoutSeconds = 75;             // CACHE_IDLE_TIMEOUT: keep-alive between requests
  int upstreamConnectTimeoutSeconds = 10;  // CACHE_UPSTREAM_CONNECT_TIMEOUT
  int upstreamTimeoutSeconds = 600;        // CACHE_UPSTREAM_TIMEOUT: a whole upstream exchange
  int shutdownGraceSeconds = 30;           // CACHE_SHUTDOWN_GRACE: in-flight requests at SIGTERM
  // Cache
  std::string cacheDir = "./.llmcache";  // CACHE_DIR / --cache-dir
  uint64_t memoryEntries = 100;          // CACHE_MEMORY_ENTRIES
  uint64_t memoryBytes = 256u << 20;     // CACHE_MEMORY_BYTES
  uint64_t diskEntries = 1000;           // CACHE_DISK_ENTRIES
  uint64_t diskBytes = 1ull << 30;       // CACHE_DISK_BYTES
  // CACHE_DISK_SYNC: when the disk tier's files and the S3 outbox's journal reach the disk.
  // always: fsync per file before the write counts (2 per entry and tier: ~60 stores/s where
  // an fsync costs 3 ms); interval (default): a syncfs of CACHE_DIR's file system every
  // CACHE_DISK_SYNC_INTERVAL_MS; never: the kernel's writeback. A file a power loss tore
  // fails its CRC32 and is a miss (docs/disk-layout.md, Durability).
  std::string diskSync = "interval";
  int diskSyncIntervalMs = 1000;  // CACHE_DISK_SYNC_INTERVAL_MS
  // CACHE_MEMORY_POLICY / CACHE_DISK_POLICY: each tier's eviction policy (docs/eviction.md): lru,
  // sieve, gdsf, cost-sieve, or default (the one docs/eviction.md measured best: cost-sieve).
  std::string memoryPolicy = "default";
  std::string diskPolicy = "default";
  bool compression = false;            // CACHE_COMPRESSION: zstd for disk and S3 bodies
  int64_t ttlSeconds = 0;              // CACHE_TTL: default time to live, 0 = never expires
  int64_t ttlMaxSeconds = 0;           // CACHE_TTL_MAX: the most x-llmcache-ttl may ask, 0 = no cap
  std::string modelTtls;               // CACHE_MODEL_TTLS: "glob=seconds,...", first match wins
  std::string keyNormalize = "exact";  // CACHE_KEY_NORMALIZE: exact | whitespace | seed
  uint64_t keyMemoEntries =
      10000;  // CACHE_KEY_MEMO_ENTRIES: recent bodies whose key is known (0: off)
  uint64_t keyMemoBytes = 32u << 20;  // CACHE_KEY_MEMO_BYTES: bytes of the bodies kept there
  // CACHE_KEY_NORMALIZE_NAMESPACES: "namespace=mode,...": another normalization for the
  // requests that name one of these namespaces (x-llmcache-namespace)
  std::string keyNormalizeNamespaces;
  // CACHE_KEY_HEADERS: request headers that shape the answer, besides anthropic-version,
  // anthropic-beta and openai-beta (always): their values go into the key
  std::string keyHeaders;
  // CACHE_CORS_ORIGINS: the browser origins the API routes answer CORS for ("*" for any), a
  // comma-separated list; empty: none (the provider's own CORS headers are never relayed)
  std::string corsOrigins;
  // CACHE_STREAM_USAGE: a streamed OpenAI miss asks the provider for usage
  // (stream_options.include_usage) so the entry records tokens and cost; the usage chunk is
  // hidden from a client that did not ask. Off for a platform that rejects stream_options.
  bool streamUsage = true;
  std::string scope = "api_key";  // CACHE_SCOPE: api_key | global | header:NAME
  // CACHE_SCOPE_SECRET (secret): HMAC key of api_key scopes; empty: one generated at the first
  // start and kept in CACHE_DIR/scope-secret (mode 0600)
  std::string scopeSecret;
  // CACHE_SCOPE_CREDENTIALS: where a caller's credential is read, first present wins: header
  // names, and query:NAME for a query parameter
  std::string scopeCredentials = "authorization,x-api-key,api-key,x-goog-api-key,query:key";
  // The S3 tier and the services beside it
  std::string s3Bucket;                // CACHE_S3_BUCKET: the S3 tier is on when set
  std::string s3Region = "us-east-1";  // CACHE_S3_REGION
  std::string s3Endpoint;              // CACHE_S3_ENDPOINT: empty = AWS
  std::string s3Prefix;                // CACHE_S3_PREFIX
  std::string s3Addressing = "auto";   // CACHE_S3_ADDRESSING: auto | path | virtual
  int s3DirectoryRefreshSeconds = 30;  // CACHE_S3_DIRECTORY_REFRESH: relisting of the bucket's keys
  // CACHE_S3_JOURNAL_POLL_MS: listing of the other gateways' recent keys (0: off; a new entry is
  // then seen elsewhere only at the next CACHE_S3_DIRECTORY_REFRESH)
  int s3JournalPollMs = 1000;
  int s3TimeoutSeconds = 10;  // CACHE_S3_TIMEOUT: one S3 operation, retries included
  int s3OutboxRetryMaxSeconds =
      60;  // CACHE_S3_OUTBOX_RETRY_MAX: longest pause between upload retries
  // The Redis tier and the fleet's channel (docs/redis.md)
  std::string redisUrl;  // CACHE_REDIS_URL (secret: may hold a password): on when set
  std::string redisPrefix = "llmcache:";  // CACHE_REDIS_PREFIX (?prefix= in the URL wins)
  std::string redisCaFile;   // CACHE_REDIS_CA_FILE: rediss://'s trusted CAs (?ca= in the URL wins)
  int redisTimeoutMs = 250;  // CACHE_REDIS_TIMEOUT_MS: connect, and each read/write
  int redisLeaseMs = 5000;   // CACHE_REDIS_LEASE_MS: a miss's fleet-wide lease (0: none)
  int redisLeaseWaitSeconds = 30;    // CACHE_REDIS_LEASE_WAIT: longest wait for another's lease
  int invalidationPollSeconds = 10;  // CACHE_INVALIDATION_POLL: other gateways' invalidations (S3)
  bool asyncWrites = true;           // CACHE_ASYNC_WRITES
  bool encryption = false;           // CACHE_ENCRYPTION: AES-256-GCM for disk and S3 bodies
  std::string encryptionKey;         // CACHE_ENCRYPTION_KEY (secret): base64 of 32 bytes
  std::string encryptionKeyFile;     // CACHE_ENCRYPTION_KEY_FILE: a file holding that base64
  std::string adminToken;            // CACHE_ADMIN_TOKEN (secret)
  bool metricsEnabled = true;        // CACHE_METRICS_ENABLED
  int metricsIntervalSeconds = 60;   // CACHE_METRICS_INTERVAL
  std::string alertEmail;  // CACHE_ALERT_EMAIL: recipients, comma-separated; alerts on when set
  std::string smtpUrl =
      "smtp://localhost:25";  // CACHE_SMTP_URL: smtp:// (STARTTLS when offered) or smtps://
  std::string alertFrom = "llmcache@localhost";  // CACHE_ALERT_FROM: the sender address
  double alertHitRateMin =
      0.1;  // CACHE_ALERT_HIT_RATE_MIN: mail when the window's hit rate is below
  int64_t alertMinRequests = 100;  // CACHE_ALERT_MIN_REQUESTS: ... with at least this many requests
  int alertWindowSeconds = 300;    // CACHE_ALERT_WINDOW: the window the rules look at
  int alertCooldownSeconds = 3600;  // CACHE_ALERT_COOLDOWN: at most one mail per kind this often
  uint64_t alertOutboxMax = 1000;   // CACHE_ALERT_OUTBOX_MAX: mail when S3 writes pending exceed it
  uint64_t alertTierErrors =
      10;  // CACHE_ALERT_TIER_ERRORS: mail when a tier's errors in the window exceed it

  // Host and port of `listen`. Throws ConfigError when malformed.
  std::pair<std::string, uint16_t> listenEndpoint() const;
  // CACHE_ALERT_EMAIL split at commas, trimmed, empty items dropped.
  std::vector<std::string> alertRecipients() const;
  // CACHE_MODEL_TTLS parsed: (model glob, seconds) in order. Throws ConfigError when malformed.
  std::vector<std::pair<std::string, int64_t>> modelTtlRules() const;
  // CACHE_KEY_NORMALIZE_NAMESPACES parsed: (namespace, mode name). Throws ConfigError.
  std::vector<std::pair<std::string, std::string>> namespaceNormalizations() const;
  // CACHE_CORS_ORIGINS as a list ("*" stands for any origin).
  std::vector<std::string> corsOriginList() const;
  // The answer-shaping headers, lowercase: the three built-in ones, then CACHE_KEY_HEADERS.
  std::vector<std::string> keyHeaderNames() const;
  // CACHE_SCOPE_CREDENTIALS parsed: lowercase header names, or "query:NAME".
  std::vector<std::string> credentialSources() const;
  // CACHE_SEMANTIC_THRESHOLD parsed (nullopt: unset). Throws ConfigError.
  std::optional<double> semanticThresholdValue() const;
  // CACHE_SEMANTIC_NAMESPACES parsed: (namespace, threshold). Throws ConfigError.
  std::vector<std::pair<std::string, double>> semanticNamespaceThresholds() const;
  // Whether the vector index is kept (see the settings above); never in a cassette mode.
  bool semanticOn() const {
    return !cassetteMode() && (!semanticThreshold.empty() || !semanticNamespaces.empty() ||
                               semanticShadow || semanticIndex);
  }
  // A mode other than normal: the cassette folder is the only store.
  bool cassetteMode() const { return mode != "normal"; }
  bool replayMode() const { return mode == "replay"; }
  bool recordMode() const { return mode == "record"; }
};

// Sets one setting by its variable name (CACHE_TTL, ...) from text. Throws ConfigError naming
// the variable on an unknown name or a value of the wrong type.
void setValue(Config& config, const std::string& name, const std::string& value);

// Applies every known CACHE_* variable that getenv returns (AWS_* credentials are not config:
// the S3 tier reads them itself).
void applyEnvironment(Config& config, const std::function<const char*(const char*)>& getenv);

// Applies a config file: a JSON object of variable names to values ({"CACHE_TTL": 3600}).
void applyFile(Config& config, const std::string& path);

// Checks cross-field rules (listen parses, normalize mode known, ...). Throws ConfigError.
// With CACHE_ENCRYPTION on this includes loading the key (encryptionKeyBytes).
void validate(const Config& config);

// The AES-256 key of CACHE_ENCRYPTION: the base64 (standard alphabet, padded: 44 characters, as
// `openssl rand -base64 32` prints) of exactly 32 bytes, from CACHE_ENCRYPTION_KEY or from the
// file CACHE_ENCRYPTION_KEY_FILE names (surrounding whitespace ignored). Exactly one of the two
// must be set. Throws ConfigError naming the setting (never the key) when neither or both are
// set, the file cannot be read, or the text is not such a base64. Reads the file on every call.
std::array<unsigned char, 32> encryptionKeyBytes(const Config& config);

// NAME=value lines in a stable order, secrets masked as "****" (set) or "" (unset).
std::string printConfig(const Config& config);

// The secret kept in `path` (CACHE_DIR/scope-secret when CACHE_SCOPE_SECRET is unset): read
// when the file exists, else 32 random bytes (OpenSSL), written hex-encoded with mode 0600 and
// created exclusively (two processes starting at once agree on one). Throws ConfigError.
std::string loadOrCreateSecretFile(const std::string& path);

}  // namespace llmcache::config
