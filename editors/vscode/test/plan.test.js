// Unit tests of the extension's pure modules (compiled to out/ by `npm run compile`):
// how plans read, and how the server is found and checked.
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const { dotted, hasChanges, operationsOf, resourceLabel, summaryText } = require('../out/plan');
const { findServer, serverVersion } = require('../out/server');

const planned = (action, changes = [], extra = {}) => ({
  resource: ['a'],
  type: 'local.file',
  action,
  changes,
  inputsKnown: true,
  waitingFor: [],
  ...extra,
});

test('labels say what happens to a resource, as the server\'s lenses do', () => {
  assert.strictEqual(resourceLabel(planned('create')), '+ create');
  assert.strictEqual(
    resourceLabel(planned('update', [{ input: 'contents', forcesReplacement: false }, { input: 'mode', forcesReplacement: false }])),
    '~ update: contents, mode',
  );
  assert.strictEqual(
    resourceLabel(planned('replace', [{ input: 'name', forcesReplacement: true }, { input: 'mode', forcesReplacement: false }])),
    '-/+ replace: name',
  );
  assert.strictEqual(resourceLabel(planned('delete')), '- delete');
  assert.strictEqual(resourceLabel(planned('noChange')), 'no changes');
  assert.strictEqual(
    resourceLabel(planned('update', [], { inputsKnown: false, waitingFor: [['host', 'key']] })),
    '~ update, waiting for resources.host.key',
  );
});

test('summaries and paths', () => {
  const summary = { create: 2, update: 1, replace: 0, delete: 0 };
  assert.strictEqual(summaryText(summary), '+2 ~1 -/+0 -0');
  assert.strictEqual(hasChanges(summary), true);
  assert.strictEqual(hasChanges({ create: 0, update: 0, replace: 0, delete: 0 }), false);
  assert.strictEqual(dotted(['host', 'odd.name']), 'host."odd.name"');
});

test('operations are found by exact path', () => {
  const operations = [{ resource: ['a.b'], operations: ['x'] }, { resource: ['a', 'b'], operations: ['backup'] }];
  assert.deepStrictEqual(operationsOf(operations, ['a', 'b']), ['backup']);
  assert.deepStrictEqual(operationsOf(operations, ['a.b']), ['x']);
  assert.deepStrictEqual(operationsOf(operations, ['c']), []);
});

test('the server is found from the setting, then the bundle, then PATH', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'nixops4-vscode-'));
  const onPath = path.join(root, 'path');
  const extension = path.join(root, 'extension');
  fs.mkdirSync(onPath);
  fs.mkdirSync(path.join(extension, 'bin'), { recursive: true });
  const script = '#!/bin/sh\necho "nixops4-lsp 9.9.9"\n';
  fs.writeFileSync(path.join(onPath, 'nixops4-lsp'), script, { mode: 0o755 });
  assert.deepStrictEqual(findServer('', extension, onPath), { path: path.join(onPath, 'nixops4-lsp'), source: 'PATH' });
  fs.writeFileSync(path.join(extension, 'bin', 'nixops4-lsp'), script, { mode: 0o755 });
  assert.deepStrictEqual(findServer('', extension, onPath).source, 'bundled');
  assert.deepStrictEqual(findServer(path.join(onPath, 'nixops4-lsp'), extension, '').source, 'setting');
  // A wrong setting is reported, not silently replaced.
  assert.match(findServer('/nowhere/nixops4-lsp', extension, onPath).error, /not an executable file/);
  assert.match(findServer('', path.join(root, 'none'), '').error, /not found/);
});

test('the server\'s version is checked', async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'nixops4-vscode-'));
  const good = path.join(root, 'good');
  const bad = path.join(root, 'bad');
  fs.writeFileSync(good, '#!/bin/sh\necho "nixops4-lsp 1.2.3"\n', { mode: 0o755 });
  fs.writeFileSync(bad, '#!/bin/sh\necho "something else" >&2\nexit 3\n', { mode: 0o755 });
  assert.strictEqual(await serverVersion(good), 'nixops4-lsp 1.2.3');
  await assert.rejects(serverVersion(bad), /--version failed.*something else/s);
  const real = process.env.NIXOPS4_LSP;
  assert.ok(real, 'NIXOPS4_LSP names the built nixops4-lsp (scripts/test.sh sets it)');
  assert.match(await serverVersion(real), /^nixops4-lsp \d+\.\d+\.\d+$/);
});
