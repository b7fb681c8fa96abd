// sendSmtp and the Alerter against a real SMTP server: tests/alerts/smtp_sink.py (aiosmtpd),
// started per test on port 0; it writes every mail it accepted to a JSON-lines file.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>

#include "alerts/alerter.h"
#include "common/json.h"

extern char** environ;

namespace llmcache::alerts {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

fs::path sourceDir() {
  const char* s = std::getenv("LLMCACHE_SOURCE_DIR");
  return s ? fs::path(s) : fs::path(__FILE__).parent_path().parent_path().parent_path();
}

class SmtpSink {
 public:
  explicit SmtpSink(fs::path out) : out_(std::move(out)) {
    int fds[2];
    if (pipe(fds) != 0) throw std::runtime_error("pipe");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&actions, fds[0]);
    const std::string script = (sourceDir() / "tests/alerts/smtp_sink.py").string();
    const std::string outArg = out_.string();
    // Debian's python3 has python3-aiosmtpd; a python3 earlier on PATH (pyenv, a venv) may not.
    const char* env = std::getenv("LLMCACHE_PYTHON");
    const std::string python = env && *env                      ? env
                               : fs::exists("/usr/bin/python3") ? "/usr/bin/python3"
                                                                : "python3";
    const char* argv[] = {python.c_str(), script.c_str(), "--out", outArg.c_str(), nullptr};
    const int rc =
        posix_spawnp(&pid_, python.c_str(), &actions, nullptr, const_cast<char**>(argv), environ);
    posix_spawn_file_actions_destroy(&actions);
    close(fds[1]);
    if (rc != 0) throw std::runtime_error("cannot start python3");
    // Its first line says where it listens (or it dies: aiosmtpd missing).
    std::string line;
    pollfd p{fds[0], POLLIN, 0};
    while (line.find('\n') == std::string::npos && poll(&p, 1, 10'000) > 0) {
      char buf[256];
      const ssize_t n = read(fds[0], buf, sizeof buf);
      if (n <= 0) break;
      line.append(buf, static_cast<size_t>(n));
    }
    close(fds[0]);
    std::smatch m;
    if (!std::regex_search(line, m, std::regex(R"(listening on (127\.0\.0\.1:\d+))")))
      throw std::runtime_error(
          "the SMTP sink did not start (is python3-aiosmtpd installed? scripts/setup.sh): " + line);
    url_ = "smtp://" + m[1].str();
  }
  ~SmtpSink() {
    kill(pid_, SIGTERM);
    int status = 0;
    waitpid(pid_, &status, 0);
  }
  const std::string& url() const { return url_; }

  std::vector<Json> mails() const {
    std::vector<Json> out;
    std::ifstream in(out_);
    for (std::string line; std::getline(in, line);)
      if (auto j = parseJson(line)) out.push_back(std::move(*j));
    return out;
  }

 private:
  fs::path out_;
  pid_t pid_ = -1;
  std::string url_;
};

class SmtpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("llmcache-smtp-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
    sink_ = std::make_unique<SmtpSink>(dir_ / "mails.jsonl");
  }
  void TearDown() override {
    sink_.reset();
    fs::remove_all(dir_);
  }
  static std::string data(const Json& mail) {
    return std::string(mail.getString("data").value_or(""));
  }
  static std::vector<std::string> rcpts(const Json& mail) {
    std::vector<std::string> out;
    if (const Json* r = mail.find("rcpt_tos"))
      for (const auto& v : r->items()) out.emplace_back(v.text());
    return out;
  }

  fs::path dir_;
  std::unique_ptr<SmtpSink> sink_;
};

TEST_F(SmtpTest, AMailArrivesWithItsEnvelopeHeadersAndBodyIntact) {
  Mail m{"llmcache@gw.example",
         {"ops@example.com", "oncall@example.com"},
         "[llmcache] test",
         "first line\n.a line starting with a dot\n..two dots\nlast line\n"};
  ASSERT_TRUE(sendSmtp(sink_->url(), m)) << sendSmtp(sink_->url(), m).error().message;
  const auto mails = sink_->mails();
  ASSERT_EQ(mails.size(), 1u);
  EXPECT_EQ(mails[0].getString("mail_from").value_or(""), "llmcache@gw.example");
  EXPECT_EQ(rcpts(mails[0]), (std::vector<std::string>{"ops@example.com", "oncall@example.com"}));
  const std::string d = data(mails[0]);
  EXPECT_NE(d.find("Subject: [llmcache] test\r\n"), std::string::npos) << d;
  EXPECT_NE(d.find("To: ops@example.com, oncall@example.com\r\n"), std::string::npos);
  EXPECT_NE(d.find("Date: "), std::string::npos);
  // Dot-stuffed on the wire by libcurl, undone by the server: the body is what was sent.
  EXPECT_TRUE(d.ends_with(
      "\r\n\r\nfirst line\r\n.a line starting with a dot\r\n..two dots\r\nlast line\r\n"))
      << d;
}

TEST_F(SmtpTest, AnUnreachableServerIsAnUnavailableError) {
  // A port the sink had and gave back is closed by the time we connect.
  std::string url = sink_->url();
  sink_.reset();
  auto r = sendSmtp(url, Mail{"x@example.com", {"a@example.com"}, "s", "b"});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::Unavailable);
  EXPECT_NE(r.error().message.find(url), std::string::npos) << r.error().message;
  sink_ = std::make_unique<SmtpSink>(dir_ / "mails.jsonl");
}

TEST_F(SmtpTest, TheAlerterSendsExactlyTheMailsItsRulesAndCooldownsAllow) {
  FakeClock clock;
  AlerterOptions o;
  o.from = "llmcache@gw.example";
  o.to = {"ops@example.com"};
  o.window = 300s;
  o.cooldown = 3600s;
  o.instance = "gw1";
  const std::string url = sink_->url();
  Alerter a(
      o, [&url](const Mail& m) { return sendSmtp(url, m); }, clock);
  auto at = [&](std::chrono::seconds step, uint64_t requests, uint64_t hits, uint64_t s3Errors,
                uint64_t outbox) {
    clock.advance(step);
    a.evaluate({.requests = requests,
                .hits = hits,
                .tierErrors = {{"s3", s3Errors}},
                .outboxPending = outbox});
  };
  at(0s, 0, 0, 0, 0);            // baseline
  at(300s, 1000, 900, 0, 0);     // 90%: fine
  at(300s, 1200, 905, 3, 0);     // 2.5% in the window: mail 1
  at(60s, 1300, 905, 40, 0);     // still low (suppressed); s3 failing: mail 2
  at(60s, 1400, 905, 80, 4000);  // both suppressed; backlog: mail 3
  at(3600s, 1500, 905, 80,
     0);  // the cooldowns are over but the window has 100 requests, 0 hits: mail 4
  EXPECT_EQ(a.stats().failed, 0u) << a.stats().lastError;
  const auto mails = sink_->mails();
  ASSERT_EQ(mails.size(), 4u);
  EXPECT_NE(data(mails[0]).find("Subject: [llmcache gw1] hit rate 2.5% over the last 300 s"),
            std::string::npos)
      << data(mails[0]);
  EXPECT_NE(data(mails[1]).find("Subject: [llmcache gw1] cache tier failing: s3"),
            std::string::npos);
  EXPECT_NE(data(mails[1]).find("s3: 40 errors"), std::string::npos) << data(mails[1]);
  EXPECT_NE(data(mails[2]).find("Subject: [llmcache gw1] S3 write backlog: 4000 entries waiting"),
            std::string::npos);
  EXPECT_NE(data(mails[3]).find("Subject: [llmcache gw1] hit rate 0.0%"), std::string::npos)
      << data(mails[3]);
  for (const auto& m : mails) EXPECT_EQ(rcpts(m), (std::vector<std::string>{"ops@example.com"}));
  EXPECT_EQ(a.stats().sent, 4u);
}

}  // namespace
}  // namespace llmcache::alerts
