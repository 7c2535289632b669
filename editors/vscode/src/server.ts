// Finding nixops4-lsp: the `nixops4.server.path` setting, else the binary bundled with the
// extension, else `nixops4-lsp` on PATH; and checking that it runs (`--version`). No VS Code
// API, so the unit tests run it under plain Node.
import { execFile } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

export type Source = 'setting' | 'bundled' | 'PATH';

export interface Found {
  path: string;
  source: Source;
}

function executable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

/**
 * Where the server is, or why it is not found. A set but wrong setting is an error, not
 * a reason to fall back silently.
 */
export function findServer(setting: string, extensionPath: string, searchPath: string): Found | { error: string } {
  if (setting.trim() !== '') {
    return executable(setting)
      ? { path: setting, source: 'setting' }
      : { error: `nixops4.server.path is set to ${setting}, which is not an executable file` };
  }
  const bundled = path.join(extensionPath, 'bin', 'nixops4-lsp');
  if (executable(bundled)) {
    return { path: bundled, source: 'bundled' };
  }
  for (const directory of searchPath.split(path.delimiter)) {
    if (directory === '') {
      continue;
    }
    const candidate = path.join(directory, 'nixops4-lsp');
    if (executable(candidate)) {
      return { path: candidate, source: 'PATH' };
    }
  }
  return { error: 'nixops4-lsp was not found: set nixops4.server.path, or put nixops4-lsp on PATH' };
}

/** `nixops4-lsp 0.1.0`, or an error saying what went wrong. */
export function serverVersion(file: string, timeoutMs = 10000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, ['--version'], { timeout: timeoutMs }, (error, stdout, stderr) => {
      const version = stdout.trim();
      if (error || !version.startsWith('nixops4-lsp ')) {
        reject(new Error(`${file} --version failed: ${error?.message ?? ''} ${stderr.trim()}`.trim()));
      } else {
        resolve(version);
      }
    });
  });
}
