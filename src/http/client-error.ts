// Answers for requests node:http could not parse (the 'clientError' event):
// a short JSON body with the reason, 431 for oversize headers, 408 for a
// request that took too long to arrive, 400 for anything else malformed.
import type { Duplex } from 'node:stream';

interface ParseFailure {
  status: number;
  reason: string;
  code: string;
  message: string;
}

/** What to answer for a parser error code of node:http (llhttp's HPE_* codes and Node's own). */
function clientErrorAnswer(code: string | undefined, timeoutMessage: string): ParseFailure {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW':
      return { status: 431, reason: 'Request Header Fields Too Large', code: 'headers_too_large', message: 'the request headers are larger than the gateway accepts' };
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return { status: 408, reason: 'Request Timeout', code: 'request_timeout', message: timeoutMessage };
    case 'HPE_INVALID_METHOD':
      return { status: 400, reason: 'Bad Request', code: 'malformed_request', message: 'the request method is not valid HTTP' };
    case 'HPE_INVALID_URL':
      return { status: 400, reason: 'Bad Request', code: 'malformed_request', message: 'the request target is not a valid URL path' };
    case 'HPE_INVALID_HEADER_TOKEN':
    case 'HPE_INVALID_CONTENT_LENGTH':
    case 'HPE_UNEXPECTED_CONTENT_LENGTH':
    case 'HPE_INVALID_TRANSFER_ENCODING':
      return { status: 400, reason: 'Bad Request', code: 'malformed_request', message: 'a request header is not valid HTTP' };
    case 'HPE_INVALID_CHUNK_SIZE':
      return { status: 400, reason: 'Bad Request', code: 'malformed_request', message: 'the chunked request body is not valid' };
    default:
      return { status: 400, reason: 'Bad Request', code: 'malformed_request', message: 'the request is not valid HTTP' };
  }
}

/** The 'clientError' listener: answers once on a writable socket, else closes it; a timeout is told with `timeoutMessage` (which limits apply). */
export function answerClientError(err: Error & { code?: string }, socket: Duplex, timeoutMessage: string): void {
  // A reset or closed connection has no one left to answer.
  if (err.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const a = clientErrorAnswer(err.code, timeoutMessage);
  const body = JSON.stringify({ error: { code: a.code, message: a.message } });
  socket.end(
    `HTTP/1.1 ${a.status} ${a.reason}\r\nconnection: close\r\ncontent-type: application/json; charset=utf-8\r\n` +
      `cache-control: no-store\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}
