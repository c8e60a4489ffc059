// The deployment files start Grantpool the way bin/node-flags.js says it is
// started (docker and systemd cannot run here; this keeps them from drifting).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { NODE_ENV, NODE_FLAGS } from '../../bin/node-flags.js';

const root = join(import.meta.dirname, '..', '..');
const read = (p: string) => readFileSync(join(root, p), 'utf8');

test('the Dockerfile runs the gateway as a non-root user with the Node flags, and checks /healthz', () => {
  const docker = read('Dockerfile');
  const cmd = JSON.parse(/^CMD (\[.*\])$/m.exec(docker)![1]!) as string[];
  assert.deepEqual(cmd, ['node', ...NODE_FLAGS, 'bin/grantpool.js', 'serve']);
  for (const [k, v] of Object.entries(NODE_ENV)) assert.match(docker, new RegExp(`\\b${k}=${v}\\b`));
  assert.match(docker, /^USER node$/m);
  assert.match(docker, /^HEALTHCHECK [\s\S]*127\.0\.0\.1:8045\/healthz/m);
  assert.match(docker, /npm ci --omit=dev/);
});

test('the systemd unit starts the gateway with the Node flags', () => {
  const unit = read('deploy/grantpool.service');
  assert.match(unit, new RegExp(`^ExecStart=/usr/bin/node ${NODE_FLAGS.join(' ')} bin/grantpool\\.js serve$`, 'm'));
  for (const [k, v] of Object.entries(NODE_ENV)) assert.match(unit, new RegExp(`^Environment=${k}=${v}$`, 'm'));
  assert.match(unit, /^User=grantpool$/m);
});

test('compose.yaml runs two gateways on one PostgreSQL behind one public URL', () => {
  const compose = read('compose.yaml');
  for (const service of ['postgres', 'gateway-a', 'gateway-b']) assert.match(compose, new RegExp(`^  ${service}:`, 'm'));
  assert.match(compose, /GRANTPOOL_DATABASE_URL: postgres:\/\/grantpool:\$\{POSTGRES_PASSWORD\}@postgres:5432\/grantpool/);
  assert.match(compose, /GRANTPOOL_PUBLIC_URL: \$\{GRANTPOOL_PUBLIC_URL:\?/);
  assert.match(compose, /condition: service_healthy/);
});
