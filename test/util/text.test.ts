// Messages from Google shown in the dashboard and logs: cut to a length, on one line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { oneLine, truncate } from '../../src/util/text.ts';

test('truncate keeps a string that fits and cuts a longer one to max characters ending in an ellipsis', () => {
  assert.equal(truncate('abcde', 5), 'abcde');
  assert.equal(truncate('abcdef', 5), 'abcd…');
  assert.equal(truncate('abcdef', 5).length, 5);
});

test('oneLine folds white space and line breaks into single spaces before cutting', () => {
  assert.equal(oneLine('  Permission\n\n  denied\ton   project  ', 300), 'Permission denied on project');
  assert.equal(oneLine('a\n'.repeat(10), 5), 'a a …');
});
