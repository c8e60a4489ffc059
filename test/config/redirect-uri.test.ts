import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkRedirectUri } from '../../src/config/redirect-uri.ts';

const good = [
  'http://localhost:8045/oauth2callback',
  'http://localhost/oauth2callback',
  'http://127.0.0.1:8045/oauth2callback',
  'http://127.0.0.2/oauth2callback',
  'http://[::1]:8045/oauth2callback',
  'https://gateway.example.com/oauth2callback',
  'https://gateway.example.com:8443/base/oauth2callback',
  'https://localhost/oauth2callback',
  'https://gateway.example.com/oauth2callback?from=grantpool',
  'https://gateway.example.com/a%20b/oauth2callback',
  'https://gateway.example.com/.well-known/oauth2callback',
  'https://gateway.example.com/x..y/oauth2callback',
];

test('good redirect URIs pass every rule', () => {
  for (const uri of good) assert.equal(checkRedirectUri(uri), null, uri);
});

/** One rule: every URI in `bad` breaks it, and the message names it. */
function rule(name: string, mention: RegExp, bad: string[]) {
  test(`rule: ${name}`, () => {
    for (const uri of bad) {
      const message = checkRedirectUri(uri);
      assert.ok(message, `${JSON.stringify(uri)} should be refused`);
      assert.match(message, mention, `${JSON.stringify(uri)}: ${message}`);
      assert.ok(!message.includes('\n'), 'one line');
    }
  });
}

rule('https unless the host is localhost or a loopback IP', /must use https/, [
  'http://gateway.example.com/oauth2callback',
  'http://localhost.example.com/oauth2callback',
  'ftp://gateway.example.com/oauth2callback',
]);

rule('no raw IP host except loopback', /raw IP address/, [
  'https://192.168.1.10/oauth2callback',
  'https://8.8.8.8:8443/oauth2callback',
  'https://[2001:db8::1]/oauth2callback',
  'https://10.0.0.1/oauth2callback',
]);

rule('no userinfo', /userinfo/, [
  'https://user@gateway.example.com/oauth2callback',
  'https://user:pass@gateway.example.com/oauth2callback',
  'http://admin@localhost:8045/oauth2callback',
]);

rule('no fragment', /fragment/, [
  'https://gateway.example.com/oauth2callback#top',
  'https://gateway.example.com/oauth2callback#',
]);

rule('no path traversal, also percent-encoded', /path traversal/, [
  'https://gateway.example.com/a/../oauth2callback',
  'https://gateway.example.com/a\\..\\oauth2callback',
  'https://gateway.example.com/a/%2e%2e/oauth2callback',
  'https://gateway.example.com/a%2F..%2Foauth2callback',
  'https://gateway.example.com/a%5c%2E%2E/oauth2callback',
  'http://localhost:8045/..',
]);

rule('no wildcard', /wildcard/, [
  'https://*.example.com/oauth2callback',
  'https://gateway.example.com/*/oauth2callback',
]);

rule('no non-printable characters', /non-printable/, [
  'https://gateway.example.com/oauth2\u0001callback',
  'https://gateway.example.com/oauth2callback\n',
  'https://gateway.example.com/oauth2\tcallback',
  'https://gateway.example.com/oauth2\u007fcallback',
]);

rule('no invalid percent-encoding', /invalid percent-encoding/, [
  'https://gateway.example.com/oauth2callback%',
  'https://gateway.example.com/oauth%g2callback',
  'https://gateway.example.com/oauth2callback?x=%zz',
]);

rule('no encoded NUL', /NUL/, [
  'https://gateway.example.com/oauth2callback%00',
  'https://gateway.example.com/oauth2callback?x=%c0%80',
  'https://gateway.example.com/oauth2callback%C0%80',
]);

test('not a URI at all', () => {
  assert.match(checkRedirectUri('oauth2callback') ?? '', /not an absolute URI/);
  assert.match(checkRedirectUri('https:oauth2callback') ?? '', /no host/);
});
