// S3Client against a scripted HTTP server: retries, error parsing, headers. (The real store's
// signature check is in s3_tier_test.cc.)
#include "cache/s3/s3_client.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/algorithm/string/case_conv.hpp>
#include <deque>
#include <mutex>
#include <thread>

#include "cache/s3/s3_test_server.h"

namespace llmcache::cache::s3 {
namespace {

using namespace std::chrono_literals;

// Answers each request with the next scripted response (the last one repeats) and records the
// raw requests. Keep-alive, one connection at a time, port 0 on 127.0.0.1.
class ScriptedServer {
 public:
  struct Reply {
    int status;
    std::string body;
  };
  explicit ScriptedServer(std::deque<Reply> replies) : replies_(std::move(replies)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::listen(fd_, 8);
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { run(); });
  }
  ~ScriptedServer() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::vector<std::string> requests() {
    std::lock_guard lock(mutex_);
    return requests_;
  }

 private:
  void run() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) continue;
      serve(c);
      ::close(c);
    }
  }
  void serve(int c) {
    std::string buf;
    while (!stop_) {
      size_t headEnd;
      while ((headEnd = buf.find("\r\n\r\n")) == std::string::npos) {
        pollfd p{c, POLLIN, 0};
        if (::poll(&p, 1, 50) <= 0) {
          if (stop_) return;
          continue;
        }
        char tmp[4096];
        ssize_t n = ::read(c, tmp, sizeof tmp);
        if (n <= 0) return;
        buf.append(tmp, static_cast<size_t>(n));
      }
      size_t length = 0;
      std::string head = buf.substr(0, headEnd);
      const std::string lowerHead = boost::algorithm::to_lower_copy(head);
      if (auto at = lowerHead.find("content-length:"); at != std::string::npos)
        length = std::stoul(head.substr(at + 15));
      while (buf.size() < headEnd + 4 + length) {
        char tmp[4096];
        ssize_t n = ::read(c, tmp, sizeof tmp);
        if (n <= 0) return;
        buf.append(tmp, static_cast<size_t>(n));
      }
      Reply reply;
      {
        std::lock_guard lock(mutex_);
        requests_.push_back(buf.substr(0, headEnd + 4 + length));
        reply = replies_.front();
        if (replies_.size() > 1) replies_.pop_front();
      }
      buf.erase(0, headEnd + 4 + length);
      const bool isHead = head.starts_with("HEAD ");
      std::string out = "HTTP/1.1 " + std::to_string(reply.status) +
                        " X\r\nContent-Length: " + std::to_string(reply.body.size()) +
                        "\r\nContent-Type: application/xml\r\n\r\n" + (isHead ? "" : reply.body);
      if (::write(c, out.data(), out.size()) < 0) return;
    }
  }

  int fd_;
  uint16_t port_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mutex_;
  std::deque<Reply> replies_;
  std::vector<std::string> requests_;
};

std::string errorXml(const std::string& code, const std::string& message) {
  return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>" + code + "</Code><Message>" +
         message + "</Message><RequestId>4442587FB7D0A2F9</RequestId></Error>";
}

struct Fixture {
  std::vector<std::chrono::milliseconds> sleeps;
  S3ClientOptions options(const std::string& endpoint) {
    S3ClientOptions o;
    o.endpoint = endpoint;
    o.bucket = "b";
    o.region = "eu-west-3";
    o.credentials = {"AKIDEXAMPLE", "wJalrXUtnFEMI-secret", "session-token-1"};
    o.maxAttempts = 4;
    o.backoffBase = 100ms;
    o.backoffMax = 1000ms;
    o.connectTimeout = 500ms;
    o.requestTimeout = 2000ms;
    o.sleep = [this](std::chrono::milliseconds d) { sleeps.push_back(d); };
    return o;
  }
};

TEST(S3ClientTest, CanonicalQuerySortsParametersAndEncodesWhatAwsEncodes) {
  EXPECT_EQ(canonicalQuery({{"prefix", "llm-cache/gpt-4o mini/"},
                            {"list-type", "2"},
                            {"continuation-token", "a+b=c/"}}),
            "continuation-token=a%2Bb%3Dc%2F&list-type=2&prefix=llm-cache%2Fgpt-4o%20mini%2F");
  EXPECT_EQ(awsUriEncode("a/b c~d_e.f-g\xc3\xa9", true), "a/b%20c~d_e.f-g%C3%A9");
  EXPECT_EQ(awsUriEncode("a/b", false), "a%2Fb");
}

TEST(S3ClientTest, BackoffDelayStaysWithinTheDoublingCap) {
  std::mt19937_64 rng(42);
  for (int retry = 0; retry < 12; ++retry) {
    const int64_t cap = std::min<int64_t>(1000, int64_t{100} << retry);
    for (int i = 0; i < 50; ++i) {
      auto d = backoffDelay(retry, 100ms, 1000ms, rng);
      EXPECT_GE(d.count(), 0);
      EXPECT_LE(d.count(), cap);
    }
  }
}

TEST(S3ClientTest, AddressingIsPathStyleWithAnEndpointAndVirtualHostedOnAws) {
  S3ClientOptions o;
  o.bucket = "my-bucket";
  o.region = "eu-west-3";
  EXPECT_EQ(S3Client(o).objectUrl("llm-cache/a b.json"),
            "https://my-bucket.s3.eu-west-3.amazonaws.com/llm-cache/a%20b.json");
  o.endpoint = "http://minio:9000/";
  EXPECT_EQ(S3Client(o).objectUrl("k.json"), "http://minio:9000/my-bucket/k.json");
  o.pathStyle = false;
  EXPECT_EQ(S3Client(o).objectUrl("k.json"), "http://my-bucket.minio:9000/k.json");
  o.endpoint = "";
  o.pathStyle = true;
  EXPECT_EQ(S3Client(o).objectUrl("k.json"), "https://s3.eu-west-3.amazonaws.com/my-bucket/k.json");
}

TEST(S3ClientTest, SignsWithSigV4SendsThePayloadHashAndTheSessionTokenButNeverTheSecret) {
  ScriptedServer server({{200, ""}});
  Fixture f;
  S3Client client(f.options(server.endpoint()));
  ASSERT_TRUE(client.put("llm-cache/k.json", "{\"a\":1}", "application/json"));
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 1u);
  const std::string& r = reqs[0];
  EXPECT_TRUE(r.starts_with("PUT /b/llm-cache/k.json HTTP/1.1\r\n")) << r;
  EXPECT_NE(r.find("Authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"), std::string::npos)
      << r;
  EXPECT_NE(r.find("/eu-west-3/s3/aws4_request"), std::string::npos) << r;
  EXPECT_NE(r.find("x-amz-content-sha256: " + sha256Hex("{\"a\":1}")), std::string::npos) << r;
  EXPECT_NE(r.find("x-amz-security-token: session-token-1"), std::string::npos) << r;
  EXPECT_NE(r.find("Content-Type: application/json"), std::string::npos) << r;
  EXPECT_EQ(r.find("wJalrXUtnFEMI-secret"), std::string::npos) << r;
}

TEST(S3ClientTest, Retries503SlowDownAnd429WithBackoffThenSucceeds) {
  ScriptedServer server({{503, errorXml("SlowDown", "Please reduce your request rate.")},
                         {429, errorXml("TooManyRequests", "slow")},
                         {200, "body"}});
  Fixture f;
  S3Client client(f.options(server.endpoint()));
  auto r = client.get("k.json");
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_TRUE(*r);
  EXPECT_EQ(**r, "body");
  EXPECT_EQ(server.requests().size(), 3u);
  ASSERT_EQ(f.sleeps.size(), 2u);
  EXPECT_LE(f.sleeps[0], 100ms);
  EXPECT_LE(f.sleeps[1], 200ms);
  EXPECT_EQ(client.stats().retries, 2u);
}

TEST(S3ClientTest, GivesUpAfterMaxAttemptsNamingTheStoreError) {
  ScriptedServer server({{500, errorXml("InternalError", "We encountered an internal error.")}});
  Fixture f;
  S3Client client(f.options(server.endpoint()));
  auto r = client.put("k.json", "x", "application/json");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::Unavailable);
  EXPECT_NE(r.error().message.find(
                "S3 PUT s3://b/k.json: 500 InternalError: We encountered an internal error."),
            std::string::npos)
      << r.error().message;
  EXPECT_EQ(server.requests().size(), 4u);
  EXPECT_EQ(client.stats().failures, 1u);
}

TEST(S3ClientTest, DoesNotRetryAClientError) {
  ScriptedServer server({{403, errorXml("AccessDenied", "Access Denied")}});
  Fixture f;
  S3Client client(f.options(server.endpoint()));
  auto r = client.get("k.json");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::Unavailable);
  EXPECT_NE(r.error().message.find("403 AccessDenied: Access Denied"), std::string::npos)
      << r.error().message;
  EXPECT_EQ(server.requests().size(), 1u);
  EXPECT_TRUE(f.sleeps.empty());
}

TEST(S3ClientTest, MissingKeyIsAbsentButAMissingBucketIsAnError) {
  ScriptedServer server({{404, errorXml("NoSuchKey", "The specified key does not exist.")},
                         {404, errorXml("NoSuchBucket", "The specified bucket does not exist")}});
  Fixture f;
  S3Client client(f.options(server.endpoint()));
  auto absent = client.get("k.json");
  ASSERT_TRUE(absent);
  EXPECT_FALSE(*absent);
  auto noBucket = client.get("k.json");
  ASSERT_FALSE(noBucket);
  EXPECT_EQ(noBucket.error().code, Errc::InvalidArgument);
  EXPECT_NE(noBucket.error().message.find("NoSuchBucket"), std::string::npos);
}

TEST(S3ClientTest, TooLargeIsItsOwnError) {
  ScriptedServer server(
      {{400, errorXml("EntityTooLarge", "Your proposed upload exceeds the maximum allowed size")}});
  Fixture f;
  S3Client client(f.options(server.endpoint()));
  auto r = client.put("k.json", "x", "application/json");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::TooLarge);
}

TEST(S3ClientTest, ListingSendsTheCanonicalQueryAndParsesPages) {
  ScriptedServer server(
      {{200,
        "<?xml version=\"1.0\"?><ListBucketResult><Name>b</Name><Prefix>p/</Prefix>"
        "<IsTruncated>true</IsTruncated><NextContinuationToken>tok/1+</NextContinuationToken>"
        "<Contents><Key>p/a&amp;b.json</Key><Size>12</Size><ETag>\"e1\"</ETag></Contents>"
        "</ListBucketResult>"},
       {200,
        "<?xml version=\"1.0\"?><ListBucketResult><IsTruncated>false</IsTruncated>"
        "<Contents><Key>p/c.json</Key><Size>3</Size></Contents></ListBucketResult>"}});
  Fixture f;
  S3Client client(f.options(server.endpoint()));
  auto all = client.list("p/");
  ASSERT_TRUE(all) << all.error().message;
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].key, "p/a&b.json");
  EXPECT_EQ((*all)[0].size, 12u);
  EXPECT_EQ((*all)[1].key, "p/c.json");
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_TRUE(reqs[0].starts_with("GET /b?list-type=2&max-keys=1000&prefix=p%2F HTTP/1.1"))
      << reqs[0];
  EXPECT_TRUE(reqs[1].starts_with(
      "GET /b?continuation-token=tok%2F1%2B&list-type=2&max-keys=1000&prefix=p%2F HTTP/1.1"))
      << reqs[1];
}

TEST(S3ClientTest, UnreadableListingIsCorrupt) {
  ScriptedServer server({{200, "<html>not s3</html>"}});
  Fixture f;
  S3Client client(f.options(server.endpoint()));
  auto r = client.listPage("p/");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::Corrupt);
}

TEST(S3ClientTest, UnreachableStoreIsUnavailableAfterBoundedRetries) {
  int port;
  {
    ScriptedServer gone({{200, ""}});  // a port that was just free, now closed again
    port = std::stoi(gone.endpoint().substr(gone.endpoint().rfind(':') + 1));
  }
  Fixture f;
  S3Client client(f.options("http://127.0.0.1:" + std::to_string(port)));
  const auto start = std::chrono::steady_clock::now();
  auto r = client.head("k.json");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::Unavailable);
  EXPECT_NE(r.error().message.find("S3 HEAD s3://b/k.json"), std::string::npos)
      << r.error().message;
  EXPECT_EQ(f.sleeps.size(), 3u);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

// Issue 15, item 8: a hung store (accepts, never answers) cost one requestTimeout per attempt
// (4 x 1 s here). One operation has one deadline (requestTimeout by default), retries inside.
TEST(S3ClientDeadlineTest, AHungStoreCostsOneDeadlineNotOnePerAttempt) {
  test::StallingServer hung;
  Fixture f;
  S3ClientOptions o = f.options(hung.endpoint());
  o.requestTimeout = 1000ms;  // CACHE_S3_TIMEOUT=1
  S3Client client(o);         // maxAttempts 4
  const auto start = std::chrono::steady_clock::now();
  auto r = client.get("k.json");
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::Unavailable);
  EXPECT_NE(r.error().message.find("S3 GET s3://b/k.json"), std::string::npos) << r.error().message;
  EXPECT_GE(took, 900ms);
  EXPECT_LT(took, 2500ms);        // ~1 s; it was ~4 s
  EXPECT_EQ(hung.requests(), 1);  // nothing left for a retry
  EXPECT_NE(r.error().message.find("no time left for another"), std::string::npos)
      << r.error().message;
}

TEST(S3ClientDeadlineTest, RetriesAndTheirBackoffStayWithinTheDeadline) {
  ScriptedServer server({{503, errorXml("SlowDown", "Please reduce your request rate.")}});
  Fixture f;
  S3ClientOptions o = f.options(server.endpoint());
  o.requestTimeout = 500ms;  // the deadline
  o.maxAttempts = 10;
  o.backoffBase = 100ms;
  o.backoffMax = 1000ms;
  o.sleep = {};  // really wait
  S3Client client(o);
  const auto start = std::chrono::steady_clock::now();
  auto r = client.put("k.json", "x", "application/json");
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::Unavailable);
  EXPECT_NE(r.error().message.find("503 SlowDown"), std::string::npos) << r.error().message;
  EXPECT_LT(took, 1000ms);  // ~0.5 s at most; the 9 backoffs alone were up to 6.5 s
  EXPECT_GE(server.requests().size(), 2u);
  EXPECT_LT(server.requests().size(), 10u);  // stopped by the deadline, not by maxAttempts
}

TEST(S3ClientDeadlineTest, CallsThatShareADeadlineShareItsTime) {
  // Answers after 300 ms: the first call fits the 500 ms deadline, the second is cut short.
  test::StallingServer slow({test::StalledReply(300ms, "x")});
  Fixture f;
  S3ClientOptions o = f.options(slow.endpoint());
  o.requestTimeout = 2000ms;  // per attempt; the operation has less
  o.operationTimeout = 500ms;
  S3Client client(o);
  const auto start = std::chrono::steady_clock::now();
  const S3Deadline deadline = client.deadline();
  auto first = client.get("a.json", deadline);
  ASSERT_TRUE(first) << first.error().message;
  auto second = client.get("b.json", deadline);
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code, Errc::Unavailable);
  EXPECT_GE(took, 450ms);
  EXPECT_LT(took, 800ms);  // each call alone would have fitted: 600 ms
  // Without a shared deadline each call is an operation of its own.
  EXPECT_TRUE(client.get("c.json"));
  EXPECT_TRUE(client.get("d.json"));
}

TEST(S3ClientDeadlineTest, ACallPastItsDeadlineSendsNothing) {
  ScriptedServer server({{200, "body"}});
  Fixture f;
  S3Client client(f.options(server.endpoint()));
  EXPECT_EQ(client.options().operationTimeout, 2000ms);  // requestTimeout by default
  auto r = client.get("k.json", std::chrono::steady_clock::now() - 1ms);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::Unavailable);
  EXPECT_NE(r.error().message.find("deadline"), std::string::npos) << r.error().message;
  EXPECT_TRUE(server.requests().empty());
  EXPECT_EQ(client.stats().failures, 1u);
}

TEST(S3ClientTest, CredentialsComeFromTheAwsVariables) {
  auto creds = S3Credentials::fromEnvironment([](const char* name) -> const char* {
    std::string n = name;
    if (n == "AWS_ACCESS_KEY_ID") return "id";
    if (n == "AWS_SECRET_ACCESS_KEY") return "secret";
    return nullptr;
  });
  EXPECT_EQ(creds.accessKeyId, "id");
  EXPECT_EQ(creds.secretAccessKey, "secret");
  EXPECT_EQ(creds.sessionToken, "");
}

}  // namespace
}  // namespace llmcache::cache::s3
