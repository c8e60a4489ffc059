import { createHash } from 'node:crypto';

/** SHA-256 of a string's UTF-8 bytes. */
export function sha256(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}
