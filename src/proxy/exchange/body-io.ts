// Reading upstream bodies: the start of an error body, the head of a 2xx
// stream (until its first chunk or its first server-sent event, to check it
// before anything is sent to the client), and the pump that forwards the rest
// with backpressure.
import type { ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { SseReader } from '../sse.ts';
import { abortError } from '../upstream-client.ts';

/**
 * The first `limit` bytes of a body (all of it when shorter). A longer body
 * is cut there and the rest is not read (the connection is closed), so a huge
 * error answer is still classified by its status.
 */
export function readPrefix(body: Readable, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const finish = () => {
      body.off('data', onData);
      body.off('end', finish);
      body.off('error', onError);
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    };
    const onData = (c: Buffer) => {
      const room = limit - size;
      if (c.length >= room) {
        chunks.push(c.subarray(0, room));
        size = limit;
        finish();
        body.destroy();
        return;
      }
      chunks.push(c);
      size += c.length;
    };
    const onError = (e: Error) => {
      body.off('data', onData);
      body.off('end', finish);
      reject(e);
    };
    body.on('data', onData);
    body.once('end', finish);
    body.once('error', onError);
  });
}

/** What was read of a 2xx stream before it was handed to the route. */
export interface StreamHead {
  chunks: Buffer[];
  /** The first server-sent event's data (SSE probes only; null when the stream ended without one). */
  firstEvent: string | null;
  /** The body ended while its head was read. */
  ended: boolean;
  /** Set when the head exceeded the size limit. */
  overflow: boolean;
}

export interface HeadOptions {
  /** Read until the first complete server-sent event, not just the first chunk. */
  sse: boolean;
  /** Largest head (an SSE event) accepted, in bytes. */
  maxBytes: number;
  /** Gives up (rejects with a first-byte timeout) when the head is not there within this many ms. */
  timeoutMs: number;
}

/** Reads a stream's head; the body is left paused after it. Rejects on the body's error or the timeout. */
export function readHead(body: Readable, opts: HeadOptions): Promise<StreamHead> {
  return new Promise((resolve, reject) => {
    const head: StreamHead = { chunks: [], firstEvent: null, ended: false, overflow: false };
    let size = 0;
    const reader = opts.sse
      ? new SseReader((data) => {
          if (head.firstEvent === null) head.firstEvent = data;
        }, opts.maxBytes)
      : null;
    const cleanup = () => {
      clearTimeout(timer);
      body.off('data', onData);
      body.off('end', onEnd);
      body.off('error', onError);
    };
    const onData = (c: Buffer) => {
      head.chunks.push(c);
      size += c.length;
      reader?.push(c);
      if (reader && head.firstEvent === null && !reader.overflowed && size <= opts.maxBytes) return;
      head.overflow = reader ? reader.overflowed || (head.firstEvent === null && size > opts.maxBytes) : false;
      cleanup();
      body.pause();
      resolve(head);
    };
    const onEnd = () => {
      cleanup();
      reader?.end();
      head.ended = true;
      resolve(head);
    };
    const onError = (e: Error) => {
      cleanup();
      reject(e);
    };
    const timer = setTimeout(() => {
      cleanup();
      body.destroy();
      reject(Object.assign(new Error('no data within the first-byte timeout'), { code: 'GP_FIRST_DATA_TIMEOUT' }));
    }, opts.timeoutMs);
    body.on('data', onData);
    body.once('end', onEnd);
    body.once('error', onError);
  });
}

/**
 * Forwards a stream's remaining chunks with backpressure; resolves at its
 * end, rejects on its error, and with an AbortError when the client goes away
 * (also while it waits for the client to drain: an upstream body that has
 * already arrived in full is never aborted by undici, so nothing else would
 * end that wait).
 */
export function pump(body: Readable, res: ServerResponse, onChunk: (c: Buffer) => boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    // A paused stream may already have ended (or failed) after its head.
    if (body.errored) return reject(body.errored);
    if (body.readableEnded) return resolve();
    if (body.destroyed) return reject(Object.assign(new Error('upstream stream closed'), { code: 'UND_ERR_SOCKET' }));
    if (res.destroyed) return reject(abortError());
    const onDrain = () => body.resume();
    const done = () => {
      res.off('drain', onDrain);
      res.off('close', onClose);
    };
    const onClose = () => {
      done();
      body.destroy();
      reject(abortError());
    };
    body.on('data', (c: Buffer) => {
      if (!onChunk(c)) {
        body.pause();
        res.once('drain', onDrain);
      }
    });
    body.once('end', () => {
      done();
      resolve();
    });
    body.once('error', (e) => {
      done();
      reject(e);
    });
    res.once('close', onClose);
    body.resume();
  });
}
