#include "api/sse_parser.h"

namespace llmcache::api {
namespace {
constexpr std::string_view kBom = "\xEF\xBB\xBF";
}

std::vector<SseEvent> SseParser::feed(std::string_view bytes) {
  std::vector<SseEvent> out;
  // The BOM may itself be split across chunks: hold its prefix in line_ until decided.
  while (!bomDone_ && !bytes.empty()) {
    if (bytes.front() == kBom[bomChecked_]) {
      bytes.remove_prefix(1);
      if (++bomChecked_ == kBom.size()) bomDone_ = true;
      continue;
    }
    // Not a BOM after all: the bytes matched so far are ordinary content.
    line_.assign(kBom.substr(0, bomChecked_));
    bomDone_ = true;
  }
  while (!bytes.empty()) {
    if (skipLf_) {
      skipLf_ = false;
      if (bytes.front() == '\n') {
        bytes.remove_prefix(1);
        continue;
      }
    }
    const size_t eol = bytes.find_first_of("\r\n");
    if (eol == std::string_view::npos) {
      line_.append(bytes);
      break;
    }
    std::string_view line = bytes.substr(0, eol);
    if (!line_.empty()) {
      line_.append(line);
      line = line_;
    }
    skipLf_ = bytes[eol] == '\r';
    processLine(line, out);
    line_.clear();
    bytes.remove_prefix(eol + 1);
  }
  return out;
}

bool SseParser::idle() const {
  return line_.empty() && data_.empty() && event_.empty() && (bomDone_ || bomChecked_ == 0);
}

void SseParser::processLine(std::string_view line, std::vector<SseEvent>& out) {
  if (line.empty()) {
    if (!data_.empty()) {
      data_.pop_back();  // the '\n' after the last data line
      out.push_back(SseEvent{std::move(event_), std::move(data_)});
    }
    event_.clear();
    data_.clear();
    return;
  }
  if (line.front() == ':') return;  // comment
  std::string_view field = line;
  std::string_view value;
  if (const size_t colon = line.find(':'); colon != std::string_view::npos) {
    field = line.substr(0, colon);
    value = line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  }
  if (field == "event") {
    event_.assign(value);
  } else if (field == "data") {
    data_.append(value);
    data_.push_back('\n');
  }
  // "id", "retry" and unknown fields: nothing the gateway needs.
}

std::string formatSse(const SseEvent& event) {
  std::string out;
  out.reserve(event.event.size() + event.data.size() + 16);
  if (!event.event.empty()) {
    out.append("event: ").append(event.event).push_back('\n');
  }
  std::string_view data = event.data;
  while (true) {
    const size_t nl = data.find('\n');
    out.append("data: ").append(data.substr(0, nl)).push_back('\n');
    if (nl == std::string_view::npos) break;
    data.remove_prefix(nl + 1);
  }
  out.push_back('\n');
  return out;
}

std::string formatSse(const std::vector<SseEvent>& events) {
  std::string out;
  for (const auto& e : events) out += formatSse(e);
  return out;
}

}  // namespace llmcache::api
