#include "trace/trace.h"

#include <boost/json.hpp>
#include <cinttypes>
#include <cstdio>

namespace llmcache::trace {

namespace {

void appendEscaped(std::string& out, std::string_view s) {
  out += boost::json::serialize(boost::json::string_view(s.data(), s.size()));
}

std::string number(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

}  // namespace

std::string eventLine(const TraceEvent& e) {
  std::string out;
  out.reserve(160 + e.key.size());
  out += "{\"t\":" + std::to_string(e.timeMs) + ",\"key\":";
  appendEscaped(out, e.key);
  out += ",\"size\":" + std::to_string(e.bytes) + ",\"cost\":" + number(e.cost) +
         ",\"latency_ms\":" + number(e.latencyMs);
  if (!e.tenant.empty()) {
    out += ",\"tenant\":";
    appendEscaped(out, e.tenant);
  }
  if (!e.model.empty()) {
    out += ",\"model\":";
    appendEscaped(out, e.model);
  }
  out += '}';
  return out;
}

std::string headerLine(const TraceHeader& h) {
  std::string out =
      "{\"format\":\"llmcache-trace\",\"version\":" + std::to_string(kTraceFormatVersion) +
      ",\"source\":";
  appendEscaped(out, h.source);
  out += ",\"params\":" + (h.params.empty() ? std::string("{}") : h.params) + "}";
  return out;
}

std::string hashTenant(std::string_view tenant) {
  if (tenant.empty()) return {};
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : tenant) {
    h ^= c;
    h *= 1099511628211ull;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016" PRIx64, h);
  return buf;
}

Result<void> readTrace(std::istream& in, const std::function<void(TraceEvent&&)>& onEvent) {
  std::string line;
  size_t lineNo = 0;
  auto bad = [&](const std::string& what) {
    return makeError(Errc::InvalidArgument, "trace line " + std::to_string(lineNo) + ": " + what);
  };
  while (std::getline(in, line)) {
    ++lineNo;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    boost::system::error_code ec;
    boost::json::value v = boost::json::parse(line, ec);
    if (ec) return bad("not JSON (" + ec.message() + ")");
    auto* o = v.if_object();
    if (!o) return bad("not a JSON object");
    if (o->contains("format")) {
      const auto* ver = o->if_contains("version");
      if (!ver || !ver->is_int64() || ver->as_int64() != kTraceFormatVersion)
        return bad("trace format version " +
                   (ver ? boost::json::serialize(*ver) : std::string("missing")) +
                   " (this build reads version 1)");
      continue;
    }
    TraceEvent e;
    auto num = [&](const char* name, bool required, double& out) -> bool {
      const auto* f = o->if_contains(name);
      if (!f) return !required;
      if (f->is_int64())
        out = static_cast<double>(f->as_int64());
      else if (f->is_uint64())
        out = static_cast<double>(f->as_uint64());
      else if (f->is_double())
        out = f->as_double();
      else
        return false;
      return true;
    };
    const auto* t = o->if_contains("t");
    if (!t || !t->is_int64())
      return bad("\"t\" (Unix ms, an integer) is missing or not an integer");
    e.timeMs = t->as_int64();
    const auto* k = o->if_contains("key");
    if (!k || !k->is_string() || k->as_string().empty())
      return bad("\"key\" is missing or not a non-empty string");
    e.key = std::string(k->as_string());
    const auto* s = o->if_contains("size");
    if (!s || !(s->is_int64() || s->is_uint64()) || (s->is_int64() && s->as_int64() < 0))
      return bad("\"size\" (bytes) is missing or not a non-negative integer");
    e.bytes = s->is_uint64() ? s->as_uint64() : static_cast<uint64_t>(s->as_int64());
    if (!num("cost", false, e.cost) || e.cost < 0)
      return bad("\"cost\" is not a non-negative number");
    if (!num("latency_ms", false, e.latencyMs) || e.latencyMs < 0)
      return bad("\"latency_ms\" is not a non-negative number");
    if (const auto* tn = o->if_contains("tenant")) {
      if (!tn->is_string()) return bad("\"tenant\" is not a string");
      e.tenant = std::string(tn->as_string());
    }
    if (const auto* m = o->if_contains("model")) {
      if (!m->is_string()) return bad("\"model\" is not a string");
      e.model = std::string(m->as_string());
    }
    onEvent(std::move(e));
  }
  if (in.bad()) return makeError(Errc::Io, "trace: read error");
  return {};
}

Result<std::vector<TraceEvent>> readTrace(std::istream& in) {
  std::vector<TraceEvent> events;
  auto r = readTrace(in, [&](TraceEvent&& e) { events.push_back(std::move(e)); });
  if (!r) return r.error();
  return events;
}

}  // namespace llmcache::trace
