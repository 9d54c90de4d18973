// The bytes of HTTP/1.1 responses: status lines, header blocks, chunk framing, and the
// server's own error responses. Pure functions; thread-safe.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "common/http/http_server.h"

namespace tessera::http::wire {

// How a response body is delimited.
enum class Framing {
  kLength,      // content-length: N
  kChunked,     // transfer-encoding: chunked
  kUntilClose,  // no framing header; the connection closes after the body (HTTP/1.0 streams)
  kNoBody,      // 1xx, 204, 304: neither header, no body
};

// A status the server may send: 200..999 as given; anything else becomes 500.
int SanitizeStatus(int status);

// True when `status` never carries a body (204, 304).
bool StatusHasNoBody(int status);

struct HeadSpec {
  int status = 200;
  const std::vector<Header>* headers = nullptr;  // the caller's; framing names are dropped
  Framing framing = Framing::kLength;
  size_t content_length = 0;       // with kLength
  bool close = false;              // "connection: close"
  bool http10_keep_alive = false;  // "connection: keep-alive" for an HTTP/1.0 client
};

// "HTTP/1.1 200 OK\r\n" ... "\r\n": the status line, the caller's headers (names the server
// owns -- content-length, transfer-encoding, connection, date -- dropped; CR, LF and NUL in
// names and values replaced by spaces), date, framing and connection headers, blank line.
std::string ResponseHead(const HeadSpec& spec);

// "1a\r\n": the line before a chunk of `size` bytes (the chunk is followed by "\r\n").
std::string ChunkPrefix(size_t size);
inline constexpr std::string_view kChunkSuffix = "\r\n";
inline constexpr std::string_view kLastChunk = "0\r\n\r\n";
inline constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

// The default ServerOptions::error_response: text/plain, the message and a newline.
Response DefaultErrorResponse(int status, std::string_view message);

}  // namespace tessera::http::wire
