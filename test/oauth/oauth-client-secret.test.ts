// The Google client file, and the plain-words explanations of OAuth errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ClientSecretError,
  listsRedirectUri,
  readClientSecretFile,
  validateClientSecretJson,
} from '../../src/oauth/client-secret.ts';
import { explainOAuthError, OAuthFlowError, cleanDescription } from '../../src/oauth/errors.ts';

const web = {
  web: {
    client_id: '1234-abc.apps.googleusercontent.com',
    project_id: 'my-project',
    auth_uri: 'https://accounts.google.com/o/oauth2/auth',
    token_uri: 'https://oauth2.googleapis.com/token',
    auth_provider_x509_cert_url: 'https://www.googleapis.com/oauth2/v1/certs',
    client_secret: 'GOCSPX-abcdefghijklmnop',
    redirect_uris: ['http://localhost:8045/oauth2callback'],
  },
};

function invalid(text: string, mention: RegExp) {
  assert.throws(
    () => validateClientSecretJson(text),
    (e: ClientSecretError) => {
      assert.ok(e instanceof ClientSecretError);
      assert.equal(e.code, 'invalid');
      assert.match(e.message, mention);
      assert.match(e.fix, /Web application/);
      assert.ok(!e.message.includes('GOCSPX-abcdefghijklmnop'), 'never echoes the secret');
      return true;
    },
  );
}

test('a "web" client file as the Cloud console downloads it', () => {
  const s = validateClientSecretJson(JSON.stringify(web));
  assert.deepEqual(s, {
    kind: 'web',
    client_id: '1234-abc.apps.googleusercontent.com',
    client_secret: 'GOCSPX-abcdefghijklmnop',
    redirect_uris: ['http://localhost:8045/oauth2callback'],
    auth_uri: 'https://accounts.google.com/o/oauth2/auth',
    token_uri: 'https://oauth2.googleapis.com/token',
  });
  assert.equal(listsRedirectUri(s, 'http://localhost:8045/oauth2callback'), true);
  assert.equal(listsRedirectUri(s, 'http://localhost:9000/oauth2callback'), false);
});

test('an "installed" (desktop) client file, also with a BOM and without redirect_uris', () => {
  const s = validateClientSecretJson('\uFEFF' + JSON.stringify({ installed: { client_id: 'd.apps.googleusercontent.com', client_secret: 's3cret' } }));
  assert.equal(s.kind, 'installed');
  assert.deepEqual(s.redirect_uris, []);
  assert.equal(listsRedirectUri(s, 'http://localhost:8045/oauth2callback'), null);
});

test('invalid client files say exactly what is wrong', () => {
  invalid('{"web": {', /not valid JSON/);
  invalid('[1,2]', /JSON object/);
  invalid(JSON.stringify({ other: {} }), /neither a "web" nor an "installed" section.*"other"/);
  invalid(JSON.stringify({ type: 'service_account', private_key: 'x' }), /service account key/);
  invalid(JSON.stringify({ web: { ...web.web, client_secret: undefined } }), /"web\.client_secret" is missing/);
  invalid(JSON.stringify({ web: { ...web.web, client_id: '  ' } }), /"web\.client_id" is empty/);
  invalid(JSON.stringify({ web: { ...web.web, redirect_uris: 'http://localhost' } }), /"web\.redirect_uris"/);
});

test('reading the file: missing, a directory, or valid', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'grantpool-cs-'));
  try {
    const path = join(dir, 'client_secret.json');
    await assert.rejects(readClientSecretFile(path), (e: ClientSecretError) => {
      assert.equal(e.code, 'missing');
      assert.ok(e.message.includes(path), 'names the path');
      assert.match(e.message, /Credentials/);
      assert.match(e.message, /GRANTPOOL_CLIENT_SECRET_FILE/);
      return true;
    });
    await mkdir(join(dir, 'adir'));
    await assert.rejects(readClientSecretFile(join(dir, 'adir')), (e: ClientSecretError) => e.code === 'invalid' && /directory/.test(e.message));
    await writeFile(path, JSON.stringify(web));
    assert.equal((await readClientSecretFile(path)).client_id, web.web.client_id);
    await writeFile(path, '{}');
    await assert.rejects(readClientSecretFile(path), (e: ClientSecretError) => e.code === 'invalid' && e.message.includes(path));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('every error Google sends has its own explanation and fix', () => {
  const generic = explainOAuthError('never-heard-of-it');
  for (const code of ['access_denied', 'admin_policy_enforced', 'disallowed_useragent', 'org_internal', 'invalid_client', 'invalid_grant', 'redirect_uri_mismatch', 'invalid_request']) {
    const e = explainOAuthError(code, { redirectUri: 'https://gw.example.com/oauth2callback', clientId: 'cid.apps.googleusercontent.com' });
    assert.notEqual(e.title, generic.title, code);
    assert.ok(e.explanation.length > 20 && e.fix.length > 20, code);
  }
  const mismatch = explainOAuthError('redirect_uri_mismatch', { redirectUri: 'https://gw.example.com/oauth2callback', clientId: 'cid.apps.googleusercontent.com' });
  assert.match(mismatch.explanation, /https:\/\/gw\.example\.com\/oauth2callback/);
  assert.match(mismatch.fix, /Authorized redirect URIs/);
  assert.match(mismatch.fix, /Credentials/);
  assert.match(explainOAuthError('org_internal').fix, /External/);
  assert.match(explainOAuthError('admin_policy_enforced').fix, /administrator/);
  assert.match(explainOAuthError('disallowed_useragent').fix, /regular browser/);
  assert.match(explainOAuthError('invalid_client').fix, /client_secret\.json/);
});

test('unknown errors: a generic explanation that shows Google\'s code and description, safely', () => {
  const e = new OAuthFlowError('weird<script>', { description: 'something odd' });
  assert.equal(e.code, 'weirdscript');
  assert.match(e.message, /something odd/);
  assert.deepEqual(Object.keys(e.toJSON()).sort(), ['description', 'error', 'fix', 'message', 'title']);
  assert.equal(cleanDescription('token abcdefghijkl leaked\n', ['abcdefghijkl']), 'token [redacted] leaked');
  assert.equal(cleanDescription('x'.repeat(2000), [], 800).length, 800);
});
