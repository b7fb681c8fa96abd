#include "main/key_command.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "key/cache_key.h"
#include "key/flat_json.h"
#include "key/json_text.h"
#include "key/md5_lanes.h"
#include "key/text_buffer.h"

namespace llmcache::cli {

namespace {

struct KeyArgs {
  std::string endpoint = "openai.chat";
  std::string normalize = "exact";
  std::string scope;
  std::string keyNamespace;
  bool jsonl = false;
  unsigned threads = 0;  // --jsonl workers; 0 = one per core (at most 8)
};

// One output line, in the same shape and bytes as cache_key.py's json.dumps(...).
void printKey(std::string_view cacheKey, std::string_view requestHash, std::string_view canonical,
              key::TextBuffer& out) {
  out.literal("{\"cache_key\": ");
  key::appendPythonString(cacheKey, out);
  out.literal(", \"request_hash\": ");
  key::appendPythonString(requestHash, out);
  out.literal(", \"canonical\": ");
  key::appendPaddedPythonString(canonical, out);
  out.literal("}\n");
}

void printError(const Error& e, key::TextBuffer& out) {
  out.literal("{\"error\": ");
  key::appendPythonString(e.message, out);
  out.literal("}\n");
}

void printResult(const Result<key::CacheKey>& k, key::TextBuffer& out) {
  if (!k) return printError(k.error(), out);
  key::TextBuffer canonical;  // a padded copy (the general path's: rare)
  canonical.append(k->canonical);
  canonical.room(key::kPadding);
  printKey(k->cacheKey, k->requestHash, canonical.view(), out);
}

void printResult(const Result<key::KeyView>& k, key::TextBuffer& out) {
  if (k)
    printKey(k->cacheKey, k->requestHash, k->canonical, out);
  else
    printError(k.error(), out);
}

Result<key::CacheKey> keyOfBody(std::string_view body, const key::KeyOptions& opts) {
  auto request = key::parseRequest(body);
  if (!request) return request.error();
  return key::computeKey(*request, opts);
}

// A --jsonl line: {"endpoint","normalize","scope","namespace","request"} with the body as a
// JSON string. Missing fields take the command line's values. The general path, which also
// words every error; VectorLine below takes the usual lines faster.
Result<key::CacheKey> keyOfVectorLine(std::string_view line, const key::KeyOptions& defaults) {
  auto row = parseJson(line);
  if (!row) return row.error();
  if (!row->isObject()) return makeError(Errc::InvalidArgument, "each line must be a JSON object");
  key::KeyOptions opts = defaults;
  if (const Json* e = row->find("endpoint"); e && !e->isNull()) {
    auto ep = e->isString() ? key::parseEndpoint(e->text()) : std::nullopt;
    if (!ep) return makeError(Errc::InvalidArgument, "unknown endpoint " + toJson(*e));
    opts.endpoint = *ep;
  }
  if (const Json* m = row->find("normalize"); m && !m->isNull()) {
    auto mode = m->isString() ? key::parseNormalizeMode(m->text()) : std::nullopt;
    if (!mode) return makeError(Errc::InvalidArgument, "unknown normalization " + toJson(*m));
    opts.mode = *mode;
  }
  for (auto [field, target] :
       {std::pair{"scope", &opts.scope}, {"namespace", &opts.keyNamespace}}) {
    if (const Json* v = row->find(field); v && !v->isNull()) {
      if (!v->isString())
        return makeError(Errc::InvalidArgument, std::string("'") + field + "' must be a string");
      *target = v->text();
    }
  }
  const Json* request = row->find("request");
  if (!request || !request->isString())
    return makeError(Errc::InvalidArgument, "'request' must be the request body as a JSON string");
  return keyOfBody(request->text(), opts);
}

// The fields of a --jsonl line that choose the key, read fast: the line parsed by the key's
// own flat parser (key/flat_json.h), of which only endpoint, normalize, scope, namespace and
// request are kept (a vector line also carries its expected canonical text, which is only
// parsed). Anything else (not an object, a kept field that is neither a string nor null, an
// unknown endpoint, any doubt about the JSON) is left to keyOfVectorLine, which gives the error.
class VectorLine {
 public:
  // True when the line is such an object (options and body() then set). The line is padded.
  bool read(std::string_view line, const key::KeyOptions& defaults, key::KeyOptions& opts) {
    using Kind = key::FlatJson::Kind;
    enum Field { Endpoint, Normalize, Scope, Namespace, Request, kFields };
    static constexpr std::string_view kNames[] = {"endpoint", "normalize", "scope", "namespace",
                                                  "request"};
    if (!doc_.parse(line, 4) || doc_[0].kind != Kind::Object) return false;
    std::string_view value[kFields];
    bool isString[kFields] = {};
    for (uint32_t c = 1; c < doc_[0].end; c = doc_[c].end) {  // the last of a repeated key wins
      const key::FlatJson::Node& n = doc_[c];
      for (int i = 0; i < kFields; ++i) {
        if (n.key != kNames[i]) continue;
        if (n.kind != Kind::String && n.kind != Kind::Null) return false;
        isString[i] = n.kind == Kind::String;
        value[i] = n.text;
      }
    }
    if (!isString[Request]) return false;
    opts.endpoint = defaults.endpoint;
    if (isString[Endpoint]) {
      auto e = key::parseEndpoint(value[Endpoint]);
      if (!e) return false;
      opts.endpoint = *e;
    }
    opts.mode = defaults.mode;
    if (isString[Normalize]) {
      auto m = key::parseNormalizeMode(value[Normalize]);
      if (!m) return false;
      opts.mode = *m;
    }
    if (isString[Scope])
      opts.scope.assign(value[Scope]);
    else
      opts.scope.assign(defaults.scope);
    if (isString[Namespace])
      opts.keyNamespace.assign(value[Namespace]);
    else
      opts.keyNamespace.assign(defaults.keyNamespace);
    request_ = value[Request];
    return true;
  }
  std::string_view body() const { return request_; }

 private:
  key::FlatJson doc_;
  std::string_view request_;
};

// stdin mapped when it is a regular file (no copy through read()): data() is null otherwise.
// The mapping runs from the file's start; pos() is where stdin's offset was.
class MappedStdin {
 public:
  MappedStdin() {
    struct stat st;
    if (fstat(STDIN_FILENO, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0) return;
    const off_t at = lseek(STDIN_FILENO, 0, SEEK_CUR);
    if (at < 0 || at >= st.st_size) return;
    void* m = mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_PRIVATE | MAP_POPULATE,
                   STDIN_FILENO, 0);
    if (m == MAP_FAILED) return;
    map_ = static_cast<const char*>(m);
    size_ = static_cast<size_t>(st.st_size);
    pos_ = static_cast<size_t>(at);
  }
  ~MappedStdin() {
    if (map_) munmap(const_cast<char*>(map_), size_);
  }
  MappedStdin(const MappedStdin&) = delete;
  MappedStdin& operator=(const MappedStdin&) = delete;
  const char* data() const { return map_; }
  size_t size() const { return size_; }
  size_t pos() const { return pos_; }

 private:
  const char* map_ = nullptr;
  size_t size_ = 0;
  size_t pos_ = 0;
};

// stdin handed out line by line (without the '\n'), padded (key/json_text.h). A regular file
// is mapped; the lines within kPadding bytes of its end, and a pipe's, are read into a buffer in
// 1 MB blocks.
class LineReader {
 public:
  LineReader() : map_(mapped_.data()), mapSize_(mapped_.size()), mapPos_(mapped_.pos()) {}

  bool next(std::string_view& line) {
    if (map_) {
      if (mapPos_ == mapSize_) return false;
      const char* const begin = map_ + mapPos_;
      const void* nl = std::memchr(begin, '\n', mapSize_ - mapPos_);
      const size_t end = nl ? static_cast<size_t>(static_cast<const char*>(nl) - map_) : mapSize_;
      line = std::string_view(begin, end - mapPos_);
      mapPos_ = nl ? end + 1 : end;
      if (end + key::kPadding > mapSize_) {  // too near the end of the mapping: a padded copy
        buf_.clear();
        buf_.append(line);
        buf_.room(key::kPadding);
        line = buf_.view();
      }
      return true;
    }
    for (;;) {
      const char* const base = buf_.data();  // null before the first read
      const void* nl =
          pos_ < buf_.size() ? std::memchr(base + pos_, '\n', buf_.size() - pos_) : nullptr;
      if (nl) {
        const size_t end = static_cast<size_t>(static_cast<const char*>(nl) - base);
        line = std::string_view(base + pos_, end - pos_);
        pos_ = end + 1;
        return true;
      }
      if (eof_) {
        if (pos_ == buf_.size()) return false;
        line = std::string_view(base + pos_, buf_.size() - pos_);
        pos_ = buf_.size();
        return true;
      }
      // Keep the partial line, then read a block after it.
      const size_t keep = buf_.size() - pos_;
      if (keep) std::memmove(buf_.data(), base + pos_, keep);
      buf_.resize(keep);
      pos_ = 0;
      const size_t got = std::fread(buf_.room(kBlock + key::kPadding), 1, kBlock, stdin);
      buf_.commit(got);  // and kPadding bytes of room stay after it: the lines are padded
      if (got == 0) eof_ = true;
    }
  }

 private:
  static constexpr size_t kBlock = 1 << 20;
  MappedStdin mapped_;
  const char* map_ = nullptr;
  size_t mapSize_ = 0;
  size_t mapPos_ = 0;
  key::TextBuffer buf_;
  size_t pos_ = 0;
  bool eof_ = false;
};

// The result lines of --jsonl input lines, appended to out. Per thread: the builder and the
// line reader's buffers are reused from line to line. The usual line's MD5 waits: its result
// line is written with room for the hash, its canonical text kept, and every kBatch lines (and
// at flush()) the waiting texts are hashed side by side (key/md5_lanes.h) and their hashes
// written into that room. So out is complete only after flush().
struct LineKeyer {
  key::KeyBuilder builder;
  VectorLine row;
  key::KeyOptions lineOpts;

  void run(std::string_view line, const key::KeyOptions& opts, key::TextBuffer& out) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) return;
    if (!row.read(line, opts, lineOpts)) return printResult(keyOfVectorLine(line, opts), out);
    auto k = builder.keyWithoutHash(row.body(), lineOpts);
    if (!k) return printError(k.error(), out);
    // printKey's line, with the hash's room: "<cacheKey up to its _>" + 16, request_hash 32.
    Waiting w;
    out.literal("{\"cache_key\": ");
    key::appendPythonString(k->cacheKey, out);
    out.resize(out.size() - 1);  // its closing quote
    w.keyAt = out.size();
    out.room(16);
    out.commit(16);
    out.literal("\", \"request_hash\": \"");
    w.hashAt = out.size();
    out.room(32);
    out.commit(32);
    out.literal("\", \"canonical\": ");
    key::appendPaddedPythonString(k->canonical, out);
    out.literal("}\n");
    w.textAt = texts_.size();
    w.textSize = k->canonical.size();
    texts_.append(k->canonical);
    waiting_.push_back(w);
    if (waiting_.size() == kBatch) flush(out);
  }

  // Hashes the waiting lines' texts and writes their hashes in out (the buffer run() wrote
  // their lines in).
  void flush(key::TextBuffer& out) {
    if (waiting_.empty()) return;
    std::string_view views[kBatch];
    char* hex[kBatch];
    for (size_t i = 0; i < waiting_.size(); ++i) {
      views[i] = std::string_view(texts_.data() + waiting_[i].textAt, waiting_[i].textSize);
      hex[i] = hashes_[i];
    }
    key::md5HexMany(views, hex, waiting_.size());
    for (size_t i = 0; i < waiting_.size(); ++i) {
      std::memcpy(out.data() + waiting_[i].keyAt, hashes_[i], 16);
      std::memcpy(out.data() + waiting_[i].hashAt, hashes_[i], 32);
    }
    waiting_.clear();
    texts_.clear();
  }

 private:
  static constexpr size_t kBatch = 128;  // the lanes idle less at a batch's end than with 64
  struct Waiting {
    size_t keyAt, hashAt;     // in out
    size_t textAt, textSize;  // in texts_
  };
  std::vector<Waiting> waiting_;
  key::TextBuffer texts_;
  char hashes_[kBatch][32];
};

// --jsonl on several threads: the input is cut into blocks of whole lines (copied, padded), each
// block keyed by whichever thread takes it (threads - 1 workers, and the reading thread whenever
// it would otherwise wait), and the blocks' results written in input order. At most 4 blocks
// per thread are in flight.
class ParallelKeyer {
 public:
  ParallelKeyer(const key::KeyOptions& opts, unsigned threads) : opts_(opts) {
    for (unsigned i = 1; i < threads; ++i) workers_.emplace_back([this] { work(); });
    maxInFlight_ = 4 * threads;
  }
  ~ParallelKeyer() { finish(); }
  ParallelKeyer(const ParallelKeyer&) = delete;
  ParallelKeyer& operator=(const ParallelKeyer&) = delete;

  // Reads stdin to its end in blocks of whole lines, each handed to the workers as it is read.
  void readAll() {
    if (input_.data()) return mappedAll();
    key::TextBuffer carry;  // the start of a line that the last read cut
    bool eof = false;
    while (!eof) {
      current_ = newBlock();
      key::TextBuffer& in = current_->in;
      in.append(carry.view());
      carry.clear();
      // Read up to a block; then on until the block holds a whole line (or the input ends).
      const char* nl = nullptr;
      for (;;) {
        if (in.size() < kBlockBytes || !nl) {
          const size_t got = std::fread(in.room(kBlockBytes), 1, kBlockBytes, stdin);
          in.commit(got);
          if (got == 0) {
            eof = true;
            break;
          }
        }
        nl = static_cast<const char*>(memrchr(in.data(), '\n', in.size()));
        if (in.size() >= kBlockBytes && nl) break;
      }
      if (!eof) {  // the bytes after the last newline start the next block
        const size_t keep = static_cast<size_t>(nl + 1 - in.data());
        carry.append(in.data() + keep, in.size() - keep);
        in.resize(keep);
      }
      if (in.size())
        submit();
      else
        current_.reset();
    }
  }

  // A mapped file: its blocks are views of the mapping (no copy), but for the last block, whose
  // lines end within kPadding bytes of the mapping's end: that one is copied and padded.
  void mappedAll() {
    const char* const base = input_.data();
    size_t at = input_.pos();
    const size_t size = input_.size();
    while (at < size) {
      size_t end = std::min(size, at + kBlockBytes);
      if (end < size) {  // on to the end of that line
        const void* nl = std::memchr(base + end, '\n', size - end);
        end = nl ? static_cast<size_t>(static_cast<const char*>(nl) - base) + 1 : size;
      }
      current_ = newBlock();
      if (end + key::kPadding <= size) {
        current_->view = std::string_view(base + at, end - at);
      } else {
        current_->in.append(base + at, end - at);
      }
      submit();
      at = end;
    }
  }

  // Submits what is left, then writes every result (in order) and stops the workers.
  void finish() {
    if (current_) submit();
    {
      std::unique_lock lock(mu_);
      while (!order_.empty()) writeFront(lock);
      stop_ = true;
    }
    ready_.notify_all();
    for (std::thread& t : workers_)
      if (t.joinable()) t.join();
  }

 private:
  static constexpr size_t kBlockBytes = 256 << 10;
  struct Block {
    key::TextBuffer in;     // whole lines (the input's last maybe without its '\n'), then padding
    std::string_view view;  // or these, in the mapped input (padded: more of it follows)
    key::TextBuffer out;    // their result lines
    bool taken = false;
    bool done = false;
  };

  std::shared_ptr<Block> newBlock() {
    std::unique_lock lock(mu_);
    if (spare_.empty()) return std::make_shared<Block>();
    std::shared_ptr<Block> b = std::move(spare_.back());
    spare_.pop_back();
    return b;
  }

  void submit() {
    if (current_->view.empty()) {
      current_->in.room(key::kPadding);
      current_->view = current_->in.view();
    }
    std::unique_lock lock(mu_);
    order_.push_back(std::move(current_));
    current_.reset();
    ++untaken_;
    ready_.notify_one();
    // More waiting than the workers can be taking: the reading thread keys one too.
    while (untaken_ > workers_.size()) keyOne(lock);
    while (order_.size() >= maxInFlight_) writeFront(lock);
  }

  // Writes the oldest block's results (outside the lock), keying blocks while it is not done.
  void writeFront(std::unique_lock<std::mutex>& lock) {
    std::shared_ptr<Block> front = order_.front();
    while (!front->done && untaken_ > 0) keyOne(lock);
    done_.wait(lock, [&] { return front->done; });
    order_.pop_front();
    lock.unlock();
    std::fwrite(front->out.data(), 1, front->out.size(), stdout);
    lock.lock();
    // Its buffers serve a later block (no new allocation, growth or page faults per block).
    front->in.clear();
    front->view = {};
    front->out.clear();
    front->taken = front->done = false;
    spare_.push_back(std::move(front));
  }

  // Takes the oldest untaken block (there is one) and keys it, outside the lock.
  void keyOne(std::unique_lock<std::mutex>& lock) {
    std::shared_ptr<Block> block;
    for (const auto& b : order_)
      if (!b->taken) {
        block = b;
        break;
      }
    block->taken = true;
    --untaken_;
    lock.unlock();
    thread_local LineKeyer keyer;  // per thread: its builder's buffers are reused line to line
    block->out.room(block->view.size() + block->view.size() / 4);  // usually enough: no growth
    const char* p = block->view.data();
    const char* const end = p + block->view.size();
    while (p < end) {
      const char* nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<size_t>(end - p)));
      if (!nl) nl = end;  // the input's last line, without its newline
      keyer.run(std::string_view(p, static_cast<size_t>(nl - p)), opts_, block->out);
      p = nl + 1;
    }
    keyer.flush(block->out);
    lock.lock();
    block->done = true;
    done_.notify_all();
  }

  void work() {
    std::unique_lock lock(mu_);
    for (;;) {
      ready_.wait(lock, [&] { return stop_ || untaken_ > 0; });
      if (untaken_ == 0) return;
      keyOne(lock);
    }
  }

  const key::KeyOptions& opts_;
  MappedStdin input_;
  std::vector<std::thread> workers_;
  size_t maxInFlight_ = 0;
  std::shared_ptr<Block> current_;
  std::mutex mu_;
  std::condition_variable ready_, done_;
  std::deque<std::shared_ptr<Block>> order_;   // submitted, not yet written, in input order
  std::vector<std::shared_ptr<Block>> spare_;  // written, to be reused
  size_t untaken_ = 0;
  bool stop_ = false;
};

int runKey(const KeyArgs& a) {
  key::KeyOptions opts;
  opts.endpoint = *key::parseEndpoint(a.endpoint);
  opts.mode = *key::parseNormalizeMode(a.normalize);
  opts.scope = a.scope;
  opts.keyNamespace = a.keyNamespace;
  key::TextBuffer out;
  if (!a.jsonl) {
    key::KeyBuilder builder;
    std::string body;
    char buf[65536];
    size_t got;
    while ((got = std::fread(buf, 1, sizeof buf, stdin)) > 0) body.append(buf, got);
    auto k = builder.key(body, opts);
    printResult(k, out);
    std::fwrite(out.data(), 1, out.size(), stdout);
    return k ? 0 : 2;
  }
  std::string_view line;
  const unsigned threads =
      a.threads ? a.threads : std::min(8u, std::thread::hardware_concurrency());
  if (threads > 1) {
    ParallelKeyer keyer(opts, threads);
    keyer.readAll();
    keyer.finish();
    return 0;
  }
  LineReader in;
  LineKeyer keyer;
  while (in.next(line)) {
    keyer.run(line, opts, out);
    if (out.size() > (1 << 20)) {  // one write per megabyte of results
      keyer.flush(out);
      std::fwrite(out.data(), 1, out.size(), stdout);
      out.clear();
    }
  }
  keyer.flush(out);
  if (out.size()) std::fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}

}  // namespace

void addKeyCommand(CLI::App& app, int& exitCode) {
  auto args = std::make_shared<KeyArgs>();
  CLI::App* cmd =
      app.add_subcommand("key", "Print the cache key of a request read on stdin (key spec v1)");
  cmd->add_option("--endpoint", args->endpoint, "Endpoint of the request")
      ->check(CLI::IsMember({"openai.chat", "openai.completions", "openai.embeddings",
                             "anthropic.messages", "openai.responses"}))
      ->capture_default_str();
  cmd->add_option("--normalize", args->normalize, "Text normalization")
      ->check(CLI::IsMember({"seed", "whitespace", "exact"}))
      ->capture_default_str();
  cmd->add_option("--scope", args->scope, "Tenant scope added to the key");
  cmd->add_option("--namespace", args->keyNamespace, "Namespace added to the key");
  cmd->add_flag("--jsonl", args->jsonl,
                "Read vector-shaped JSON lines ({endpoint,normalize,scope,namespace,request}) "
                "and write one result line per input line");
  cmd->add_option("--threads", args->threads,
                  "With --jsonl: worker threads (0 = one per core, at most 8; 1 = none)")
      ->capture_default_str();
  cmd->callback([args, &exitCode] { exitCode = runKey(*args); });
}

}  // namespace llmcache::cli
