// End-to-end test of the extension in real VS Code (code-server) driven in headless
// Chromium by Playwright: in a trusted workspace, completion of an input from the suggest
// widget, a plan code lens and the plan's summary in the status bar, a saved edit that adds
// a resource (the status bar then shows the new plan), Apply from the lens, the lens
// turning to "no changes" and the status bar with it, the files existing, and a script run
// from its lens with the output it declares; in an untrusted one, completion works and no
// apply or script is offered. Takes the screenshots under
// docs/screenshots as it goes. Run by e2e/run.sh, which installs
// code-server, Node 24 and Chromium.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(process.env.E2E_MODULES + '/');
const { chromium } = require('playwright-core');

const codeServer = process.env.CODE_SERVER;
const vsix = process.env.VSIX;
const lsp = process.env.NIXOPS4_LSP;
const screenshots = process.env.SCREENSHOTS;
const deadlineMs = Number(process.env.E2E_DEADLINE_MS ?? 120000);

function deployment(directory) {
  fs.mkdirSync(directory, { recursive: true });
  fs.writeFileSync(
    path.join(directory, 'flake.nix'),
    `{
  outputs = { self }: {
    nixops4Deployments.default = { resources, ... }: {
      resources.greeting = {
        type = "local.file";
        inputs = {
          name = "hello.txt";
          contents = "Hello from NixOps4";

        };
      };
      # resources.second = { type = "local.file"; inputs = { name = "second.txt"; contents = "Hello again"; }; };
      scripts.copy = { program = "/bin/sh"; args = [ "-c" "cp $GREETING copied.txt" ]; outputs.GREETING = resources.greeting.path; };
    };
  };
}
`,
  );
}

async function until(what, condition) {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const value = await condition();
    if (value) {
      return value;
    }
    if (Date.now() > end) {
      throw new Error(`timed out waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

async function session(name, trusted, check) {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), `nixops4-e2e-${name}-`));
  const workspace = path.join(root, 'deployment');
  const userData = path.join(root, 'user-data');
  const extensions = path.join(root, 'extensions');
  deployment(workspace);
  fs.mkdirSync(path.join(userData, 'User'), { recursive: true });
  fs.writeFileSync(
    path.join(userData, 'User', 'settings.json'),
    JSON.stringify({
      'nixops4.server.path': lsp,
      'security.workspace.trust.enabled': !trusted,
      'security.workspace.trust.startupPrompt': 'never',
      'workbench.startupEditor': 'none',
      'workbench.tips.enabled': false,
      'extensions.ignoreRecommendations': true,
      'editor.codeLens': true,
      'files.autoSave': 'off',
    }),
  );
  execFileSync(codeServer, ['--install-extension', vsix, '--user-data-dir', userData, '--extensions-dir', extensions], { stdio: 'inherit' });
  const port = 20000 + Math.floor(Math.random() * 20000);
  fs.writeFileSync(path.join(root, 'config.yaml'), `bind-addr: 127.0.0.1:${port}\nauth: none\ncert: false\n`);
  const server = spawn(
    codeServer,
    ['--config', path.join(root, 'config.yaml'), '--user-data-dir', userData, '--extensions-dir', extensions, '--disable-telemetry', '--disable-update-check', '--disable-getting-started-override', workspace],
    { stdio: ['ignore', 'inherit', 'inherit'] },
  );
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
  });
  try {
    await until('code-server', async () => {
      try {
        return (await fetch(`http://127.0.0.1:${port}/healthz`)).ok;
      } catch {
        return false;
      }
    });
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await page.goto(`http://127.0.0.1:${port}/?folder=${encodeURIComponent(workspace)}`);
    await page.waitForSelector('.monaco-workbench', { timeout: deadlineMs });
    // Open flake.nix from the Explorer.
    await until('flake.nix to open', async () => {
      const entry = page.locator('.explorer-folders-view .monaco-list-row', { hasText: 'flake.nix' });
      if ((await entry.count()) > 0) {
        await entry.first().click();
      }
      return (await page.locator('.editor-group-container .monaco-editor .view-lines').count()) > 0;
    });
    await page.locator('.editor-group-container .monaco-editor .view-lines').first().click();
    try {
      await check(page, workspace);
    } catch (error) {
      // What the page showed when it failed, for whoever reads the log.
      const shot = path.join(os.tmpdir(), `nixops4-e2e-${name}-failure.png`);
      await page.screenshot({ path: shot });
      console.error(`the ${name} session failed; the page then: ${shot}; lenses: ${JSON.stringify(await lensTexts(page))}; status: ${JSON.stringify(await statusText(page))}`);
      throw error;
    }
  } finally {
    await browser.close();
    server.kill();
  }
}

/** Types `mo` on the empty line of the inputs and waits for the suggest widget to offer
 * `mode` (asking again while the server may still be starting); then undoes the typing. */
async function completeInputs(page) {
  const labels = await until('input completion', async () => {
    await page.keyboard.press('Escape');
    await page.keyboard.press('Control+G');
    await page.keyboard.type('9');
    await page.keyboard.press('Enter');
    await page.keyboard.press('End');
    await page.keyboard.type('mo');
    const rows = page.locator('.suggest-widget .monaco-list-row');
    try {
      await rows.first().waitFor({ timeout: 3000 });
    } catch {
      await page.keyboard.press('Control+Space');
      try {
        await rows.first().waitFor({ timeout: 3000 });
      } catch {
        await page.keyboard.press('Backspace');
        await page.keyboard.press('Backspace');
        return false;
      }
    }
    const texts = await rows.allInnerTexts();
    if (!texts.some((label) => label.includes('mode'))) {
      await page.keyboard.press('Escape');
      await page.keyboard.press('Backspace');
      await page.keyboard.press('Backspace');
      return false;
    }
    return texts;
  });
  return labels;
}

/** Closes the suggestions, removes the typed `mo`, and waits until the server's
 * diagnostics of the half-typed text are gone. */
async function undoTyping(page) {
  await page.keyboard.press('Escape');
  await page.keyboard.press('Backspace');
  await page.keyboard.press('Backspace');
  await until('the problems to clear', async () => {
    const problems = await page.locator('[id="status.problems"]').innerText();
    return !/[1-9]/.test(problems);
  });
}

function lensTexts(page) {
  return page.locator('.codelens-decoration').allInnerTexts();
}

/** The NixOps4 item of the status bar, or '' while there is none. */
async function statusText(page) {
  const item = page.locator('.statusbar-item', { hasText: /NixOps4 \+/ });
  return (await item.count()) > 0 ? (await item.first().innerText()).trim() : '';
}

async function untilStatus(page, summary) {
  await until(`the status bar to say ${summary}`, async () => (await statusText(page)).endsWith(summary));
}

/** Uncomments `resources.second` (line 12) and saves. */
async function addSecondResourceAndSave(page) {
  await page.keyboard.press('Escape');
  await page.keyboard.press('Control+G');
  await page.keyboard.type('12');
  await page.keyboard.press('Enter');
  await page.keyboard.press('Home');
  await page.keyboard.press('Delete');
  await page.keyboard.press('Delete');
  await page.keyboard.press('Control+S');
}

await session('trusted', true, async (page, workspace) => {
  await completeInputs(page);
  await page.screenshot({ path: path.join(screenshots, 'vscode-1-completion.png') });
  await undoTyping(page);
  await until('the plan lens', async () => (await lensTexts(page)).some((t) => t.includes('+ create')));
  await untilStatus(page, '+1 ~0 -/+0 -0');
  // The status bar follows the plan made after the save, not the one from before it.
  await addSecondResourceAndSave(page);
  await until('the lenses of two resources', async () => {
    const lenses = await lensTexts(page);
    return lenses.filter((t) => t.includes('+ create')).length === 2 && lenses.some((t) => t.includes('(+2 ~0 -/+0 -0)'));
  });
  await untilStatus(page, '+2 ~0 -/+0 -0');
  await page.screenshot({ path: path.join(screenshots, 'vscode-2-plan-lens.png') });
  await page.locator('.codelens-decoration a', { hasText: 'Apply deployment' }).first().click();
  await until('the lenses to say no changes', async () => {
    const lenses = await lensTexts(page);
    return lenses.filter((t) => t.includes('no changes')).length === 2 && lenses.some((t) => t.includes('(+0 ~0 -/+0 -0)'));
  });
  // An apply from the lens, which the extension did not start: the status bar follows too.
  await untilStatus(page, '+0 ~0 -/+0 -0');
  await page.screenshot({ path: path.join(screenshots, 'vscode-3-applied.png') });
  // The script's lens: it runs with the path of the file just created.
  await page.locator('.codelens-decoration a', { hasText: 'Run script `copy`' }).first().click();
  await until('the script to copy the file', async () => fs.existsSync(path.join(workspace, 'copied.txt')));
  for (const [file, contents] of [['hello.txt', 'Hello from NixOps4'], ['second.txt', 'Hello again'], ['copied.txt', 'Hello from NixOps4']]) {
    const created = fs.readFileSync(path.join(workspace, file), 'utf8');
    if (created !== contents) {
      throw new Error(`${file} holds ${JSON.stringify(created)}`);
    }
  }
  console.log('trusted: completion, plan lens and status bar, after a save, apply from the lens, no changes after, a script from its lens: ok');
});

await session('untrusted', false, async (page, workspace) => {
  await completeInputs(page);
  await undoTyping(page);
  // The server answered completion, so it answered the lens request made at open too.
  const lenses = await lensTexts(page);
  if (lenses.some((t) => t.includes('Apply') || t.includes('Run script'))) {
    throw new Error(`an untrusted workspace offers apply or a script: ${lenses}`);
  }
  await page.screenshot({ path: path.join(screenshots, 'vscode-4-untrusted.png') });
  if (fs.existsSync(path.join(workspace, 'hello.txt'))) {
    throw new Error('an untrusted workspace applied');
  }
  console.log('untrusted: completion works, no apply or script offered: ok');
});
