#include "analytics/prompt.h"

#include <array>
#include <bit>
#include <cctype>
#include <vector>

namespace llmcache::analytics {

namespace {

// Cuts s to at most max bytes without splitting a UTF-8 sequence.
std::string_view utf8Prefix(std::string_view s, size_t max) {
  if (s.size() <= max) return s;
  size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return s.substr(0, n);
}

void appendCapped(std::string& out, std::string_view piece) {
  if (out.size() >= kMaxPromptText) return;
  if (!out.empty()) out.push_back('\n');
  out.append(utf8Prefix(piece, kMaxPromptText > out.size() ? kMaxPromptText - out.size() : 0));
}

// A message's content: a string, or the text parts of an array (OpenAI and Anthropic shapes).
std::string contentText(const Json& content) {
  std::string out;
  if (content.isString()) {
    appendCapped(out, content.text());
  } else if (content.isArray()) {
    for (const Json& part : content.items()) {
      if (part.isString()) appendCapped(out, part.text());
      else if (part.isObject())
        if (auto t = part.getString("text")) appendCapped(out, *t);
    }
  }
  return out;
}

bool isAlnum(unsigned char c) { return std::isalnum(c) != 0 || c >= 0x80; }

// " word word ... " of the lowercased text (words are runs of letters, digits and UTF-8 bytes),
// so that a phrase is matched at word boundaries by finding " phrase ".
std::string wordString(std::string_view text) {
  std::string out = " ";
  bool inWord = false;
  for (unsigned char c : text) {
    if (isAlnum(c)) {
      out.push_back(static_cast<char>(std::tolower(c)));
      inWord = true;
    } else if (inWord) {
      out.push_back(' ');
      inWord = false;
    }
  }
  if (inWord) out.push_back(' ');
  return out;
}

// words is " a b c ": an occurrence with a space on both sides is a whole-word match.
bool hasAny(const std::string& words, std::initializer_list<std::string_view> phrases) {
  const std::string_view w(words);
  for (auto p : phrases) {
    for (size_t at = w.find(p); at != std::string_view::npos; at = w.find(p, at + 1))
      if (at > 0 && w[at - 1] == ' ' && at + p.size() < w.size() && w[at + p.size()] == ' ') return true;
  }
  return false;
}

bool startsWithAny(const std::string& words, std::initializer_list<std::string_view> phrases) {
  for (auto p : phrases)
    if (words.size() > p.size() + 1 && words.compare(1, p.size(), p) == 0 && words[p.size() + 1] == ' ') return true;
  return false;
}

bool rawHasAny(std::string_view lower, std::initializer_list<std::string_view> needles) {
  for (auto n : needles)
    if (lower.find(n) != std::string_view::npos) return true;
  return false;
}

// digits, optional spaces, an arithmetic operator, optional spaces, digits: "12 * 7", "3^2".
bool hasArithmetic(std::string_view s) {
  for (size_t i = 0; i < s.size(); ++i) {
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) continue;
    size_t j = i;
    while (j < s.size() && (std::isdigit(static_cast<unsigned char>(s[j])) || s[j] == '.')) ++j;
    while (j < s.size() && s[j] == ' ') ++j;
    if (j >= s.size() || std::string_view("+-*/^=").find(s[j]) == std::string_view::npos) {
      i = j;
      continue;
    }
    ++j;
    while (j < s.size() && s[j] == ' ') ++j;
    if (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j]))) return true;
    i = j;
  }
  return false;
}

size_t wordCount(const std::string& words) {
  size_t n = 0;
  for (size_t i = 1; i < words.size(); ++i) n += words[i] == ' ';
  return n;
}

uint64_t fnv1a(std::string_view s) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

uint64_t mix(uint64_t z) {  // SplitMix64's finalizer: spreads FNV's weak high bits
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

}  // namespace

std::string promptText(const Json& body) {
  if (!body.isObject()) return {};
  if (const Json* messages = body.find("messages"); messages && messages->isArray()) {
    const auto& items = messages->items();
    for (auto it = items.rbegin(); it != items.rend(); ++it) {
      if (!it->isObject() || it->getString("role").value_or("") != "user") continue;
      if (const Json* content = it->find("content")) return contentText(*content);
      return {};
    }
    return {};
  }
  if (const Json* prompt = body.find("prompt")) {
    if (prompt->isString()) return std::string(utf8Prefix(prompt->text(), kMaxPromptText));
    if (prompt->isArray() && !prompt->items().empty() && prompt->items()[0].isString())
      return std::string(utf8Prefix(prompt->items()[0].text(), kMaxPromptText));
    return {};
  }
  if (const Json* input = body.find("input")) return contentText(*input);
  return {};
}

std::string classifyPrompt(std::string_view text) {
  text = utf8Prefix(text, 4096);
  std::string lower(text);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const std::string w = wordString(text);
  if (w.size() <= 1) return "other";

  if (rawHasAny(lower, {"```", "#include", "();", ") {", "){", "=>", "c++", "c#", "stack trace", "traceback"}) ||
      hasAny(w, {"code", "function", "bug", "debug", "compile", "compiler", "python", "javascript", "typescript",
                 "java", "rust", "golang", "sql", "regex", "exception", "refactor", "unit test", "script",
                 "algorithm", "syntax", "programming", "source code"}))
    return "code";
  if (hasAny(w, {"translate", "translation", "translated", "translating", "into english", "into french",
                 "into spanish", "into german", "into italian", "into portuguese", "into chinese",
                 "into japanese", "into korean", "into russian", "into arabic", "into dutch", "to english",
                 "to french", "to spanish", "to german", "to italian", "to portuguese", "to chinese",
                 "to japanese", "to korean", "to russian", "to arabic", "to dutch", "in french",
                 "in spanish", "in german"}))
    return "translation";
  if (hasAny(w, {"summarize", "summarise", "summary", "summarizing", "tl dr", "tldr", "key points",
                 "condense", "in a nutshell", "brief overview", "main points", "recap"}))
    return "summarization";
  if (hasAny(w, {"extract", "extraction", "pull out", "list all", "find all", "parse", "identify all",
                 "named entities", "as json", "into json", "in json", "json object"}))
    return "extraction";
  if (hasArithmetic(lower) ||
      hasAny(w, {"calculate", "compute", "solve", "equation", "integral", "derivative", "sum of",
                 "probability", "percent", "percentage", "math", "arithmetic", "multiply", "divide",
                 "divided by", "plus", "minus", "square root"}))
    return "math";
  if (hasAny(w, {"story", "poem", "haiku", "lyrics", "song", "novel", "fiction", "limerick", "creative",
                 "screenplay", "fairy tale", "sonnet", "short story", "write a tale"}))
    return "creative_writing";
  if (lower.find('?') != std::string::npos ||
      startsWithAny(w, {"what", "who", "when", "where", "why", "how", "which", "is", "are", "can", "does",
                        "do", "explain", "define", "describe", "tell me about"}) ||
      hasAny(w, {"what is", "what are", "explain", "definition of", "difference between"}))
    return "question_answering";
  if (hasAny(w, {"hi", "hello", "hey", "thanks", "thank you", "good morning", "good evening", "bye",
                 "how are you", "nice to meet you"}) ||
      wordCount(w) <= 4)
    return "chat";
  return "other";
}

std::string normalizePrompt(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  bool space = false;
  for (unsigned char c : text) {
    if (isAlnum(c)) {
      if (space && !out.empty()) out.push_back(' ');
      space = false;
      out.push_back(static_cast<char>(c < 0x80 ? std::tolower(c) : c));
    } else {
      space = true;
    }
  }
  return out;
}

uint64_t simhash(std::string_view text) {
  const std::string norm = normalizePrompt(text);
  std::vector<std::string_view> words;
  for (size_t i = 0; i < norm.size();) {
    size_t j = norm.find(' ', i);
    if (j == std::string::npos) j = norm.size();
    words.push_back(std::string_view(norm).substr(i, j - i));
    i = j + 1;
  }
  if (words.empty()) return 0;
  std::array<int64_t, 64> votes{};
  auto add = [&](uint64_t h) {
    for (int b = 0; b < 64; ++b) votes[static_cast<size_t>(b)] += ((h >> b) & 1) ? 1 : -1;
  };
  for (size_t i = 0; i < words.size(); ++i) {
    add(mix(fnv1a(words[i])));
    if (i + 1 < words.size()) {
      // the pair "a b" as it stands in norm: one contiguous slice
      const char* begin = words[i].data();
      const char* end = words[i + 1].data() + words[i + 1].size();
      add(mix(fnv1a(std::string_view(begin, static_cast<size_t>(end - begin))) ^ 0x9e3779b97f4a7c15ull));
    }
  }
  uint64_t out = 0;
  for (int b = 0; b < 64; ++b)
    if (votes[static_cast<size_t>(b)] > 0) out |= uint64_t{1} << b;
  return out;
}

int hammingDistance(uint64_t a, uint64_t b) { return std::popcount(a ^ b); }

PromptSignature promptSignature(std::string_view text) {
  PromptSignature s;
  s.simhash = simhash(text);
  s.preview = std::string(utf8Prefix(normalizePrompt(utf8Prefix(text, 4 * kPreviewBytes)), kPreviewBytes));
  return s;
}

}  // namespace llmcache::analytics
