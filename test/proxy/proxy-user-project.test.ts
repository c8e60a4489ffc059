// Every Gemini API call for an account with a project carries
// `x-goog-user-project: <project>` (Google bills and meters that project);
// an account without one sends no such header. The stand-in refuses a token
// bound to a project when the header is missing or names another project.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { GoogleGenAI } from '@google/genai';
import { startProxy, type FakePool, type Harness } from '../support/proxy-harness.ts';

let h: Harness & { fake: FakePool | null };
let google: Server;
let googleSeen: IncomingMessage['headers'][] = [];

before(async () => {
  google = createServer((req, res) => {
    googleSeen.push(req.headers);
    req.resume();
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"ok":true}');
  });
  await new Promise<void>((r) => google.listen(0, '127.0.0.1', r));
  h = await startProxy({ accounts: [], googleApiBaseUrl: `http://127.0.0.1:${(google.address() as AddressInfo).port}` });
});
after(async () => {
  await h.close();
  google.closeAllConnections();
  await new Promise<void>((r) => google.close(() => r()));
});

/** Every call a door makes to the Gemini API, through the official SDKs. */
async function everyCall(): Promise<void> {
  const openai = new OpenAI({ apiKey: 'k', baseURL: `${h.url}/v1`, maxRetries: 0 });
  const anthropic = new Anthropic({ apiKey: 'k', baseURL: h.url, maxRetries: 0 });
  const ai = new GoogleGenAI({ apiKey: 'k', httpOptions: { baseUrl: h.url } });
  const r = await openai.chat.completions.create({ model: 'gemini-2.5-flash', messages: [{ role: 'user', content: 'hi' }] });
  assert.match(r.choices[0]!.message.content!, /Echo: hi/);
  let streamed = '';
  for await (const c of await openai.chat.completions.create({ model: 'gemini-2.5-flash', stream: true, messages: [{ role: 'user', content: 'stream' }] })) {
    streamed += c.choices[0]?.delta?.content ?? '';
  }
  assert.match(streamed, /Echo: stream/);
  const m = await anthropic.messages.create({ model: 'claude-sonnet-4-6', max_tokens: 64, messages: [{ role: 'user', content: 'hello' }] });
  assert.equal(m.content[0]!.type, 'text');
  const s = await anthropic.messages.stream({ model: 'claude-sonnet-4-6', max_tokens: 64, messages: [{ role: 'user', content: 'hello' }] }).finalMessage();
  assert.equal(s.stop_reason, 'end_turn');
  const ct = await anthropic.messages.countTokens({ model: 'claude-sonnet-4-6', messages: [{ role: 'user', content: 'count me' }] });
  assert.ok(ct.input_tokens > 0);
  const g = await ai.models.generateContent({ model: 'gemini-2.5-flash', contents: 'native' });
  assert.equal(g.text, 'Echo: native');
  let gs = '';
  for await (const c of await ai.models.generateContentStream({ model: 'gemini-2.5-flash', contents: 'native stream' })) gs += c.text ?? '';
  assert.equal(gs, 'Echo: native stream');
  assert.ok(((await ai.models.countTokens({ model: 'gemini-2.5-flash', contents: 'x' })).totalTokens ?? 0) > 0);
  assert.equal((await ai.models.embedContent({ model: 'text-embedding-004', contents: ['e1', 'e2'] })).embeddings?.length, 2);
  const list = await fetch(`${h.url}/v1beta/models`);
  assert.equal(list.status, 200);
}

const ACTIONS = ['generateContent', 'streamGenerateContent', 'countTokens', 'batchEmbedContents', 'list'];

test('an account with a project sends x-goog-user-project on every door call, model list included', async () => {
  const p = h.fake!.add('p', { projectId: 'proj-p' });
  try {
    h.upstream.clearRequests();
    await everyCall();
    const seen = h.upstream.requests;
    for (const action of ACTIONS) assert.ok(seen.some((r) => r.action === action), `a ${action} call was made`);
    for (const r of seen) {
      assert.equal(r.token, p.token);
      assert.equal(r.userProject, 'proj-p', `${r.action} carried the project`);
      assert.equal(r.status, 200, `${r.action} was accepted`);
    }
  } finally {
    h.fake!.accounts.splice(0);
  }
});

test('an account without a project sends no x-goog-user-project', async () => {
  h.fake!.add('n');
  try {
    h.upstream.clearRequests();
    // The model list is cached from the first test: a fresh gateway would fetch it again, this one need not.
    await everyCall();
    assert.ok(h.upstream.requests.length >= ACTIONS.length - 1);
    for (const r of h.upstream.requests) {
      assert.equal(r.userProject, null, `${r.action} sent no project`);
      assert.equal(r.headers['x-goog-user-project'], undefined);
    }
  } finally {
    h.fake!.accounts.splice(0);
  }
});

test("/google pass-through: the account's project unless the client set x-goog-user-project itself", async () => {
  h.fake!.add('g', { projectId: 'proj-g' });
  try {
    googleSeen = [];
    assert.equal((await fetch(`${h.url}/google/drive/v3/about`)).status, 200);
    assert.equal(googleSeen[0]!['x-goog-user-project'], 'proj-g');
    assert.equal((await fetch(`${h.url}/google/drive/v3/about`, { headers: { 'x-goog-user-project': 'client-billing' } })).status, 200);
    assert.equal(googleSeen[1]!['x-goog-user-project'], 'client-billing');
    h.fake!.accounts.splice(0);
    h.fake!.add('h');
    assert.equal((await fetch(`${h.url}/google/drive/v3/about`)).status, 200);
    assert.equal(googleSeen[2]!['x-goog-user-project'], undefined);
    assert.equal((await fetch(`${h.url}/google/drive/v3/about`, { headers: { 'x-goog-user-project': 'client-billing' } })).status, 200);
    assert.equal(googleSeen[3]!['x-goog-user-project'], 'client-billing');
  } finally {
    h.fake!.accounts.splice(0);
  }
});
