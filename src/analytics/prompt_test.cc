#include "analytics/prompt.h"

#include <gtest/gtest.h>

#include <boost/algorithm/string/case_conv.hpp>
#include <map>
#include <random>

namespace llmcache::analytics {
namespace {

Json parse(std::string_view text) { return parseJson(text).value(); }

TEST(ClassifyPrompt, EachCategoryHasExamplesThatLandInIt) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"Write a Python function that reverses a linked list", "code"},
      {"Why does this throw?\n```\nint main() { return *p; }\n```", "code"},
      {"Fix the bug: TypeError in my JavaScript reduce() call", "code"},
      {"Translate 'good morning, how are you' into Spanish", "translation"},
      {"Please translate this paragraph to German.", "translation"},
      {"Summarize the following article in three bullet points: ...", "summarization"},
      {"Give me a TL;DR of this thread", "summarization"},
      {"Extract every email address and phone number from the text below", "extraction"},
      {"Return the invoice number, date and total as JSON", "extraction"},
      {"What is 17 * 23?", "math"},
      {"Solve the equation 3x + 5 = 20 for x", "math"},
      {"Write a haiku about autumn leaves", "creative_writing"},
      {"Tell me a bedtime story about a brave little dragon", "creative_writing"},
      {"What is the capital of Australia?", "question_answering"},
      {"Explain the difference between weather and climate", "question_answering"},
      {"Hello there!", "chat"},
      {"thanks a lot", "chat"},
      {"The quarterly report is attached for the board meeting next Tuesday afternoon.", "other"},
      {"", "other"},
  };
  for (const auto& [text, category] : cases) EXPECT_EQ(classifyPrompt(text), category) << text;
}

TEST(ClassifyPrompt, EarlierRulesWinOverLaterOnes) {
  // code before translation, translation before creative writing, math before questions
  EXPECT_EQ(classifyPrompt("Translate this Python code to JavaScript"), "code");
  EXPECT_EQ(classifyPrompt("Write a poem in French"), "translation");
  EXPECT_EQ(classifyPrompt("How much is 12 + 30?"), "math");
}

TEST(ClassifyPrompt, MatchesWholeWordsOnly) {
  // "codependent" is not "code", "summary" inside a word is not a summary request
  EXPECT_EQ(classifyPrompt("Is a codependent relationship always unhealthy?"),
            "question_answering");
}

// A deterministic corpus over the classifier's words, punctuation, digits, code, UTF-8 and case
// changes, short texts and ones past the 4 KB the classifier reads: classifyPrompt and simhash
// of every text are folded into one checksum, pinned. It pins what the rules and the signature
// compute, so a faster implementation must give exactly the same answers (the pinned values
// were computed by the first, plain implementation: one std::string::find per phrase, a 64-step
// vote per feature).
std::vector<std::string> corpus() {
  static const std::vector<std::string> vocabulary = {"code",
                                                      "function",
                                                      "bug",
                                                      "debug",
                                                      "compile",
                                                      "python",
                                                      "JavaScript",
                                                      "sql",
                                                      "regex",
                                                      "exception",
                                                      "refactor",
                                                      "unit",
                                                      "test",
                                                      "script",
                                                      "algorithm",
                                                      "syntax",
                                                      "source",
                                                      "translate",
                                                      "translation",
                                                      "into",
                                                      "to",
                                                      "in",
                                                      "english",
                                                      "French",
                                                      "spanish",
                                                      "german",
                                                      "summarize",
                                                      "summary",
                                                      "tl",
                                                      "dr",
                                                      "TL;DR",
                                                      "tldr",
                                                      "key",
                                                      "points",
                                                      "condense",
                                                      "nutshell",
                                                      "brief",
                                                      "overview",
                                                      "main",
                                                      "recap",
                                                      "extract",
                                                      "pull",
                                                      "out",
                                                      "list",
                                                      "all",
                                                      "find",
                                                      "parse",
                                                      "identify",
                                                      "entities",
                                                      "as",
                                                      "json",
                                                      "object",
                                                      "calculate",
                                                      "compute",
                                                      "solve",
                                                      "equation",
                                                      "integral",
                                                      "derivative",
                                                      "sum",
                                                      "of",
                                                      "probability",
                                                      "percent",
                                                      "math",
                                                      "multiply",
                                                      "divide",
                                                      "divided",
                                                      "by",
                                                      "plus",
                                                      "minus",
                                                      "square",
                                                      "root",
                                                      "story",
                                                      "poem",
                                                      "haiku",
                                                      "lyrics",
                                                      "song",
                                                      "novel",
                                                      "fiction",
                                                      "limerick",
                                                      "creative",
                                                      "screenplay",
                                                      "fairy",
                                                      "tale",
                                                      "sonnet",
                                                      "short",
                                                      "write",
                                                      "a",
                                                      "what",
                                                      "who",
                                                      "when",
                                                      "where",
                                                      "why",
                                                      "how",
                                                      "which",
                                                      "is",
                                                      "are",
                                                      "can",
                                                      "does",
                                                      "do",
                                                      "explain",
                                                      "define",
                                                      "describe",
                                                      "tell",
                                                      "me",
                                                      "about",
                                                      "difference",
                                                      "between",
                                                      "definition",
                                                      "hi",
                                                      "hello",
                                                      "hey",
                                                      "thanks",
                                                      "thank",
                                                      "you",
                                                      "good",
                                                      "morning",
                                                      "evening",
                                                      "bye",
                                                      "nice",
                                                      "meet",
                                                      "the",
                                                      "quick",
                                                      "brown",
                                                      "fox",
                                                      "lazy",
                                                      "dog",
                                                      "codependent",
                                                      "coding",
                                                      "translator",
                                                      "summaries",
                                                      "?",
                                                      "```",
                                                      "#include",
                                                      "();",
                                                      ") {",
                                                      "){",
                                                      "=>",
                                                      "c++",
                                                      "C#",
                                                      "stack",
                                                      "trace",
                                                      "traceback",
                                                      "12 * 7",
                                                      "3^2",
                                                      "4.5 + 1",
                                                      "7 =",
                                                      "2024",
                                                      "caf\xC3\xA9",
                                                      "\xE4\xB8\xAD\xE6\x96\x87",
                                                      "don't",
                                                      "e-mail",
                                                      "x",
                                                      "Y"};
  std::mt19937_64 rng(
      20261126);  // the engine's output is fixed by the standard (distributions are not)
  auto pick = [&](size_t n) { return static_cast<size_t>(rng() % n); };
  static const std::vector<std::string> separators = {" ",  " ", " ",  "  ", "\n",
                                                      ", ", "-", ". ", "\t", "!"};
  std::vector<std::string> texts;
  for (int t = 0; t < 3000; ++t) {
    const size_t words = t % 50 == 0 ? 700 + pick(300) : 1 + pick(t % 3 == 0 ? 6 : 30);
    std::string text;
    for (size_t w = 0; w < words; ++w) {
      if (w) text += separators[pick(separators.size())];
      // Mostly plain words, so that every rule (not only the first, code) decides some texts.
      static const std::vector<std::string> plain = {
          "the",    "quick", "brown",   "fox",     "jumps", "over", "lazy", "dog",
          "report", "board", "meeting", "Tuesday", "we",    "it",   "a"};
      std::string word = pick(8) ? plain[pick(plain.size())] : vocabulary[pick(vocabulary.size())];
      if (pick(5) == 0) boost::algorithm::to_upper(word);
      text += word;
    }
    texts.push_back(std::move(text));
  }
  return texts;
}

TEST(ClassifyPrompt, AndSimhashGiveThePinnedAnswersOverACorpus) {
  uint64_t sum = 14695981039346656037ull;
  auto fold = [&](uint64_t v) { sum = (sum ^ v) * 1099511628211ull; };
  std::map<std::string, int> categories;
  for (const std::string& text : corpus()) {
    const std::string category = classifyPrompt(text);
    ++categories[category];
    for (char c : category) fold(static_cast<unsigned char>(c));
    fold(simhash(text));
  }
  std::string counts;
  for (const auto& [c, n] : categories) counts += c + "=" + std::to_string(n) + " ";
  EXPECT_EQ(counts,
            "chat=842 code=601 creative_writing=140 extraction=32 math=229 other=966 "
            "question_answering=40 "
            "summarization=110 translation=40 ");
  EXPECT_EQ(sum, 0x89c4b42f64be5116ull) << std::hex << sum;
}

TEST(PromptText, TakesTheLastUserMessageOfAChat) {
  const Json body = parse(R"({"model":"gpt-4o","messages":[{"role":"system","content":"Be brief."},
      {"role":"user","content":"first"},{"role":"assistant","content":"ok"},{"role":"user","content":"second"}]})");
  EXPECT_EQ(promptText(body), "second");
}

TEST(PromptText, JoinsTheTextPartsOfAContentArray) {
  const Json body =
      parse(R"({"messages":[{"role":"user","content":[{"type":"text","text":"look at"},
      {"type":"image_url","image_url":{"url":"http://x"}},{"type":"text","text":"this"}]}]})");
  EXPECT_EQ(promptText(body), "look at\nthis");
}

TEST(PromptText, ReadsCompletionPromptsAndEmbeddingInputs) {
  EXPECT_EQ(promptText(parse(R"({"prompt":"Once upon"})")), "Once upon");
  EXPECT_EQ(promptText(parse(R"({"prompt":["a","b"]})")), "a");
  EXPECT_EQ(promptText(parse(R"({"input":["x","y"]})")), "x\ny");
  EXPECT_EQ(promptText(parse(R"({"model":"m"})")), "");
}

TEST(PromptText, TakesTheLastUserItemOfAResponsesInput) {
  EXPECT_EQ(promptText(parse(R"({"input":"plain question"})")), "plain question");
  EXPECT_EQ(promptText(parse(R"({"input":[{"role":"user","content":"first"},
      {"type":"function_call_output","call_id":"c","output":"42"},
      {"role":"user","content":[{"type":"input_text","text":"second"}]}]})")),
            "second");
}

TEST(PromptText, IsCappedAtAUtf8Boundary) {
  std::string longText = std::string(kMaxPromptText - 1, 'a') + "\xC3\xA9";  // é straddles the cap
  Json body = Json::object();
  body.set("prompt", Json::string(longText));
  EXPECT_EQ(promptText(body), std::string(kMaxPromptText - 1, 'a'));
}

TEST(Simhash, NormalizationMakesCaseSpacingAndPunctuationIrrelevant) {
  EXPECT_EQ(normalizePrompt("  What IS the capital,   of France?! "),
            "what is the capital of france");
  EXPECT_EQ(simhash("What is the capital of France?"), simhash("what is the   capital of france"));
  EXPECT_EQ(simhash("?!"), 0u);
}

TEST(Simhash, NearDuplicatePromptsAreWithinTheThreshold) {
  const std::vector<std::pair<std::string, std::string>> pairs = {
      {"Write a short poem about the ocean at night", "Write a short poem about the sea at night"},
      {"Summarize the following article about climate change and its effects on agriculture in "
       "Europe",
       "Please summarize the following article about climate change and its effects on agriculture "
       "in Europe"},
      {"Explain how a hash table works and when to use it instead of a binary search tree",
       "Explain how a hash table works and when to use one instead of a binary search tree"},
  };
  for (const auto& [a, b] : pairs)
    EXPECT_LE(hammingDistance(simhash(a), simhash(b)), kNearDuplicateBits) << a;
}

TEST(Simhash, DistinctPromptsAreFarApart) {
  const std::vector<std::string> prompts = {
      "What is the capital of France?",
      "Write a short poem about the ocean at night",
      "Summarize the following article about climate change",
      "Explain how a hash table works",
      "How do I bake sourdough bread at home",
      "List all the prime numbers below one hundred",
      "Translate the following sentence into French: the weather is nice today"};
  for (size_t i = 0; i < prompts.size(); ++i)
    for (size_t j = i + 1; j < prompts.size(); ++j)
      EXPECT_GT(hammingDistance(simhash(prompts[i]), simhash(prompts[j])), kNearDuplicateBits)
          << prompts[i] << " / " << prompts[j];
}

TEST(Simhash, IsStableAcrossBuilds) {
  // A stored signature must keep its meaning: pin one value (FNV-1a 64 + SplitMix64, words and
  // bigrams).
  EXPECT_EQ(simhash("hello world"), simhash("Hello, World"));
  const uint64_t pinned = simhash("hello world");
  EXPECT_EQ(pinned, 0x16bf2eabff9a0d8full);
}

TEST(PromptSignature, KeepsAShortNormalizedPreview) {
  const auto sig = promptSignature("  Hello,   WORLD! " + std::string(500, 'x'));
  EXPECT_EQ(sig.simhash, simhash("hello world " + std::string(500, 'x')));
  EXPECT_EQ(sig.preview.size(), kPreviewBytes);
  EXPECT_EQ(sig.preview.substr(0, 12), "hello world ");
}

}  // namespace
}  // namespace llmcache::analytics
