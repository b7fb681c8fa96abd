#include "cache/s3/s3_client.h"

#include <curl/curl.h>
#include <openssl/sha.h>

#include <algorithm>
#include <boost/algorithm/hex.hpp>
#include <boost/algorithm/string/case_conv.hpp>
#include <boost/algorithm/string/classification.hpp>
#include <boost/algorithm/string/trim.hpp>
#include <boost/property_tree/ptree.hpp>
#include <boost/property_tree/xml_parser.hpp>
#include <cstdlib>
#include <iterator>
#include <locale>
#include <sstream>
#include <thread>

namespace llmcache::cache::s3 {
namespace {

void globalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

}  // namespace

std::string sha256Hex(std::string_view bytes) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), digest);
  std::string out;
  out.reserve(2 * SHA256_DIGEST_LENGTH);
  boost::algorithm::hex_lower(digest, digest + SHA256_DIGEST_LENGTH, std::back_inserter(out));
  return out;
}

namespace {

std::string lower(std::string_view s) {  // ASCII only (the classic locale)
  return boost::algorithm::to_lower_copy(std::string(s), std::locale::classic());
}

// A header line's part: blanks off the front; blanks and the line's CRLF off the back.
std::string trim(std::string_view s) {
  using boost::algorithm::is_any_of;
  return std::string(boost::algorithm::trim_right_copy_if(
      boost::algorithm::trim_left_copy_if(s, is_any_of(" \t")), is_any_of(" \t\r\n")));
}

size_t onBody(char* data, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}

size_t onHeader(char* data, size_t size, size_t n, void* user) {
  auto* headers = static_cast<std::vector<std::pair<std::string, std::string>>*>(user);
  std::string_view line(data, size * n);
  if (line.starts_with("HTTP/")) {
    headers->clear();  // a new response head (after 100 Continue): forget the interim one
  } else if (auto colon = line.find(':'); colon != std::string_view::npos) {
    headers->emplace_back(lower(trim(line.substr(0, colon))), trim(line.substr(colon + 1)));
  }
  return size * n;
}

// S3's XML error body: <Error><Code>..</Code><Message>..</Message>...</Error>.
struct S3ErrorBody {
  std::string code;
  std::string message;
};

S3ErrorBody parseErrorBody(const std::string& body) {
  S3ErrorBody out;
  if (body.empty()) return out;
  try {
    std::istringstream in(body);
    boost::property_tree::ptree pt;
    boost::property_tree::read_xml(in, pt);
    out.code = pt.get<std::string>("Error.Code", "");
    out.message = pt.get<std::string>("Error.Message", "");
  } catch (const std::exception&) {
    // Not S3's XML (a proxy's HTML page, ...): the status alone has to do.
  }
  return out;
}

bool retryableStatus(long status, std::string_view code) {
  return status >= 500 || status == 429 || (status == 400 && code == "RequestTimeout") ||
         code == "SlowDown";
}

}  // namespace

S3Credentials S3Credentials::fromEnvironment(
    const std::function<const char*(const char*)>& getenv) {
  auto read = [&](const char* name) -> std::string {
    const char* v = getenv ? getenv(name) : std::getenv(name);
    return v ? std::string(v) : std::string();
  };
  return S3Credentials{read("AWS_ACCESS_KEY_ID"), read("AWS_SECRET_ACCESS_KEY"),
                       read("AWS_SESSION_TOKEN")};
}

std::chrono::milliseconds backoffDelay(int retry, std::chrono::milliseconds base,
                                       std::chrono::milliseconds max, std::mt19937_64& rng) {
  int64_t cap = base.count();
  for (int i = 0; i < retry && cap < max.count(); ++i) cap *= 2;
  cap = std::min<int64_t>(cap, max.count());
  if (cap <= 0) return std::chrono::milliseconds{0};
  std::uniform_int_distribution<int64_t> pick(0, cap);
  return std::chrono::milliseconds{pick(rng)};
}

std::string awsUriEncode(std::string_view s, bool keepSlash) {
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '~' || (keepSlash && c == '/')) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      boost::algorithm::hex(&c, &c + 1, std::back_inserter(out));  // upper case, as SigV4 wants
    }
  }
  return out;
}

std::string canonicalQuery(std::vector<std::pair<std::string, std::string>> params) {
  for (auto& [name, value] : params) {
    name = awsUriEncode(name, false);
    value = awsUriEncode(value, false);
  }
  std::sort(params.begin(), params.end());
  std::string out;
  for (const auto& [name, value] : params) {
    if (!out.empty()) out.push_back('&');
    out += name;
    out.push_back('=');
    out += value;
  }
  return out;
}

S3Client::S3Client(S3ClientOptions options)
    : options_(std::move(options)), rng_(std::random_device{}()) {
  globalInit();
  if (options_.maxAttempts < 1) options_.maxAttempts = 1;
  if (options_.operationTimeout.count() <= 0) options_.operationTimeout = options_.requestTimeout;
  std::string endpoint = options_.endpoint;
  const bool aws = endpoint.empty();
  if (aws) endpoint = "https://s3." + options_.region + ".amazonaws.com";
  while (!endpoint.empty() && endpoint.back() == '/') endpoint.pop_back();
  if (!options_.pathStyle) options_.pathStyle = !aws;
  if (*options_.pathStyle) {
    baseUrl_ = endpoint + "/" + awsUriEncode(options_.bucket, false);
  } else {
    const auto scheme = endpoint.find("://");
    const size_t hostStart = scheme == std::string::npos ? 0 : scheme + 3;
    baseUrl_ = endpoint.substr(0, hostStart) + options_.bucket + "." + endpoint.substr(hostStart);
  }
  sigv4_ = "aws:amz:" + options_.region + ":s3";
}

S3Client::~S3Client() {
  for (void* h : idle_) curl_easy_cleanup(static_cast<CURL*>(h));
}

std::string S3Client::objectUrl(std::string_view key) const {
  // The bucket itself (ListObjectsV2) is "/bucket" path-style, without a trailing slash: what the
  // AWS SDKs send, and what s3rver's signature check expects.
  if (key.empty()) return *options_.pathStyle ? baseUrl_ : baseUrl_ + "/";
  return baseUrl_ + "/" + awsUriEncode(key, true);
}

S3Deadline S3Client::deadline() const {
  return std::chrono::steady_clock::now() + options_.operationTimeout;
}

S3ClientStats S3Client::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

std::string S3Client::Response::header(std::string_view name) const {
  for (const auto& [n, v] : headers)
    if (n == name) return v;
  return {};
}

void* S3Client::acquireHandle() {
  {
    std::lock_guard lock(mutex_);
    if (!idle_.empty()) {
      void* h = idle_.back();
      idle_.pop_back();
      return h;
    }
  }
  return curl_easy_init();
}

void S3Client::releaseHandle(void* handle) {
  std::lock_guard lock(mutex_);
  idle_.push_back(handle);
}

std::chrono::milliseconds S3Client::nextBackoff(int retry) {
  std::lock_guard lock(mutex_);
  return backoffDelay(retry, options_.backoffBase, options_.backoffMax, rng_);
}

std::string S3Client::describe(const Call& call) const {
  return "S3 " + call.method + " s3://" + options_.bucket + "/" + call.key;
}

Result<S3Client::Response> S3Client::attempt(void* handle, const Call& call,
                                             std::chrono::milliseconds timeLeft, bool& retryable) {
  CURL* h = static_cast<CURL*>(handle);
  curl_easy_reset(h);  // keeps the handle's live connections
  retryable = false;

  Response response;
  std::string url = objectUrl(call.key);
  if (!call.query.empty()) url += "?" + call.query;

  curl_slist* headers = nullptr;
  auto addHeader = [&](const std::string& line) {
    headers = curl_slist_append(headers, line.c_str());
  };
  addHeader("x-amz-content-sha256: " +
            (options_.signPayload ? sha256Hex(call.body) : std::string("UNSIGNED-PAYLOAD")));
  if (!options_.credentials.sessionToken.empty())
    addHeader("x-amz-security-token: " + options_.credentials.sessionToken);
  if (!call.contentType.empty()) addHeader("Content-Type: " + call.contentType);
  // No "Expect:" / "Accept:" removals here: curl 7.88 signs a removed header as if it were sent
  // empty, and the store then rejects the signature.

  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  // Never past the operation's deadline (and never 0: libcurl's "no timeout").
  auto cut = [&](std::chrono::milliseconds limit) {
    return static_cast<long>(std::max<int64_t>(1, std::min(limit, timeLeft).count()));
  };
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, cut(options_.connectTimeout));
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, cut(options_.requestTimeout));
  if (!options_.caFile.empty()) curl_easy_setopt(h, CURLOPT_CAINFO, options_.caFile.c_str());
  if (call.method == "HEAD") {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else if (call.method == "PUT") {
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, call.body.data());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(call.body.size()));
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "PUT");
  } else if (call.method != "GET") {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, call.method.c_str());
  }
  if (!options_.credentials.accessKeyId.empty()) {
    curl_easy_setopt(h, CURLOPT_AWS_SIGV4, sigv4_.c_str());
    curl_easy_setopt(h, CURLOPT_USERNAME, options_.credentials.accessKeyId.c_str());
    curl_easy_setopt(h, CURLOPT_PASSWORD, options_.credentials.secretAccessKey.c_str());
  }
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, onBody);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &response.body);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, onHeader);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &response.headers);
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);

  const CURLcode rc = curl_easy_perform(h);
  // The handle goes back to the pool: it must not keep pointers into this frame.
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, nullptr);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, nullptr);
  curl_slist_free_all(headers);
  if (rc != CURLE_OK) {
    retryable =
        rc != CURLE_URL_MALFORMAT && rc != CURLE_UNSUPPORTED_PROTOCOL && rc != CURLE_OUT_OF_MEMORY;
    return makeError(Errc::Unavailable,
                     describe(call) + ": " +
                         (errbuf[0] ? std::string(errbuf) : std::string(curl_easy_strerror(rc))));
  }
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &response.status);
  return response;
}

Result<S3Client::Response> S3Client::perform(const Call& call, std::optional<S3Deadline> deadline) {
  const S3Deadline until = deadline ? *deadline : this->deadline();
  auto timeLeft = [&] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(until -
                                                                 std::chrono::steady_clock::now());
  };
  if (timeLeft().count() <= 0) {
    std::lock_guard lock(mutex_);
    ++stats_.failures;
    return makeError(Errc::Unavailable,
                     describe(call) + ": not sent, the operation's deadline has passed");
  }
  for (int attemptNo = 0;; ++attemptNo) {
    void* handle = acquireHandle();
    if (!handle) return makeError(Errc::Unavailable, describe(call) + ": curl_easy_init failed");
    bool retryable = false;
    auto r = attempt(handle, call, timeLeft(), retryable);
    releaseHandle(handle);
    {
      std::lock_guard lock(mutex_);
      ++stats_.requests;
    }
    std::optional<Error> failure;
    if (!r) {
      failure = r.error();
    } else if (r->status < 200 || r->status >= 300) {
      const S3ErrorBody err = parseErrorBody(r->body);
      retryable = retryableStatus(r->status, err.code);
      if (!retryable) return r;  // 4xx: the caller interprets (404 = absent, ...)
      failure = makeError(Errc::Unavailable, describe(call) + ": " + std::to_string(r->status) +
                                                 (err.code.empty() ? "" : " " + err.code) +
                                                 (err.message.empty() ? "" : ": " + err.message));
    } else {
      return r;
    }
    // A retry only if the attempts allow one and the deadline leaves time for its backoff and
    // then at least minAttemptTime: never a retry that the deadline would cut short.
    const auto delay = retryable ? nextBackoff(attemptNo) : std::chrono::milliseconds{0};
    const bool attemptsLeft = attemptNo + 1 < options_.maxAttempts;
    const bool timeForOne = timeLeft() - delay >= options_.minAttemptTime;
    if (!retryable || !attemptsLeft || !timeForOne) {
      std::lock_guard lock(mutex_);
      ++stats_.failures;
      const int attempts = attemptNo + 1;
      if (retryable && !attemptsLeft && attempts > 1)
        failure->message += " (after " + std::to_string(attempts) + " attempts)";
      else if (retryable && attemptsLeft)
        failure->message += " (after " + std::to_string(attempts) +
                            (attempts == 1 ? " attempt" : " attempts") +
                            ": no time left for another within the operation's deadline)";
      return *failure;
    }
    {
      std::lock_guard lock(mutex_);
      ++stats_.retries;
    }
    if (options_.sleep)
      options_.sleep(delay);
    else
      std::this_thread::sleep_for(delay);
  }
}

namespace {

// A non-2xx answer that was not retried (or ran out of retries) as the caller's error.
Error statusError(const std::string& what, long status, const std::string& body) {
  const S3ErrorBody err = parseErrorBody(body);
  std::string message = what + ": " + std::to_string(status);
  if (!err.code.empty()) message += " " + err.code;
  if (!err.message.empty()) message += ": " + err.message;
  Errc code = Errc::InvalidArgument;
  if (status == 413 || err.code == "EntityTooLarge")
    code = Errc::TooLarge;
  else if (status == 401 || status == 403 || status >= 500 || status == 429)
    code = Errc::Unavailable;
  return makeError(code, std::move(message));
}

}  // namespace

Result<void> S3Client::put(std::string_view key, std::string_view body,
                           std::string_view contentType, std::optional<S3Deadline> deadline) {
  Call call{"PUT", std::string(key), "", body, std::string(contentType)};
  auto r = perform(call, deadline);
  if (!r) return r.error();
  if (r->status < 200 || r->status >= 300) {
    std::lock_guard lock(mutex_);
    ++stats_.failures;
    return statusError(describe(call), r->status, r->body);
  }
  return {};
}

Result<std::optional<std::string>> S3Client::get(std::string_view key,
                                                 std::optional<S3Deadline> deadline) {
  Call call{"GET", std::string(key), "", {}, ""};
  auto r = perform(call, deadline);
  if (!r) return r.error();
  if (r->status == 404) {
    const S3ErrorBody err = parseErrorBody(r->body);
    if (err.code.empty() || err.code == "NoSuchKey") return std::optional<std::string>{};
  }
  if (r->status < 200 || r->status >= 300) {
    std::lock_guard lock(mutex_);
    ++stats_.failures;
    return statusError(describe(call), r->status, r->body);
  }
  return std::optional<std::string>(std::move(r->body));
}

Result<std::optional<S3ObjectInfo>> S3Client::head(std::string_view key,
                                                   std::optional<S3Deadline> deadline) {
  Call call{"HEAD", std::string(key), "", {}, ""};
  auto r = perform(call, deadline);
  if (!r) return r.error();
  if (r->status == 404)
    return std::optional<S3ObjectInfo>{};  // HEAD has no body to tell NoSuchBucket apart
  if (r->status < 200 || r->status >= 300) {
    std::lock_guard lock(mutex_);
    ++stats_.failures;
    return statusError(describe(call), r->status, r->body);
  }
  S3ObjectInfo info;
  info.key = std::string(key);
  info.size = std::strtoull(r->header("content-length").c_str(), nullptr, 10);
  info.etag = r->header("etag");
  info.lastModified = r->header("last-modified");
  return std::optional<S3ObjectInfo>(std::move(info));
}

Result<void> S3Client::erase(std::string_view key, std::optional<S3Deadline> deadline) {
  Call call{"DELETE", std::string(key), "", {}, ""};
  auto r = perform(call, deadline);
  if (!r) return r.error();
  if ((r->status < 200 || r->status >= 300) && r->status != 404) {
    std::lock_guard lock(mutex_);
    ++stats_.failures;
    return statusError(describe(call), r->status, r->body);
  }
  return {};
}

Result<S3ListPage> S3Client::listPage(std::string_view prefix,
                                      std::optional<std::string> continuationToken, int maxKeys,
                                      std::optional<S3Deadline> deadline,
                                      std::optional<std::string> startAfter) {
  std::vector<std::pair<std::string, std::string>> params = {
      {"list-type", "2"}, {"prefix", std::string(prefix)}, {"max-keys", std::to_string(maxKeys)}};
  if (continuationToken) params.emplace_back("continuation-token", *continuationToken);
  if (startAfter) params.emplace_back("start-after", *startAfter);
  Call call{"GET", "", canonicalQuery(std::move(params)), {}, ""};
  const std::string what = "S3 LIST s3://" + options_.bucket + "/" + std::string(prefix) + "*";
  auto r = perform(call, deadline);
  if (!r) return r.error();
  if (r->status < 200 || r->status >= 300) {
    std::lock_guard lock(mutex_);
    ++stats_.failures;
    return statusError(what, r->status, r->body);
  }
  S3ListPage page;
  try {
    std::istringstream in(r->body);
    boost::property_tree::ptree pt;
    boost::property_tree::read_xml(in, pt);
    const auto& result = pt.get_child("ListBucketResult");
    for (const auto& [name, child] : result) {
      if (name != "Contents") continue;
      S3ObjectInfo info;
      info.key = child.get<std::string>("Key");
      info.size = child.get<uint64_t>("Size", 0);
      info.etag = child.get<std::string>("ETag", "");
      info.lastModified = child.get<std::string>("LastModified", "");
      page.objects.push_back(std::move(info));
    }
    if (result.get<std::string>("IsTruncated", "false") == "true") {
      page.nextContinuationToken = result.get<std::string>("NextContinuationToken", "");
      if (page.nextContinuationToken->empty())
        return makeError(Errc::Corrupt, what + ": truncated listing without NextContinuationToken");
    }
  } catch (const std::exception& e) {
    return makeError(Errc::Corrupt, what + ": unreadable ListObjectsV2 answer: " + e.what());
  }
  return page;
}

Result<std::vector<S3ObjectInfo>> S3Client::list(std::string_view prefix, size_t maxObjects,
                                                 std::optional<S3Deadline> deadline) {
  std::vector<S3ObjectInfo> all;
  std::optional<std::string> token;
  do {
    auto page = listPage(prefix, token, 1000, deadline);
    if (!page) return page.error();
    for (auto& o : page->objects) all.push_back(std::move(o));
    if (all.size() > maxObjects)
      return makeError(Errc::TooLarge, "S3 LIST s3://" + options_.bucket + "/" +
                                           std::string(prefix) + "*: more than " +
                                           std::to_string(maxObjects) + " objects");
    token = std::move(page->nextContinuationToken);
  } while (token);
  return all;
}

}  // namespace llmcache::cache::s3
