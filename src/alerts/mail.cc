#include "alerts/mail.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <boost/algorithm/hex.hpp>
#include <cstring>
#include <ctime>
#include <iterator>
#include <memory>
#include <mutex>

namespace llmcache::alerts {

namespace {

std::string oneLine(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c == '\r' || c == '\n') c = ' ';
  return out;
}

// RFC 2047 encoded-word for a header value that is not plain ASCII.
std::string encodeHeader(const std::string& value) {
  bool ascii = true;
  for (unsigned char c : value) ascii = ascii && c < 0x80;
  if (ascii) return value;
  std::string b64(4 * ((value.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(b64.data()),
                                reinterpret_cast<const unsigned char*>(value.data()),
                                static_cast<int>(value.size()));
  b64.resize(static_cast<size_t>(n));
  return "=?UTF-8?B?" + b64 + "?=";
}

std::string rfc5322Date(TimePoint t) {
  const std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d +0000", kDays[tm.tm_wday],
                tm.tm_mday, kMonths[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                tm.tm_sec);
  return buf;
}

std::string messageId(std::string_view from) {
  unsigned char raw[12];
  if (RAND_bytes(raw, sizeof raw) != 1) std::memset(raw, 0, sizeof raw);
  std::string id;
  boost::algorithm::hex_lower(raw, raw + sizeof raw, std::back_inserter(id));
  const size_t at = from.rfind('@');
  const std::string_view domain =
      at == std::string_view::npos ? std::string_view("llmcache") : from.substr(at + 1);
  return "<" + id + "." +
         std::to_string(std::chrono::system_clock::now().time_since_epoch().count()) + "@" +
         oneLine(domain) + ">";
}

// <address> for the SMTP envelope (appended piecewise: GCC 12's -Wrestrict misfires on "<" + s +
// ">").
std::string angle(const std::string& address) {
  std::string out = "<";
  out += oneLine(address);
  out += '>';
  return out;
}

// The URL for messages: user:password@ masked.
std::string withoutCredentials(const std::string& url) {
  const size_t scheme = url.find("://");
  const size_t at = url.rfind('@');
  if (scheme == std::string::npos || at == std::string::npos || at < scheme) return url;
  return url.substr(0, scheme + 3) + "****" + url.substr(at);
}

struct Upload {
  std::string data;
  size_t offset = 0;
};

size_t readPayload(char* buffer, size_t size, size_t nitems, void* user) {
  auto* u = static_cast<Upload*>(user);
  const size_t n = std::min(size * nitems, u->data.size() - u->offset);
  std::memcpy(buffer, u->data.data() + u->offset, n);
  u->offset += n;
  return n;
}

}  // namespace

std::string formatMessage(const Mail& mail, TimePoint date) {
  std::string to;
  for (const auto& a : mail.to) to += (to.empty() ? "" : ", ") + oneLine(a);
  std::string m;
  m += "Date: " + rfc5322Date(date) + "\r\n";
  m += "From: " + oneLine(mail.from) + "\r\n";
  m += "To: " + to + "\r\n";
  m += "Subject: " + encodeHeader(oneLine(mail.subject)) + "\r\n";
  m += "Message-ID: " + messageId(mail.from) + "\r\n";
  m += "MIME-Version: 1.0\r\n";
  m += "Content-Type: text/plain; charset=utf-8\r\n";
  m += "Content-Transfer-Encoding: 8bit\r\n";
  m += "Auto-Submitted: auto-generated\r\n";  // RFC 3834: no auto-replies to alerts
  m += "\r\n";
  for (size_t i = 0; i < mail.body.size(); ++i) {
    const char c = mail.body[i];
    if (c == '\r') continue;
    if (c == '\n')
      m += "\r\n";
    else
      m.push_back(c);
  }
  if (!mail.body.empty() && mail.body.back() != '\n') m += "\r\n";
  return m;
}

Result<void> sendSmtp(const std::string& url, const Mail& mail) {
  if (mail.to.empty()) return makeError(Errc::InvalidArgument, "the mail has no recipient");
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });

  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), &curl_easy_cleanup);
  if (!curl) return makeError(Errc::Unavailable, "SMTP: curl_easy_init failed");
  curl_slist* rcpt = nullptr;
  for (const auto& a : mail.to) rcpt = curl_slist_append(rcpt, angle(a).c_str());
  std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> rcptGuard(rcpt, &curl_slist_free_all);

  Upload upload{formatMessage(mail, std::chrono::system_clock::now())};
  const std::string from = angle(mail.from);
  char errbuf[CURL_ERROR_SIZE] = {0};
  CURL* c = curl.get();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_MAIL_FROM, from.c_str());
  curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt);
  curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
  curl_easy_setopt(c, CURLOPT_READFUNCTION, &readPayload);
  curl_easy_setopt(c, CURLOPT_READDATA, &upload);
  curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(upload.data.size()));
  // smtp://: upgrade with STARTTLS when the server offers it (a local relay often does not);
  // smtps:// is TLS from the first byte. Certificates are verified either way.
  curl_easy_setopt(c, CURLOPT_USE_SSL, static_cast<long>(CURLUSESSL_TRY));
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  const CURLcode rc = curl_easy_perform(c);
  if (rc != CURLE_OK) {
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    std::string message =
        "SMTP " + withoutCredentials(url) + ": " + (errbuf[0] ? errbuf : curl_easy_strerror(rc));
    if (code > 0) message += " (reply " + std::to_string(code) + ")";
    return makeError(Errc::Unavailable, std::move(message));
  }
  return {};
}

}  // namespace llmcache::alerts
