#include "main/key_command.h"

#include <cstdio>
#include <iostream>
#include <iterator>
#include <memory>
#include <string>

#include "key/cache_key.h"
#include "key/canonical.h"

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
void printResult(const Result<key::CacheKey>& k, std::string& out) {
  if (!k) {
    out += "{\"error\": ";
    key::writePythonString(k.error().message, out);
    out += "}\n";
    return;
  }
  out += "{\"cache_key\": ";
  key::writePythonString(k->cacheKey, out);
  out += ", \"request_hash\": ";
  key::writePythonString(k->requestHash, out);
  out += ", \"canonical\": ";
  key::writePythonString(k->canonical, out);
  out += "}\n";
}

Result<key::CacheKey> keyOfBody(std::string_view body, const key::KeyOptions& opts) {
  auto request = key::parseRequest(body);
  if (!request) return request.error();
  return key::computeKey(*request, opts);
}

// A --jsonl line: {"endpoint","normalize","scope","namespace","request"} with the body as a
// JSON string. Missing fields take the command line's values.
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

int runKey(const KeyArgs& a) {
  key::KeyOptions opts;
  opts.endpoint = *key::parseEndpoint(a.endpoint);
  opts.mode = *key::parseNormalizeMode(a.normalize);
  opts.scope = a.scope;
  opts.keyNamespace = a.keyNamespace;
  std::ios::sync_with_stdio(false);
  std::string out;
  if (!a.jsonl) {
    std::string body((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    auto k = keyOfBody(body, opts);
    printResult(k, out);
    std::fwrite(out.data(), 1, out.size(), stdout);
    return k ? 0 : 2;
  }
  std::string line;
  while (std::getline(std::cin, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    printResult(keyOfVectorLine(line, opts), out);
    if (out.size() > (1 << 20)) {
      std::fwrite(out.data(), 1, out.size(), stdout);
      out.clear();
    }
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
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
