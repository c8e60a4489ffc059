// Gemini API 403s about the account's project: the reason names the project, Google's message and the fix.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isProjectErrorReason, projectErrorReason } from '../../src/projects/project-errors.ts';
import { classifyUpstream } from '../../src/proxy/upstream-errors.ts';

const account = { email: 'ann@example.com', projectId: 'ann-proj' };

function body(reason: string, message: string, metadata: Record<string, string>) {
  return JSON.stringify({
    error: { code: 403, message, status: 'PERMISSION_DENIED', details: [{ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason, domain: 'googleapis.com', metadata }] },
  });
}

test('USER_PROJECT_DENIED: the reason names the project, Google\'s message, the IAM page and the CLI fix', () => {
  const text = body('USER_PROJECT_DENIED', 'Caller does not have required permission to use project ann-proj.', { consumer: 'projects/ann-proj', service: 'generativelanguage.googleapis.com' });
  const o = classifyUpstream(403, text, 0, { account });
  assert.equal(o.kind, 'forbidden');
  const reason = (o as { reason: string }).reason;
  assert.match(reason, /^USER_PROJECT_DENIED for project ann-proj: Caller does not have required permission/);
  assert.match(reason, /https:\/\/console\.cloud\.google\.com\/iam-admin\/iam\?project=ann-proj/);
  assert.match(reason, /grantpool accounts project ann@example.com/);
  assert.ok(isProjectErrorReason(reason));
});

test('SERVICE_DISABLED for the account\'s project: the fix is `--enable P`', () => {
  const text = body('SERVICE_DISABLED', 'Generative Language API has not been used in project 123 before or it is disabled.', {
    consumer: 'projects/123', service: 'generativelanguage.googleapis.com', activationUrl: 'https://console.developers.google.com/apis/api/generativelanguage.googleapis.com/overview?project=123',
  });
  const reason = (classifyUpstream(403, text, 0, { account }) as { reason: string }).reason;
  assert.match(reason, /^SERVICE_DISABLED for project ann-proj: Generative Language API has not been used/);
  assert.match(reason, /`grantpool accounts project ann@example.com --enable ann-proj`/);
  assert.match(reason, /overview\?project=123/);
});

test('a 403 about something the request names stays a client error; other account-level 403s keep their old reason', () => {
  const named = JSON.stringify({ error: { code: 403, message: 'You do not have permission to access the File abc or it may not exist.', status: 'PERMISSION_DENIED' } });
  assert.equal(classifyUpstream(403, named, 0, { account }).kind, 'client_error');
  const scope = body('ACCESS_TOKEN_SCOPE_INSUFFICIENT', 'Request had insufficient authentication scopes.', { service: 'generativelanguage.googleapis.com' });
  const o = classifyUpstream(403, scope, 0, { account }) as { kind: string; reason: string };
  assert.equal(o.kind, 'forbidden');
  assert.ok(!isProjectErrorReason(o.reason));
  assert.equal(projectErrorReason({ reason: 'SERVICE_DISABLED', message: 'x', metadata: { service: 'aiplatform.googleapis.com' } }, account), null);
  assert.ok(!isProjectErrorReason('manual'));
});
