// Unit tests of the extension's pure modules (compiled to out/ by `npm run compile`):
// how the server's plans show, and how the server is found and checked.
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const { dotted, hasChanges, operationsOf, rows, status } = require('../out/plan');
const { findServer, serverVersion } = require('../out/server');

// A plan as nixops4/plan answers it: the server labels each resource and sums the plan up.
const result = {
  deployment: 'default',
  flake: '/work',
  summary: { create: 1, update: 0, replace: 0, delete: 0, unchanged: 1 },
  summaryText: '+1 ~0 -/+0 -0',
  operations: [],
  scripts: [['backup']],
  plan: {
    deployment: 'default',
    fingerprint: 'f',
    resources: [
      { resource: ['host', 'odd.name'], type: 'local.file', action: 'create', changes: [], inputsKnown: false, waitingFor: [['a']], position: null, label: '+ create, waiting for resources.a' },
      { resource: ['a'], type: 'local.file', action: 'noChange', changes: [], inputsKnown: true, waitingFor: [], position: null, label: 'no changes' },
    ],
    problems: [{ resource: ['bad'], message: 'no contents yet', position: null }],
  },
};

test('the plan view and the status bar show what the server says, not a label of their own', () => {
  assert.deepStrictEqual(
    rows(result).map((row) => [row.label, row.description]),
    [
      ['host."odd.name"', '+ create, waiting for resources.a'],
      ['a', 'no changes'],
      ['bad', 'cannot be evaluated: no contents yet'],
    ],
  );
  assert.deepStrictEqual(status(result), {
    text: '$(rocket) NixOps4 +1 ~0 -/+0 -0',
    tooltip: 'Deployment default has changes to apply: show the plan',
  });
  const applied = { ...result, summary: { create: 0, update: 0, replace: 0, delete: 0, unchanged: 2 }, summaryText: '+0 ~0 -/+0 -0' };
  assert.strictEqual(status(applied).tooltip, 'Deployment default is up to date');
  assert.strictEqual(hasChanges(applied.summary), false);
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
