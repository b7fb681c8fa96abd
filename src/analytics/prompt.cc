#include "analytics/prompt.h"

#include <algorithm>
#include <array>
#include <bit>
#include <unordered_map>
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
      if (part.isString())
        appendCapped(out, part.text());
      else if (part.isObject())
        if (auto t = part.getString("text")) appendCapped(out, *t);
    }
  }
  return out;
}

// ASCII only, as std::isalnum / std::tolower in the "C" locale (bytes >= 0x80 are UTF-8 and kept).
bool isAsciiAlnum(unsigned char c) {
  return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z');
}
bool isAlnum(unsigned char c) { return isAsciiAlnum(c) || c >= 0x80; }
char lowerAscii(unsigned char c) { return static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c); }
bool isDigit(char c) { return c >= '0' && c <= '9'; }

bool rawHasAny(std::string_view lower, std::initializer_list<std::string_view> needles) {
  for (auto n : needles)
    if (lower.find(n) != std::string_view::npos) return true;
  return false;
}

// digits, optional spaces, an arithmetic operator, optional spaces, digits: "12 * 7", "3^2".
bool hasArithmetic(std::string_view s) {
  for (size_t i = 0; i < s.size(); ++i) {
    if (!isDigit(s[i])) continue;
    size_t j = i;
    while (j < s.size() && (isDigit(s[j]) || s[j] == '.')) ++j;
    while (j < s.size() && s[j] == ' ') ++j;
    if (j >= s.size() || std::string_view("+-*/^=").find(s[j]) == std::string_view::npos) {
      i = j;
      continue;
    }
    ++j;
    while (j < s.size() && s[j] == ' ') ++j;
    if (j < s.size() && isDigit(s[j])) return true;
    i = j;
  }
  return false;
}

// The rules' keyword lists, in rule order; a phrase matches a run of whole words.
enum Rule : unsigned {
  kCode,
  kTranslation,
  kSummarization,
  kExtraction,
  kMath,
  kCreative,
  kQuestion,
  kChat,
  kRules
};
struct RuleWords {
  Rule rule;
  std::initializer_list<std::string_view> phrases;
};
const std::array<RuleWords, kRules> kRuleWords = {{
    {kCode, {"code",      "function",   "bug",         "debug",      "compile",   "compiler",
             "python",    "javascript", "typescript",  "java",       "rust",      "golang",
             "sql",       "regex",      "exception",   "refactor",   "unit test", "script",
             "algorithm", "syntax",     "programming", "source code"}},
    {kTranslation,
     {"translate",    "translation",   "translated",  "translating",  "into english",
      "into french",  "into spanish",  "into german", "into italian", "into portuguese",
      "into chinese", "into japanese", "into korean", "into russian", "into arabic",
      "into dutch",   "to english",    "to french",   "to spanish",   "to german",
      "to italian",   "to portuguese", "to chinese",  "to japanese",  "to korean",
      "to russian",   "to arabic",     "to dutch",    "in french",    "in spanish",
      "in german"}},
    {kSummarization,
     {"summarize", "summarise", "summary", "summarizing", "tl dr", "tldr", "key points", "condense",
      "in a nutshell", "brief overview", "main points", "recap"}},
    {kExtraction,
     {"extract", "extraction", "pull out", "list all", "find all", "parse", "identify all",
      "named entities", "as json", "into json", "in json", "json object"}},
    {kMath,
     {"calculate", "compute", "solve", "equation", "integral", "derivative", "sum of",
      "probability", "percent", "percentage", "math", "arithmetic", "multiply", "divide",
      "divided by", "plus", "minus", "square root"}},
    {kCreative,
     {"story", "poem", "haiku", "lyrics", "song", "novel", "fiction", "limerick", "creative",
      "screenplay", "fairy tale", "sonnet", "short story", "write a tale"}},
    {kQuestion, {"what is", "what are", "explain", "definition of", "difference between"}},
    {kChat,
     {"hi", "hello", "hey", "thanks", "thank you", "good morning", "good evening", "bye",
      "how are you", "nice to meet you"}},
}};

std::vector<std::string_view> splitWords(std::string_view phrase) {
  std::vector<std::string_view> out;
  for (size_t i = 0; i <= phrase.size();) {
    size_t j = phrase.find(' ', i);
    if (j == std::string_view::npos) j = phrase.size();
    out.push_back(phrase.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

// Every phrase of every rule by its first word. classifyPrompt used to search the text once per
// phrase (~150 std::string::find over the text: ~44 us for a 1.4 KB prompt, on the request
// thread of every miss); it now looks each of the text's words up once (build/bench/prompt_bench).
struct PhraseIndex {
  struct Phrase {
    Rule rule;
    std::vector<std::string_view> rest;  // the words after the first
  };
  std::unordered_map<std::string_view, std::vector<Phrase>> byFirstWord;
  size_t longestFirstWord = 0;

  PhraseIndex() {
    for (const RuleWords& r : kRuleWords)
      for (std::string_view phrase : r.phrases) {
        auto words = splitWords(phrase);
        longestFirstWord = std::max(longestFirstWord, words[0].size());
        byFirstWord[words[0]].push_back(
            {r.rule, std::vector<std::string_view>(words.begin() + 1, words.end())});
      }
  }
  // Bit r set: some phrase of rule r is in words (consecutive, whole words).
  unsigned match(const std::vector<std::string_view>& words) const {
    unsigned found = 0;
    for (size_t i = 0; i < words.size(); ++i) {
      if (words[i].size() > longestFirstWord) continue;
      auto it = byFirstWord.find(words[i]);
      if (it == byFirstWord.end()) continue;
      for (const Phrase& p : it->second) {
        if (found & (1u << p.rule)) continue;
        bool all = i + p.rest.size() < words.size();
        for (size_t k = 0; all && k < p.rest.size(); ++k) all = words[i + 1 + k] == p.rest[k];
        if (all) found |= 1u << p.rule;
      }
    }
    return found;
  }
};

// Questions: the text's first words are one of these.
bool startsAsAQuestion(const std::vector<std::string_view>& words) {
  static const std::vector<std::vector<std::string_view>> kStarts = [] {
    std::vector<std::vector<std::string_view>> v;
    for (std::string_view p :
         {"what", "who", "when", "where", "why", "how", "which", "is", "are", "can", "does", "do",
          "explain", "define", "describe", "tell me about"})
      v.push_back(splitWords(p));
    return v;
  }();
  for (const auto& start : kStarts)
    if (start.size() <= words.size() && std::equal(start.begin(), start.end(), words.begin()))
      return true;
  return false;
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
  if (const Json* input = body.find("input")) {
    // The Responses API's input items: the last user message's content.
    if (input->isArray())
      for (auto it = input->items().rbegin(); it != input->items().rend(); ++it)
        if (it->isObject() && it->getString("role").value_or("") == "user")
          if (const Json* content = it->find("content")) return contentText(*content);
    return contentText(*input);
  }
  return {};
}

std::string classifyPrompt(std::string_view text) {
  static const PhraseIndex kIndex;
  text = utf8Prefix(text, 4096);
  std::string lower(text);
  for (char& c : lower) c = lowerAscii(static_cast<unsigned char>(c));
  // The words: runs of letters, digits and UTF-8 bytes, lowercased.
  std::vector<std::string_view> words;
  for (size_t i = 0; i < lower.size();) {
    if (!isAlnum(static_cast<unsigned char>(lower[i]))) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < lower.size() && isAlnum(static_cast<unsigned char>(lower[j]))) ++j;
    words.push_back(std::string_view(lower).substr(i, j - i));
    i = j;
  }
  if (words.empty()) return "other";
  const unsigned found = kIndex.match(words);
  auto has = [found](Rule r) { return (found & (1u << r)) != 0; };

  if (rawHasAny(lower, {"```", "#include", "();", ") {", "){", "=>", "c++", "c#", "stack trace",
                        "traceback"}) ||
      has(kCode))
    return "code";
  if (has(kTranslation)) return "translation";
  if (has(kSummarization)) return "summarization";
  if (has(kExtraction)) return "extraction";
  if (hasArithmetic(lower) || has(kMath)) return "math";
  if (has(kCreative)) return "creative_writing";
  if (lower.find('?') != std::string::npos || startsAsAQuestion(words) || has(kQuestion))
    return "question_answering";
  if (has(kChat) || words.size() <= 4) return "chat";
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
      out.push_back(lowerAscii(c));
    } else {
      space = true;
    }
  }
  return out;
}

// The SimHash vote: per bit of the features' hashes, how many had it set. Counted 8 bits at a
// time: each byte of a hash adds kSpread[byte] (its 8 bits as 8 byte lanes, 0 or 1) to one 64-bit
// word of 8 lane counters, spilled into the totals before a lane can overflow. 8 additions per
// feature instead of 64 (a 1.4 KB prompt: ~36 us -> a few us, build/bench/prompt_bench).
class BitVotes {
 public:
  void add(uint64_t h) {
    for (size_t k = 0; k < 8; ++k) lanes_[k] += kSpread[(h >> (8 * k)) & 0xff];
    if (++pending_ == 255) spill();
    ++features_;
  }
  // Bit b set when more than half of the features had it (the vote +1 / -1 is positive).
  uint64_t result() {
    spill();
    uint64_t out = 0;
    for (size_t b = 0; b < 64; ++b)
      if (2 * ones_[b] > features_) out |= uint64_t{1} << b;
    return out;
  }

 private:
  static constexpr std::array<uint64_t, 256> kSpread = [] {
    std::array<uint64_t, 256> t{};
    for (unsigned x = 0; x < 256; ++x)
      for (unsigned j = 0; j < 8; ++j) t[x] |= static_cast<uint64_t>((x >> j) & 1) << (8 * j);
    return t;
  }();
  void spill() {
    for (size_t k = 0; k < 8; ++k) {
      for (size_t j = 0; j < 8; ++j) ones_[8 * k + j] += (lanes_[k] >> (8 * j)) & 0xff;
      lanes_[k] = 0;
    }
    pending_ = 0;
  }
  std::array<uint64_t, 8> lanes_{};
  std::array<uint64_t, 64> ones_{};
  unsigned pending_ = 0;
  uint64_t features_ = 0;
};

uint64_t simhash(std::string_view text) {
  const std::string norm = normalizePrompt(text);
  if (norm.empty()) return 0;
  BitVotes votes;
  // Words are separated by single spaces in norm; a pair "a b" is the contiguous slice.
  std::string_view previous;
  for (size_t i = 0; i < norm.size();) {
    size_t j = norm.find(' ', i);
    if (j == std::string::npos) j = norm.size();
    const std::string_view word = std::string_view(norm).substr(i, j - i);
    if (!previous.empty()) {
      const std::string_view pair(previous.data(),
                                  static_cast<size_t>(word.data() + word.size() - previous.data()));
      votes.add(mix(fnv1a(pair) ^ 0x9e3779b97f4a7c15ull));
    }
    votes.add(mix(fnv1a(word)));
    previous = word;
    i = j + 1;
  }
  return votes.result();
}

int hammingDistance(uint64_t a, uint64_t b) { return std::popcount(a ^ b); }

PromptSignature promptSignature(std::string_view text) {
  PromptSignature s;
  s.simhash = simhash(text);
  s.preview =
      std::string(utf8Prefix(normalizePrompt(utf8Prefix(text, 4 * kPreviewBytes)), kPreviewBytes));
  return s;
}

}  // namespace llmcache::analytics
