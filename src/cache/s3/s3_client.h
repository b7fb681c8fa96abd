#pragma once
// S3Client: a small blocking S3 client on libcurl easy handles (PUT, GET, HEAD, DELETE,
// ListObjectsV2), signed with libcurl's own SigV4 (CURLOPT_AWS_SIGV4).
//
// Blocking on purpose: it runs on the S3 tier's callers (TierChain lookups on worker threads,
// the outbox's upload threads), never on the gateway's event loop. Each call borrows an easy
// handle from a pool and returns it afterwards, so a thread that makes many calls reuses its
// connection (keep-alive) and at most one handle per concurrent caller exists.
//
// What libcurl 7.88's SigV4 does not do, and this client does itself:
//   - the canonical query: curl signs the query string exactly as sent, so the client sends
//     parameters sorted by name with AWS's percent-encoding ('/' in a prefix is %2F);
//   - x-amz-content-sha256: the client sends the payload's SHA-256 hex (or UNSIGNED-PAYLOAD
//     when S3ClientOptions::signPayload is false), which curl then signs as a header.
// Credentials go to curl as user name and password (never into a URL, a header of ours or a
// log line); the session token travels as x-amz-security-token.
//
// Time: one deadline per operation, its retries inside (S3ClientOptions::operationTimeout).
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace llmcache::cache::s3 {

struct S3Credentials {
  std::string accessKeyId;      // AWS_ACCESS_KEY_ID; empty = unsigned (anonymous) requests
  std::string secretAccessKey;  // AWS_SECRET_ACCESS_KEY
  std::string sessionToken;     // AWS_SESSION_TOKEN; empty = none
  // The three AWS_* variables from getenv (std::getenv by default).
  static S3Credentials fromEnvironment(const std::function<const char*(const char*)>& getenv = {});
};

// When an operation's time is up (steady clock). S3Client::deadline() starts one; calls that pass
// the same one (an S3Tier lookup, insert or erase) share it.
using S3Deadline = std::chrono::steady_clock::time_point;

struct S3ClientOptions {
  // CACHE_S3_ENDPOINT: scheme://host[:port] of an S3-compatible store. Empty = AWS,
  // https://s3.{region}.amazonaws.com.
  std::string endpoint;
  std::string region = "us-east-1";  // CACHE_S3_REGION; also the SigV4 signing region
  std::string bucket;                // CACHE_S3_BUCKET
  // Path-style (endpoint/bucket/key) or virtual-hosted (bucket.host/key) addressing.
  // nullopt: path-style when an endpoint is given (most S3-compatible stores), virtual-hosted on
  // AWS.
  std::optional<bool> pathStyle;
  S3Credentials credentials;
  std::chrono::milliseconds connectTimeout{3000};   // one attempt's connection, at most
  std::chrono::milliseconds requestTimeout{30000};  // one attempt at most, connect to last byte
  // The deadline of one operation, every attempt and backoff included: a call, or the calls that
  // share one S3Deadline. 0 = requestTimeout, so that CACHE_S3_TIMEOUT (requestTimeout in
  // `serve`) bounds a whole operation, not each of its attempts. Each attempt's libcurl timeouts
  // are connectTimeout and requestTimeout cut to the time left: a hung store costs one deadline
  // (the first attempt takes it all), and retries happen only after failures that leave time.
  std::chrono::milliseconds operationTimeout{0};
  // A retry starts only if at least this much is left once its backoff has passed; otherwise the
  // call fails at once with the last attempt's error. (A call's first attempt starts whenever any
  // time is left: a later call of an operation may have little.)
  std::chrono::milliseconds minAttemptTime{100};
  // Attempts per call at most, the first included (within the deadline). Retried: network errors
  // and timeouts, 5xx, 429, and 400 RequestTimeout. Never retried: any other 4xx.
  int maxAttempts = 4;
  // Backoff before attempt n+1: a random delay in [0, min(backoffMax, backoffBase * 2^n)]
  // ("full jitter"), so that instances throttled together do not retry together.
  std::chrono::milliseconds backoffBase{100};
  std::chrono::milliseconds backoffMax{5000};
  // true: x-amz-content-sha256 is the payload's SHA-256 (S3 verifies the body arrived intact).
  // false: UNSIGNED-PAYLOAD.
  bool signPayload = true;
  std::string caFile;  // PEM bundle for TLS; empty = the system's
  // How the client waits between attempts. Empty = std::this_thread::sleep_for. Tests pass a
  // recorder so that retries need no real waiting.
  std::function<void(std::chrono::milliseconds)> sleep;
};

struct S3ObjectInfo {
  std::string key;
  uint64_t size = 0;
  std::string etag;  // as the server quotes it
  std::string lastModified;
};

struct S3ListPage {
  std::vector<S3ObjectInfo> objects;
  std::optional<std::string> nextContinuationToken;  // nullopt: this was the last page
};

struct S3ClientStats {
  uint64_t requests = 0;  // attempts sent (retries included)
  uint64_t retries = 0;
  uint64_t failures = 0;  // calls that ended in an error
};

// The delay before retry number `retry` (0-based): uniform in [0, min(max, base * 2^retry)].
std::chrono::milliseconds backoffDelay(int retry, std::chrono::milliseconds base,
                                       std::chrono::milliseconds max, std::mt19937_64& rng);

// Lower-case hex SHA-256 of bytes (x-amz-content-sha256, the pointers' entry_sha256).
std::string sha256Hex(std::string_view bytes);

// AWS SigV4 URI encoding of one query value or path segment: A-Z a-z 0-9 - _ . ~ stay, every
// other byte is %XX (upper-case hex). With keepSlash, '/' stays (object key paths).
std::string awsUriEncode(std::string_view s, bool keepSlash);

// The canonical query string: parameters sorted by (encoded) name, names and values encoded.
std::string canonicalQuery(std::vector<std::pair<std::string, std::string>> params);

// Every call: error messages name the operation, bucket and key and S3's error code and message
// ("S3 GET s3://b/k: 403 AccessDenied: Access Denied"), never credentials or signatures.
// Error codes:
//   Unavailable     — network error, timeout, 5xx, 429, 401/403 (after the retries allowed): a
//                     sick or misconfigured store that may recover; worth trying later.
//   TooLarge        — 413 / EntityTooLarge.
//   InvalidArgument — any other 4xx (the request itself is wrong; trying later won't help).
//   Corrupt         — a 2xx answer whose body cannot be parsed (ListObjectsV2 XML).
//   Unavailable also when the operation's deadline passes (a timeout, or no time for a retry); a
//   call whose deadline has already passed sends nothing.
// deadline: nullopt = this call alone is the operation (deadline() when it starts); pass one to
// bound several calls together.
// Thread-safe: any number of threads may call concurrently.
class S3Client {
 public:
  explicit S3Client(S3ClientOptions options);
  ~S3Client();
  S3Client(const S3Client&) = delete;
  S3Client& operator=(const S3Client&) = delete;

  // Stores body under key (replacing any object there).
  Result<void> put(std::string_view key, std::string_view body, std::string_view contentType,
                   std::optional<S3Deadline> deadline = std::nullopt);
  // The object's bytes; nullopt when there is none (404 NoSuchKey).
  Result<std::optional<std::string>> get(std::string_view key,
                                         std::optional<S3Deadline> deadline = std::nullopt);
  // The object's size and ETag; nullopt when there is none.
  Result<std::optional<S3ObjectInfo>> head(std::string_view key,
                                           std::optional<S3Deadline> deadline = std::nullopt);
  // Removes key. S3 answers 204 whether or not it existed, so this cannot tell.
  Result<void> erase(std::string_view key, std::optional<S3Deadline> deadline = std::nullopt);
  // One ListObjectsV2 page of the keys starting with prefix, in key order; with startAfter, only
  // the keys after it (S3's start-after: a listing of a time-named prefix from an instant on).
  Result<S3ListPage> listPage(std::string_view prefix,
                              std::optional<std::string> continuationToken = {}, int maxKeys = 1000,
                              std::optional<S3Deadline> deadline = std::nullopt,
                              std::optional<std::string> startAfter = std::nullopt);
  // Every key starting with prefix (all pages, following continuation tokens). maxObjects bounds
  // the result (an error, TooLarge, past it) so a huge bucket cannot exhaust memory. Without a
  // deadline each page is an operation of its own (a big bucket's listing takes many).
  Result<std::vector<S3ObjectInfo>> list(std::string_view prefix, size_t maxObjects = 1000000,
                                         std::optional<S3Deadline> deadline = std::nullopt);

  // The deadline of an operation that starts now: now + operationTimeout.
  S3Deadline deadline() const;

  // The URL of key (no query), for this client's addressing. For tests and messages.
  std::string objectUrl(std::string_view key) const;
  const S3ClientOptions& options() const { return options_; }
  S3ClientStats stats() const;

 private:
  struct Response {
    long status = 0;
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
    std::string header(std::string_view name) const;
  };
  struct Call {
    std::string method;
    std::string key;    // object key; empty = the bucket itself
    std::string query;  // canonical query, without '?'
    std::string_view body;
    std::string contentType;
  };
  Result<Response> perform(const Call& call, std::optional<S3Deadline> deadline);
  // One request; its timeouts are the options' cut to timeLeft (> 0).
  Result<Response> attempt(void* handle, const Call& call, std::chrono::milliseconds timeLeft,
                           bool& retryable);
  void* acquireHandle();
  void releaseHandle(void* handle);
  std::string describe(const Call& call) const;
  std::chrono::milliseconds nextBackoff(int retry);

  S3ClientOptions options_;
  std::string
      baseUrl_;  // scheme://host[:port] as requests go to it (bucket host when virtual-hosted)
  std::string sigv4_;  // "aws:amz:REGION:s3"

  mutable std::mutex mutex_;
  std::vector<void*> idle_;  // CURL* ready for reuse, with their live connections
  std::mt19937_64 rng_;
  S3ClientStats stats_;
};

}  // namespace llmcache::cache::s3
