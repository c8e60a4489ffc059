// The golden files' bad requests: each must be a 400 HttpError naming the problem (shared by the door tests).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Door } from '../../src/proxy/door.ts';
import { HttpError } from '../../src/http/http-util.ts';

export function testBadRequests(cases: { name: string; request: unknown; message: string }[], newDoor: () => Door): void {
  for (const c of cases) {
    test(`bad request is a clear 400: ${c.name}`, () => {
      assert.throws(() => newDoor().parseRequest(c.request), (e: unknown) => {
        assert.ok(e instanceof HttpError, String(e));
        assert.equal(e.status, 400);
        assert.ok(e.message.includes(c.message), `${e.message} should include ${c.message}`);
        return true;
      });
    });
  }
}
