#include "key/canonical.h"

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>

#include "key/json_text.h"
#include "key/text.h"

namespace llmcache::key {

char* writePythonFloatRepr(double d, char* text) {
  // std::to_chars in scientific form gives the shortest round-trip digits: "d.ddde[+-]XX".
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  const char* p = buf;
  const char* const last = r.ptr;
  size_t n = 0;
  if (*p == '-') {
    text[n++] = '-';
    ++p;
  }
  char digits[24];
  int nd = 0;
  for (; *p != 'e'; ++p)
    if (*p != '.') digits[nd++] = *p;
  ++p;  // 'e'
  const bool negExp = *p == '-';
  ++p;  // the sign
  int exp10 = 0;
  for (; p < last; ++p) exp10 = exp10 * 10 + (*p - '0');
  if (negExp) exp10 = -exp10;
  const int decpt = exp10 + 1;  // value = 0.DIGITS x 10^decpt
  auto put = [&](const char* s, int len) {
    for (int k = 0; k < len; ++k) text[n++] = s[k];
  };
  if (decpt <= -4 || decpt > 16) {
    text[n++] = digits[0];
    if (nd > 1) {
      text[n++] = '.';
      put(digits + 1, nd - 1);
    }
    text[n++] = 'e';
    text[n++] = exp10 < 0 ? '-' : '+';
    const int a = std::abs(exp10);
    if (a >= 100) text[n++] = static_cast<char>('0' + a / 100);
    text[n++] = static_cast<char>('0' + a / 10 % 10);
    text[n++] = static_cast<char>('0' + a % 10);
  } else if (decpt <= 0) {
    text[n++] = '0';
    text[n++] = '.';
    for (int k = 0; k < -decpt; ++k) text[n++] = '0';
    put(digits, nd);
  } else if (decpt >= nd) {
    put(digits, nd);
    for (int k = 0; k < decpt - nd; ++k) text[n++] = '0';
    text[n++] = '.';
    text[n++] = '0';
  } else {
    put(digits, decpt);
    text[n++] = '.';
    put(digits + decpt, nd - decpt);
  }
  return text + n;
}

void appendPythonFloatRepr(double d, std::string& out) {
  char text[kFloatReprMax];
  out.append(text, writePythonFloatRepr(d, text));
}

std::string pythonFloatRepr(double d) {
  std::string out;
  appendPythonFloatRepr(d, out);
  return out;
}

std::optional<double> parseFiniteDouble(const std::string& text) {
  // strtod (glibc: correctly rounded, C locale) rather than from_chars: from_chars reports
  // underflow as an error, but Python quietly makes 1e-400 into 0.0.
  errno = 0;
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (std::isinf(v) || std::isnan(v)) return std::nullopt;
  return v;
}

void writePythonString(std::string_view s, std::string& out) {
  const size_t at = out.size();
  out.resize(at + escapeRoom(s.size()));
  char* const end = escapePythonString(s, out.data() + at);
  out.resize(static_cast<size_t>(end - out.data()));
}

namespace {

Result<void> writeNumber(const std::string& text, std::string& out) {
  if (text.find_first_of(".eE") == std::string::npos) {
    // Python int(text): exact at any size. JSON forbids leading zeros, so only "-0" differs.
    out += text == "-0" ? "0" : text;
    return {};
  }
  const auto d = parseFiniteDouble(text);
  if (!d) {
    return makeError(Errc::InvalidArgument, "the number " + text.substr(0, 20) + " is too large");
  }
  appendPythonFloatRepr(*d, out);
  return {};
}

void newline(std::string& out, int level) {
  out.push_back('\n');
  out.append(static_cast<size_t>(level) * 4, ' ');
}

}  // namespace

Result<void> writeCanonical(const Json& v, std::string& out, int level) {
  switch (v.kind()) {
    case Json::Kind::Null:
      out += "null";
      return {};
    case Json::Kind::Bool:
      out += v.asBool() ? "true" : "false";
      return {};
    case Json::Kind::Number:
      return writeNumber(std::string(v.text()), out);
    case Json::Kind::String:
      writePythonString(v.text(), out);
      return {};
    case Json::Kind::Array: {
      if (v.items().empty()) {
        out += "[]";
        return {};
      }
      out.push_back('[');
      for (size_t i = 0; i < v.items().size(); ++i) {
        if (i) out.push_back(',');
        newline(out, level + 1);
        if (auto r = writeCanonical(v.items()[i], out, level + 1); !r) return r;
      }
      newline(out, level);
      out.push_back(']');
      return {};
    }
    case Json::Kind::Object: {
      if (v.items().empty()) {
        out += "{}";
        return {};
      }
      out.push_back('{');
      for (size_t i = 0; i < v.items().size(); ++i) {
        if (i) out.push_back(',');
        newline(out, level + 1);
        writePythonString(v.keys()[i], out);
        out += ": ";
        if (auto r = writeCanonical(v.items()[i], out, level + 1); !r) return r;
      }
      newline(out, level);
      out.push_back('}');
      return {};
    }
  }
  return {};
}

}  // namespace llmcache::key
