#pragma once
// Result<T>: the return type of every fallible runtime path (DESIGN.md, Conventions).
// A miss is std::nullopt, never an error; an error carries a human-readable message.
#include <boost/system/result.hpp>
#include <string>
#include <utility>

namespace llmcache {

// Error codes shared by every module. Messages travel beside the code so that callers can
// report exactly what was wrong ("messages[2].role must be a string"), not just a category.
enum class Errc {
  InvalidArgument = 1,  // the caller's input is wrong (a 400 for a client request)
  Corrupt,              // stored bytes fail their checksum, version or format check
  NotFound,             // an object that had to exist does not
  Io,                   // the OS refused a read, write, rename, fsync ...
  Unavailable,          // a remote peer (upstream, S3) cannot be reached or is failing
  TooLarge,             // a configured size limit was exceeded
  Timeout,              // a deadline passed (connect or total), e.g. an upstream call's
  Cancelled,            // the caller cancelled (Transfer::cancel) or the client shut down
};

struct Error {
  Errc code;
  std::string message;
};

template <class T>
using Result = boost::system::result<T, Error>;

inline Error makeError(Errc code, std::string message) { return Error{code, std::move(message)}; }

}  // namespace llmcache

// boost::system::result needs to know how to throw an Error when value() is called on a failure.
namespace llmcache {
[[noreturn]] void throwError(const Error& e);
inline void throw_exception_from_error(const Error& e, const boost::source_location&) {
  throwError(e);
}
}  // namespace llmcache
