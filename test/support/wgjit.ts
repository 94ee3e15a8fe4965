/** The real `bin/wgjit` (it runs the build in dist/: `make` first), for tests of the CLI as operators run it. */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const BIN = path.join(ROOT, 'bin/wgjit');

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs bin/wgjit with only the given environment (and PATH), so the runner's WGJIT_* cannot leak in; `stdin` is written and closed. */
export function wgjit(args: string[], env: Record<string, string> = {}, stdin?: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(BIN, args, { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env }, stdio: [stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    if (stdin !== undefined) child.stdin!.end(stdin);
  });
}
