#pragma once
// The canonical writer: Python's json.dumps(obj, indent=4) (ensure_ascii=True), byte for byte.
// This is the one piece no library does for us: Boost.JSON writes neither Python's float repr
// nor its indentation.
#include <string>
#include <string_view>

#include "common/json.h"
#include "common/result.h"

namespace llmcache::key {

// Python repr(float): shortest round-trip digits, ".0" on whole numbers, "-0.0" kept, exponent
// form ("1e-05", "1.5e+300") when the decimal exponent is < -4 or >= 16. d must be finite.
std::string pythonFloatRepr(double d);
void appendPythonFloatRepr(double d, std::string& out);
// The same at out (kFloatReprMax bytes of room); returns the end.
inline constexpr size_t kFloatReprMax = 32;
char* writePythonFloatRepr(double d, char* out);

// Python float(text) of a JSON number: correctly rounded. nullopt when it overflows to
// infinity (Python's reference rejects such a request).
std::optional<double> parseFiniteDouble(const std::string& jsonNumber);

// Appends a Python json.dumps string literal with ensure_ascii (\uXXXX lowercase, surrogate
// pairs above U+FFFF, short escapes for " \ \n \r \t \b \f).
void writePythonString(std::string_view utf8, std::string& out);

// Appends json.dumps(value, indent=4) at the given nesting level. Numbers: integers as Python's
// int() of their text ("-0" -> "0", any size), others as pythonFloatRepr. Objects keep their
// member order (callers sort where the spec says to). Error on a number too large for a double.
Result<void> writeCanonical(const Json& value, std::string& out, int level = 0);

}  // namespace llmcache::key
