#pragma once
// What analytics reads from a prompt: its text, its category and its similarity signature.
// All deterministic and local (no model): the same text gives the same answers on every build.
#include <cstdint>
#include <string>
#include <string_view>

#include "common/json.h"

namespace llmcache::analytics {

// The text of the prompt a request body carries, as a classifier input: the last message with
// role "user" (OpenAI chat and Anthropic messages; a content string, or the "text" parts of a
// content array joined by newlines), else `prompt` (completions: a string, or the first string
// of an array), else `input` (embeddings: a string, or the strings of an array joined by
// newlines). Empty when there is none. At most kMaxPromptText bytes (cut at a UTF-8 boundary).
inline constexpr size_t kMaxPromptText = 8192;
std::string promptText(const Json& requestBody);

// One of: code, translation, summarization, extraction, math, creative_writing,
// question_answering, chat, other. Rules (first that matches wins; docs/analytics.md lists the
// keywords): code, translation, summarization, extraction, math, creative_writing,
// question_answering, chat, else other. Reads at most the first 4 KB. Runs on the request thread
// of every miss: ~5 us for a 1.4 KB prompt (one lookup per word; build/bench/prompt_bench).
std::string classifyPrompt(std::string_view text);

// Text as the similarity finder compares it: ASCII letters lowercased, every ASCII character that
// is not a letter or digit a space, runs of spaces collapsed, trimmed. Bytes >= 0x80 (UTF-8) are
// kept as they are.
std::string normalizePrompt(std::string_view text);

// 64-bit SimHash of normalizePrompt(text): features are the words and the word pairs (bigrams),
// each hashed with FNV-1a 64 and a SplitMix64 finalizer, weight 1. 0 for a text with no words.
// promptSignature (this and the preview) is ~8.5 us for a 1.4 KB prompt (build/bench/prompt_bench).
uint64_t simhash(std::string_view text);
// Differing bits of two signatures.
int hammingDistance(uint64_t a, uint64_t b);
// Two prompts are near duplicates when their signatures differ in at most this many bits
// (calibrated in prompt_test.cc: a changed word or two in a sentence stays under it, unrelated
// prompts land near 32).
inline constexpr int kNearDuplicateBits = 12;

struct PromptSignature {
  uint64_t simhash = 0;
  std::string preview;  // the first kPreviewBytes of normalizePrompt(text)
};
inline constexpr size_t kPreviewBytes = 120;
PromptSignature promptSignature(std::string_view text);

}  // namespace llmcache::analytics
