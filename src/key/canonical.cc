#include "key/canonical.h"

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>

#include "key/text.h"

namespace llmcache::key {

std::string pythonFloatRepr(double d) {
  // std::to_chars in scientific form gives the shortest round-trip digits: "d.ddde[+-]XX".
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  std::string_view sci(buf, static_cast<size_t>(r.ptr - buf));
  std::string out;
  if (sci.front() == '-') {
    out.push_back('-');
    sci.remove_prefix(1);
  }
  const size_t e = sci.find('e');
  std::string digits;
  for (char c : sci.substr(0, e))
    if (c != '.') digits.push_back(c);
  int exp10 = 0;
  std::from_chars(sci.data() + e + 1 + (sci[e + 1] == '+'), sci.data() + sci.size(), exp10);
  const int decpt = exp10 + 1;  // value = 0.DIGITS x 10^decpt
  const int nd = static_cast<int>(digits.size());
  if (decpt <= -4 || decpt > 16) {
    out.push_back(digits[0]);
    if (nd > 1) {
      out.push_back('.');
      out.append(digits, 1);
    }
    out.push_back('e');
    out.push_back(exp10 < 0 ? '-' : '+');
    const int a = std::abs(exp10);
    if (a < 10) out.push_back('0');
    out += std::to_string(a);
  } else if (decpt <= 0) {
    out += "0.";
    out.append(static_cast<size_t>(-decpt), '0');
    out += digits;
  } else if (decpt >= nd) {
    out += digits;
    out.append(static_cast<size_t>(decpt - nd), '0');
    out += ".0";
  } else {
    out.append(digits, 0, static_cast<size_t>(decpt));
    out.push_back('.');
    out.append(digits, static_cast<size_t>(decpt));
  }
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
  static const char* hex = "0123456789abcdef";
  auto u = [&](unsigned v) {
    out += "\\u";
    out.push_back(hex[(v >> 12) & 15]);
    out.push_back(hex[(v >> 8) & 15]);
    out.push_back(hex[(v >> 4) & 15]);
    out.push_back(hex[v & 15]);
  };
  out.push_back('"');
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7F && c != '"' && c != '\\') {
      // Copy the run of plain printable ASCII at once.
      size_t j = i + 1;
      while (j < s.size()) {
        const unsigned char d = static_cast<unsigned char>(s[j]);
        if (d < 0x20 || d >= 0x7F || d == '"' || d == '\\') break;
        ++j;
      }
      out.append(s.data() + i, j - i);
      i = j;
      continue;
    }
    const char32_t cp = decodeUtf8(s, i);
    if (const char* e = jsonShortEscape(cp)) {
      out += e;
      continue;
    }
    if (cp >= 0x10000) {
      const char32_t v = cp - 0x10000;
      u(0xD800 + static_cast<unsigned>(v >> 10));
      u(0xDC00 + static_cast<unsigned>(v & 0x3FF));
    } else {
      u(static_cast<unsigned>(cp));
    }
  }
  out.push_back('"');
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
  out += pythonFloatRepr(*d);
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
      return writeNumber(v.text(), out);
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
