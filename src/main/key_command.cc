#include "main/key_command.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "key/cache_key.h"
#include "key/json_text.h"
#include "key/text_buffer.h"

namespace llmcache::cli {

namespace {

struct KeyArgs {
  std::string endpoint = "openai.chat";
  std::string normalize = "exact";
  std::string scope;
  std::string keyNamespace;
  bool jsonl = false;
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

// The fields of a --jsonl line that choose the key, read fast: the usual line is a JSON object
// whose members are strings or null, and of those only endpoint, normalize, scope, namespace
// and request are kept (a vector line also carries its expected canonical text, which is only
// validated, not built). Anything else (another shape, a field of the wrong type, an unknown
// endpoint, any doubt about the JSON) is left to keyOfVectorLine, which gives the error.
class VectorLine {
 public:
  // True when the line is such an object (options and body() then set).
  bool read(std::string_view line, const key::KeyOptions& defaults, key::KeyOptions& opts) {
    enum Field { Endpoint, Normalize, Scope, Namespace, Request, Other };
    static constexpr std::string_view kNames[] = {"endpoint", "normalize", "scope", "namespace",
                                                  "request"};
    std::string_view value[5];
    bool isString[5] = {};
    const char* p = line.data();
    const char* const end = p + line.size();
    char* text = body_.room(line.size() + 64);  // unescaped keys and values
    auto spaces = [&] {
      while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) ++p;
    };
    // A string whose opening quote is at p: viewed in the line when it has no escape, else
    // unescaped into the buffer.
    auto string = [&](std::string_view& out) {
      if (p == end || *p != '"') return false;
      ++p;
      const char* q = key::findStringSpecial(p, end);
      if (q < end && *q == '"') {
        out = std::string_view(p, static_cast<size_t>(q - p));
        p = q + 1;
        return true;
      }
      char* const start = text;
      std::memcpy(text, p, static_cast<size_t>(q - p));
      text += q - p;
      p = key::unescapeJsonString(q, end, text);
      if (!p) return false;
      out = std::string_view(start, static_cast<size_t>(text - start));
      return true;
    };
    spaces();
    if (p == end || *p != '{') return false;
    ++p;
    spaces();
    if (p < end && *p == '}') {
      ++p;
    } else {
      for (;;) {
        std::string_view k;
        if (!string(k)) return false;
        int field = Other;
        for (int i = 0; i < Other; ++i)
          if (k == kNames[i]) field = i;
        spaces();
        if (p == end || *p != ':') return false;
        ++p;
        spaces();
        if (p == end) return false;
        if (*p == '"') {
          if (field == Other) {
            p = key::skipJsonString(p + 1, end);
            if (!p) return false;
          } else {
            if (!string(value[field])) return false;
            isString[field] = true;
          }
        } else if (end - p >= 4 && std::memcmp(p, "null", 4) == 0) {
          p += 4;
          if (field != Other) isString[field] = false;
        } else {
          return false;
        }
        spaces();
        if (p == end) return false;
        if (*p == ',') {
          ++p;
          spaces();
          continue;
        }
        if (*p != '}') return false;
        ++p;
        break;
      }
    }
    spaces();
    if (p != end || !isString[Request]) return false;
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
  key::TextBuffer body_;
  std::string_view request_;
};

// stdin handed out line by line (without the '\n'), padded (key/json_text.h). A regular file
// is mapped (no copy through read()); the lines within kPadding bytes of its end, and a pipe's,
// are read into a buffer in 1 MB blocks.
class LineReader {
 public:
  LineReader() {
    struct stat st;
    if (fstat(STDIN_FILENO, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0) return;
    const off_t at = lseek(STDIN_FILENO, 0, SEEK_CUR);
    if (at < 0 || at >= st.st_size) return;
    void* m = mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_PRIVATE | MAP_POPULATE,
                   STDIN_FILENO, 0);
    if (m == MAP_FAILED) return;
    map_ = static_cast<const char*>(m);
    mapSize_ = static_cast<size_t>(st.st_size);
    mapPos_ = static_cast<size_t>(at);
  }
  ~LineReader() {
    if (map_) munmap(const_cast<char*>(map_), mapSize_);
  }
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;

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
  const char* map_ = nullptr;
  size_t mapSize_ = 0;
  size_t mapPos_ = 0;
  key::TextBuffer buf_;
  size_t pos_ = 0;
  bool eof_ = false;
};

int runKey(const KeyArgs& a) {
  key::KeyOptions opts;
  opts.endpoint = *key::parseEndpoint(a.endpoint);
  opts.mode = *key::parseNormalizeMode(a.normalize);
  opts.scope = a.scope;
  opts.keyNamespace = a.keyNamespace;
  key::KeyBuilder builder;
  key::TextBuffer out;
  if (!a.jsonl) {
    std::string body;
    char buf[65536];
    size_t got;
    while ((got = std::fread(buf, 1, sizeof buf, stdin)) > 0) body.append(buf, got);
    auto k = builder.key(body, opts);
    printResult(k, out);
    std::fwrite(out.data(), 1, out.size(), stdout);
    return k ? 0 : 2;
  }
  LineReader in;
  VectorLine row;
  key::KeyOptions lineOpts;
  std::string_view line;
  while (in.next(line)) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    if (row.read(line, opts, lineOpts))
      printResult(builder.key(row.body(), lineOpts), out);
    else
      printResult(keyOfVectorLine(line, opts), out);
    if (out.size() > (1 << 20)) {  // one write per megabyte of results
      std::fwrite(out.data(), 1, out.size(), stdout);
      out.clear();
    }
  }
  if (out.size()) std::fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}

}  // namespace

void addKeyCommand(CLI::App& app, int& exitCode) {
  auto args = std::make_shared<KeyArgs>();
  CLI::App* cmd =
      app.add_subcommand("key", "Print the cache key of a request read on stdin (key spec v1)");
  cmd->add_option("--endpoint", args->endpoint, "Endpoint of the request")
      ->check(CLI::IsMember(
          {"openai.chat", "openai.completions", "openai.embeddings", "anthropic.messages"}))
      ->capture_default_str();
  cmd->add_option("--normalize", args->normalize, "Text normalization")
      ->check(CLI::IsMember({"seed", "whitespace", "exact"}))
      ->capture_default_str();
  cmd->add_option("--scope", args->scope, "Tenant scope added to the key");
  cmd->add_option("--namespace", args->keyNamespace, "Namespace added to the key");
  cmd->add_flag("--jsonl", args->jsonl,
                "Read vector-shaped JSON lines ({endpoint,normalize,scope,namespace,request}) "
                "and write one result line per input line");
  cmd->callback([args, &exitCode] { exitCode = runKey(*args); });
}

}  // namespace llmcache::cli
