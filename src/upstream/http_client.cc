#include "upstream/http_client.h"

#include <curl/curl.h>

#include <atomic>
#include <boost/algorithm/string/classification.hpp>
#include <boost/algorithm/string/trim.hpp>
#include <cerrno>
#include <cstdio>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <unordered_map>
#include <utility>

namespace llmcache::upstream {
namespace detail {

struct TransferState;

// State shared by the Client, its worker thread and every Transfer handle. A Transfer may
// outlive its Client: `multi` is then null and cancel() only sets the flag.
struct ClientCore {
  std::mutex mu;
  CURLM* multi = nullptr;  // guarded by mu for wakeups; the worker uses it without the lock
  bool stopping = false;
  std::vector<std::shared_ptr<TransferState>> starts;   // queued by start(), taken by the worker
  std::vector<std::shared_ptr<TransferState>> cancels;  // queued by cancel()
  std::vector<std::shared_ptr<TransferState>> resumes;  // queued by resume()
};

struct TransferState {
  std::shared_ptr<ClientCore> core;
  std::atomic<bool> cancelled{false};

  // Worker thread only, from here on.
  Request request;
  std::shared_ptr<Sink> sink;
  CURL* easy = nullptr;
  curl_slist* headerList = nullptr;
  char errorBuffer[CURL_ERROR_SIZE] = {};
  ResponseHead head;  // being assembled from header lines
  bool headDelivered = false;
  bool finished = false;
  // Back-pressure (client.h, DataFlow): the sink's last onData asked to pause; the next chunk
  // is then refused with CURL_WRITEFUNC_PAUSE (libcurl keeps it and offers it again once
  // unpaused), which makes curlPaused true. resume() clears both, unpausing curl if needed.
  bool holdRequested = false;
  bool curlPaused = false;
  std::string callbackError;  // what a sink callback threw, if anything
};

}  // namespace detail

namespace {

using detail::ClientCore;
using detail::TransferState;

class NullSink final : public Sink {
 public:
  void onHead(ResponseHead) override {}
  DataFlow onData(std::string_view) override { return DataFlow::Continue; }
  void onComplete(Result<void>) override {}
};

void initCurlOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// The URL as it may appear in messages: without user info, query or fragment (some providers
// take an API key as ?key=).
std::string redactUrl(std::string_view url) {
  size_t cut = url.find_first_of("?#");
  if (cut != std::string_view::npos) url = url.substr(0, cut);
  std::string out{url};
  size_t scheme = out.find("://");
  if (scheme != std::string::npos) {
    size_t authorityStart = scheme + 3;
    size_t authorityEnd = out.find('/', authorityStart);
    size_t at = out.rfind('@', authorityEnd == std::string::npos ? out.size() : authorityEnd);
    if (at != std::string::npos && at >= authorityStart)
      out.erase(authorityStart, at + 1 - authorityStart);
  }
  return out;
}

std::string describe(const TransferState& t) {
  return "upstream " + t.request.method + " " + redactUrl(t.request.url);
}

// A transfer ended by the caller (Transfer::cancel), by client shutdown (Cancelled) or by a
// sink callback that threw (Unavailable).
Error abortedError(const TransferState& t, std::string_view why = {}, Errc code = Errc::Cancelled) {
  std::string message = describe(t) + " aborted";
  if (!why.empty()) message += ": " + std::string{why};
  return makeError(code, std::move(message));
}

// CURLE_OPERATION_TIMEDOUT is curl's own connect and total deadline. A connect, send or receive
// the OS gave up on with ETIMEDOUT (SYN retries exhausted with no connect timeout set, or a
// keepalive probe unanswered) is a deadline too.
bool isTimeout(CURL* easy, CURLcode rc) {
  if (rc == CURLE_OPERATION_TIMEDOUT) return true;
  if (rc != CURLE_COULDNT_CONNECT && rc != CURLE_RECV_ERROR && rc != CURLE_SEND_ERROR) {
    return false;
  }
  long osErrno = 0;
  if (easy == nullptr || curl_easy_getinfo(easy, CURLINFO_OS_ERRNO, &osErrno) != CURLE_OK) {
    return false;
  }
  return osErrno == ETIMEDOUT;
}

std::string_view trim(std::string_view s) {  // spaces, tabs and line ends (not \v, \f)
  return boost::algorithm::trim_copy_if(s, boost::algorithm::is_any_of(" \t\r\n"));
}

bool hasControlBreak(std::string_view s) {
  return s.find_first_of(std::string_view{"\r\n\0", 3}) != std::string_view::npos;
}

// Calls a sink callback; an exception aborts the transfer instead of unwinding through libcurl.
template <class F>
bool callSink(TransferState& t, F&& f) {
  try {
    f();
    return true;
  } catch (const std::exception& e) {
    t.callbackError = e.what();
  } catch (...) {
    t.callbackError = "unknown exception";
  }
  return false;
}

bool deliverHead(TransferState& t) {
  t.headDelivered = true;
  if (t.head.status == 0) {
    long code = 0;
    curl_easy_getinfo(t.easy, CURLINFO_RESPONSE_CODE, &code);
    t.head.status = static_cast<int>(code);
  }
  return callSink(t, [&] { t.sink->onHead(std::move(t.head)); });
}

// libcurl hands over every header line of every response, interim ones included, one line at
// a time with its CRLF. A status line starts a new head; the blank line ends it; only a final
// (>= 200) head is delivered.
size_t onHeaderLine(char* data, size_t size, size_t count, void* user) {
  auto& t = *static_cast<TransferState*>(user);
  size_t length = size * count;
  if (t.cancelled.load(std::memory_order_relaxed)) return 0;
  if (t.headDelivered) return length;  // trailers
  std::string_view line{data, length};
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  if (line.starts_with("HTTP/")) {
    t.head = ResponseHead{};
    size_t space = line.find(' ');
    if (space != std::string_view::npos) {
      int status = 0;
      for (size_t i = space + 1; i < line.size() && line[i] >= '0' && line[i] <= '9'; ++i) {
        status = status * 10 + (line[i] - '0');
      }
      t.head.status = status;
    }
    return length;
  }
  if (line.empty()) {
    if (t.head.status >= 200) {
      if (!deliverHead(t)) return 0;
    } else {
      t.head = ResponseHead{};  // end of an interim 1xx response
    }
    return length;
  }
  if ((line.front() == ' ' || line.front() == '\t') && !t.head.headers.empty()) {
    // Obsolete line folding: a continuation of the previous field's value.
    std::string& value = t.head.headers.back().value;
    value += ' ';
    value += trim(line);
    return length;
  }
  size_t colon = line.find(':');
  if (colon == std::string_view::npos) return length;  // not a field; ignore
  t.head.headers.push_back(
      Header{std::string{trim(line.substr(0, colon))}, std::string{trim(line.substr(colon + 1))}});
  return length;
}

size_t onBody(char* data, size_t size, size_t count, void* user) {
  auto& t = *static_cast<TransferState*>(user);
  size_t length = size * count;
  if (t.cancelled.load(std::memory_order_relaxed)) return 0;
  if (!t.headDelivered && !deliverHead(t)) return 0;
  if (length == 0) return 0;
  if (t.holdRequested) {
    // The sink asked for no more: this chunk is not consumed, libcurl keeps it (and stops
    // reading the socket) until curl_easy_pause(CURLPAUSE_CONT) in resumeTransfer.
    t.curlPaused = true;
    return CURL_WRITEFUNC_PAUSE;
  }
  DataFlow flow = DataFlow::Continue;
  if (!callSink(t, [&] { flow = t.sink->onData(std::string_view{data, length}); })) return 0;
  // The sink may have cancelled from inside onData: stop reading at once.
  if (t.cancelled.load(std::memory_order_relaxed)) return 0;
  if (flow == DataFlow::Pause) t.holdRequested = true;
  return length;
}

Result<void> buildHeaderList(TransferState& t) {
  bool hasContentType = false;
  bool hasAccept = false;
  auto append = [&](const std::string& line) {
    curl_slist* next = curl_slist_append(t.headerList, line.c_str());
    if (next == nullptr) return false;
    t.headerList = next;
    return true;
  };
  for (const Header& h : t.request.headers) {
    if (h.name.empty() || h.name.find(':') != std::string::npos || hasControlBreak(h.name) ||
        hasControlBreak(h.value) || h.name.find_first_of(" \t") != std::string::npos) {
      // The name is safe to report (it is a token or we reject it); the value never is.
      return makeError(Errc::InvalidArgument, describe(t) +
                                                  ": header name or value is not allowed (" +
                                                  std::string{h.name.substr(0, 64)} + ")");
    }
    if (equalsIgnoreCase(h.name, "content-length") ||
        equalsIgnoreCase(h.name, "transfer-encoding") || equalsIgnoreCase(h.name, "expect")) {
      continue;
    }
    hasContentType = hasContentType || equalsIgnoreCase(h.name, "content-type");
    hasAccept = hasAccept || equalsIgnoreCase(h.name, "accept");
    // "Name;" is curl's spelling for a header with an empty value ("Name:" would remove it).
    std::string value =
        trim(h.value).empty() ? h.name + ";" : h.name + ": " + std::string{trim(h.value)};
    if (!append(value)) return makeError(Errc::Unavailable, describe(t) + ": out of memory");
  }
  // An empty "Name:" removes a header curl would add on its own.
  bool ok = append("Expect:");
  if (!hasContentType) ok = ok && append("Content-Type:");
  if (!hasAccept) ok = ok && append("Accept:");
  if (!ok) return makeError(Errc::Unavailable, describe(t) + ": out of memory");
  return {};
}

Result<void> setUpEasy(TransferState& t, const ClientOptions& options) {
  const Request& r = t.request;
  if (r.method.empty() || r.method.find_first_of(" \t\r\n") != std::string::npos) {
    return makeError(Errc::InvalidArgument, describe(t) + ": invalid method");
  }
  t.easy = curl_easy_init();
  if (t.easy == nullptr)
    return makeError(Errc::Unavailable, describe(t) + ": curl_easy_init failed");
  if (auto built = buildHeaderList(t); !built) return built;

  CURL* e = t.easy;
  CURLcode rc = CURLE_OK;
  auto set = [&](CURLoption option, auto value) {
    if (rc == CURLE_OK) rc = curl_easy_setopt(e, option, value);
  };
  set(CURLOPT_PRIVATE, static_cast<void*>(&t));
  set(CURLOPT_URL, r.url.c_str());
  set(CURLOPT_PROTOCOLS_STR, "http,https");
  set(CURLOPT_NOSIGNAL, 1L);
  set(CURLOPT_ERRORBUFFER, t.errorBuffer);
  set(CURLOPT_HEADERFUNCTION, &onHeaderLine);
  set(CURLOPT_HEADERDATA, static_cast<void*>(&t));
  set(CURLOPT_WRITEFUNCTION, &onBody);
  set(CURLOPT_WRITEDATA, static_cast<void*>(&t));
  set(CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);  // a proxy's CONNECT reply is not the response
  set(CURLOPT_TCP_KEEPALIVE, 1L);
  set(CURLOPT_HTTPHEADER, t.headerList);
  set(CURLOPT_CONNECTTIMEOUT_MS,
      static_cast<long>(r.connectTimeout.count() > 0 ? r.connectTimeout.count() : 0));
  set(CURLOPT_TIMEOUT_MS,
      static_cast<long>(r.totalTimeout.count() > 0 ? r.totalTimeout.count() : 0));
  if (r.idleTimeout.count() > 0) {
    set(CURLOPT_LOW_SPEED_LIMIT, 1L);
    set(CURLOPT_LOW_SPEED_TIME, static_cast<long>(r.idleTimeout.count()));
  }
  if (!options.caFile.empty()) set(CURLOPT_CAINFO, options.caFile.c_str());

  bool bodyMethod = r.method == "POST" || r.method == "PUT" || r.method == "PATCH";
  if (r.method == "GET" && r.body.empty()) {
    set(CURLOPT_HTTPGET, 1L);
  } else if (r.method == "HEAD") {
    set(CURLOPT_NOBODY, 1L);
  } else {
    if (bodyMethod || !r.body.empty()) {
      // POSTFIELDS does not copy: the body lives in this TransferState until the handle is freed.
      set(CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(r.body.size()));
      set(CURLOPT_POSTFIELDS, r.body.data());
    }
    if (r.method != "POST") set(CURLOPT_CUSTOMREQUEST, r.method.c_str());
  }
  if (rc != CURLE_OK) {
    return makeError(Errc::InvalidArgument, describe(t) + ": " + curl_easy_strerror(rc));
  }
  return {};
}

// Delivers onComplete once, frees the curl handle and drops the sink (which may hold the
// Transfer handle: that cycle ends here).
void finish(ClientCore& core, TransferState& t, Result<void> outcome) {
  if (t.finished) return;
  t.finished = true;
  if (t.easy != nullptr) {
    curl_multi_remove_handle(core.multi, t.easy);
    curl_easy_cleanup(t.easy);
    t.easy = nullptr;
  }
  if (t.headerList != nullptr) {
    curl_slist_free_all(t.headerList);
    t.headerList = nullptr;
  }
  std::shared_ptr<Sink> sink = std::move(t.sink);
  t.request.body = std::string{};
  try {
    sink->onComplete(std::move(outcome));
  } catch (...) {
    // Nothing is left to report it to.
  }
}

Result<void> outcomeOf(TransferState& t, CURLcode rc) {
  if (t.cancelled.load()) return abortedError(t);
  if (!t.callbackError.empty()) {
    return abortedError(t, "sink callback threw: " + t.callbackError, Errc::Unavailable);
  }
  if (rc == CURLE_OK) return {};
  std::string message = describe(t) + " failed: " + curl_easy_strerror(rc);
  if (t.errorBuffer[0] != '\0') {
    message += " (";
    message += t.errorBuffer;
    message += ")";
  }
  return makeError(isTimeout(t.easy, rc) ? Errc::Timeout : Errc::Unavailable, std::move(message));
}

// Ends a pause the sink asked for (worker thread). Unpausing may deliver the bytes libcurl held
// back at once, from inside curl_easy_pause (and the sink may pause again); a failure there (a
// sink that threw or cancelled) ends the transfer now. False when the transfer is finished.
bool resumeTransfer(ClientCore& core, TransferState& t) {
  t.holdRequested = false;
  if (!t.curlPaused) return true;
  t.curlPaused = false;
  CURLcode rc = curl_easy_pause(t.easy, CURLPAUSE_CONT);
  if (rc == CURLE_OK) return true;
  finish(core, t, outcomeOf(t, rc));
  return false;
}

void runWorker(ClientCore& core, const ClientOptions& options) {
  std::unordered_map<TransferState*, std::shared_ptr<TransferState>> active;
  for (;;) {
    std::vector<std::shared_ptr<TransferState>> starts;
    std::vector<std::shared_ptr<TransferState>> cancels;
    std::vector<std::shared_ptr<TransferState>> resumes;
    bool stopping = false;
    {
      std::lock_guard lock(core.mu);
      starts.swap(core.starts);
      cancels.swap(core.cancels);
      resumes.swap(core.resumes);
      stopping = core.stopping;
    }
    if (stopping) {
      for (auto& t : starts) finish(core, *t, abortedError(*t, "client shutting down"));
      break;
    }
    for (auto& t : starts) {
      if (t->cancelled.load()) {
        finish(core, *t, abortedError(*t));
        continue;
      }
      if (auto ready = setUpEasy(*t, options); !ready) {
        finish(core, *t, ready.error());
        continue;
      }
      if (CURLMcode mc = curl_multi_add_handle(core.multi, t->easy); mc != CURLM_OK) {
        finish(core, *t,
               makeError(Errc::Unavailable, describe(*t) + " failed: " + curl_multi_strerror(mc)));
        continue;
      }
      active.emplace(t.get(), t);
    }
    for (auto& t : cancels) {
      auto it = active.find(t.get());
      if (it == active.end()) continue;  // completed already, or never started (handled above)
      active.erase(it);
      finish(core, *t, abortedError(*t));
    }
    for (auto& t : resumes) {
      auto it = active.find(t.get());
      if (it == active.end()) continue;  // completed or cancelled already
      if (!resumeTransfer(core, *t)) active.erase(it);
    }

    int running = 0;
    curl_multi_perform(core.multi, &running);
    int queued = 0;
    while (CURLMsg* msg = curl_multi_info_read(core.multi, &queued)) {
      if (msg->msg != CURLMSG_DONE) continue;
      // msg dies with curl_multi_remove_handle: copy what is needed first.
      CURL* easy = msg->easy_handle;
      CURLcode rc = msg->data.result;
      void* raw = nullptr;
      curl_easy_getinfo(easy, CURLINFO_PRIVATE, &raw);
      auto it = active.find(static_cast<TransferState*>(raw));
      if (it == active.end()) continue;
      std::shared_ptr<TransferState> t = std::move(it->second);
      active.erase(it);
      Result<void> outcome = outcomeOf(*t, rc);
      if (outcome && !t->headDelivered && !deliverHead(*t)) outcome = outcomeOf(*t, rc);
      finish(core, *t, std::move(outcome));
    }
    // Sleeps until a socket is ready, curl's next timeout, or curl_multi_wakeup.
    curl_multi_poll(core.multi, nullptr, 0, 1000, nullptr);
  }
  for (auto& [raw, t] : active) finish(core, *t, abortedError(*t, "client shutting down"));
}

// The handle start() returns. It keeps the state (not the Client) alive.
class CurlTransfer final : public Transfer {
 public:
  explicit CurlTransfer(std::shared_ptr<TransferState> state) : state_(std::move(state)) {}

  void cancel() override {
    if (state_->cancelled.exchange(true)) return;
    ClientCore& core = *state_->core;
    std::lock_guard lock(core.mu);
    if (core.multi == nullptr || core.stopping) return;
    core.cancels.push_back(state_);
    curl_multi_wakeup(core.multi);
  }

  void resume() override {
    if (state_->cancelled.load()) return;
    ClientCore& core = *state_->core;
    std::lock_guard lock(core.mu);
    if (core.multi == nullptr || core.stopping) return;
    core.resumes.push_back(state_);
    curl_multi_wakeup(core.multi);
  }

 private:
  std::shared_ptr<TransferState> state_;
};

}  // namespace

Client::Client(ClientOptions options)
    : options_(std::move(options)), core_(std::make_shared<ClientCore>()) {
  initCurlOnce();
  core_->multi = curl_multi_init();
  if (core_->multi == nullptr) throw std::runtime_error("curl_multi_init failed");
  curl_multi_setopt(core_->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
                    static_cast<long>(options_.maxConnectionsPerHost));
  curl_multi_setopt(core_->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS,
                    static_cast<long>(options_.maxTotalConnections));
  curl_multi_setopt(core_->multi, CURLMOPT_MAXCONNECTS,
                    static_cast<long>(options_.maxTotalConnections));
  worker_ = std::thread([core = core_.get(), &options = options_] { runWorker(*core, options); });
}

Client::~Client() {
  {
    std::lock_guard lock(core_->mu);
    core_->stopping = true;
    curl_multi_wakeup(core_->multi);
  }
  worker_.join();
  std::lock_guard lock(core_->mu);
  curl_multi_cleanup(core_->multi);
  core_->multi = nullptr;
  core_->starts.clear();
  core_->cancels.clear();
  core_->resumes.clear();
}

std::shared_ptr<Transfer> Client::start(Request request, std::shared_ptr<Sink> sink) {
  auto state = std::make_shared<TransferState>();
  state->core = core_;
  state->request = std::move(request);
  state->sink = sink ? std::move(sink) : std::make_shared<NullSink>();
  auto handle = std::make_shared<CurlTransfer>(state);
  {
    std::lock_guard lock(core_->mu);
    if (!core_->stopping) {
      core_->starts.push_back(state);
      curl_multi_wakeup(core_->multi);
      return handle;
    }
  }
  // Only reachable from a sink callback while the Client is being destroyed.
  std::shared_ptr<Sink> s = std::move(state->sink);
  s->onComplete(abortedError(*state, "client shutting down"));
  return handle;
}

}  // namespace llmcache::upstream
