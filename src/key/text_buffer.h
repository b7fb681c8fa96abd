#pragma once
// TextBuffer: a growable byte buffer for the key's writers. Unlike std::string, appending is
// inline (no library call per append) and growing never zero-fills, and a writer can ask for
// room up front and then write through a raw pointer (room(n), then commit). The room it
// hands out may be written past what is committed (the escapers store 16 bytes at a time).
#include <cstddef>
#include <cstring>
#include <memory>
#include <string_view>

namespace llmcache::key {

class TextBuffer {
 public:
  void clear() { size_ = 0; }
  size_t size() const { return size_; }
  size_t capacity() const { return cap_; }
  const char* data() const { return data_.get(); }
  char* data() { return data_.get(); }
  std::string_view view() const { return {data_.get(), size_}; }

  // At least n writable bytes after the committed ones; where they start.
  char* room(size_t n) {
    if (cap_ - size_ < n) grow(n);
    return data_.get() + size_;
  }
  // The first n bytes of the room are now content.
  void commit(size_t n) { size_ += n; }
  // Content ends at p (a pointer into the room).
  void commitTo(const char* p) { size_ = static_cast<size_t>(p - data_.get()); }
  void resize(size_t n) { size_ = n; }  // n <= size() + the last room asked for

  void put(char c) {
    room(1)[0] = c;
    ++size_;
  }
  void append(const char* s, size_t n) {
    if (n == 0) return;  // s may be null then
    std::memcpy(room(n), s, n);
    size_ += n;
  }
  void append(std::string_view s) { append(s.data(), s.size()); }
  template <size_t N>
  void literal(const char (&s)[N]) {  // a string literal, without its NUL
    append(s, N - 1);
  }

  // Frees the memory when it grew beyond keepBytes.
  void trim(size_t keepBytes) {
    if (cap_ > keepBytes) {
      data_.reset();
      cap_ = size_ = 0;
    }
  }

 private:
  void grow(size_t n) {
    size_t cap = cap_ < 256 ? 256 : cap_ * 2;
    while (cap - size_ < n) cap *= 2;
    std::unique_ptr<char[]> bigger(new char[cap]);  // not zero-filled
    if (size_) std::memcpy(bigger.get(), data_.get(), size_);
    data_ = std::move(bigger);
    cap_ = cap;
  }

  std::unique_ptr<char[]> data_;
  size_t size_ = 0;
  size_t cap_ = 0;
};

}  // namespace llmcache::key
