/**
 * Helpers for integration tests that need network namespaces.
 *
 * A test process cannot enter a namespace itself (Node has no setns), so
 * the part that must live inside one runs as a child: `ip netns exec NS
 * node --import tsx` with a snippet of ESM code. The snippet may import the
 * project's TypeScript (absolute paths under REPO_ROOT, `.js` suffix as in
 * src/) and talks to the test in JSON lines:
 *
 *   child → test:  emit({ type: 'ready', ... })   (one JSON object per line)
 *   test → child:  child.send({ cmd: 'stop' })      arrives as `commands`:
 *                  `for await (const line of commands)` (stdin is only read
 *                  once a child iterates it, so a child that never does
 *                  exits by itself when its work is done)
 *
 * emit() turns bigints into decimal strings and Uint8Arrays into hex.
 *
 *   const child = NsChild.spawn('xa-gw', `
 *     import { XdpCapture } from '${REPO_ROOT}/src/capture/addon.js';
 *     emit({ type: 'ready' });
 *   `);
 *   const ready = await child.next((m) => m.type === 'ready');
 *   await child.stop();
 *
 * Name namespaces and interfaces with your helper tag, and always call
 * deleteNamespaces (and child.stop) in afterAll.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** How long next() waits for a message before failing with the child's stderr. */
export const DEFAULT_WAIT_MS = 15_000;

export type Message = Record<string, unknown> & { type?: string };

export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/** Runs a command, returns stdout; throws with stderr on a non-zero exit. */
export function run(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')}: ${e.stderr?.trim() || e.message}`);
  }
}

export function ip(...args: string[]): string {
  return run('ip', args);
}

/** `ip -n NS ...`: an ip command inside a namespace. */
export function ipIn(ns: string, ...args: string[]): string {
  return run('ip', ['-n', ns, ...args]);
}

/** Creates the namespaces (removing leftovers of an earlier run first), loopback up. */
export function createNamespaces(...names: string[]): void {
  deleteNamespaces(...names);
  for (const ns of names) {
    ip('netns', 'add', ns);
    ipIn(ns, 'link', 'set', 'lo', 'up');
  }
}

/** Deletes the namespaces that exist; never throws (cleanup path). */
export function deleteNamespaces(...names: string[]): void {
  for (const ns of names) {
    try {
      ip('netns', 'del', ns);
    } catch {
      /* absent */
    }
  }
}

export interface VethPair {
  nsA: string;
  ifA: string;
  nsB: string;
  ifB: string;
  /** CIDRs for each side, e.g. ['10.201.0.1/24', 'fd00:201::1/64']; IPv6 gets nodad. */
  addrsA: string[];
  addrsB: string[];
}

/** A veth pair between two namespaces, addressed and up. */
export function createVeth(p: VethPair): void {
  ip('link', 'add', p.ifA, 'netns', p.nsA, 'type', 'veth', 'peer', 'name', p.ifB, 'netns', p.nsB);
  for (const [ns, dev, addrs] of [
    [p.nsA, p.ifA, p.addrsA],
    [p.nsB, p.ifB, p.addrsB],
  ] as const) {
    for (const a of addrs) ipIn(ns, 'addr', 'add', a, 'dev', dev, ...(a.includes(':') ? ['nodad'] : []));
    ipIn(ns, 'link', 'set', dev, 'up');
  }
}

const PREAMBLE = `
import { createInterface as __wgjitReadline } from 'node:readline';
const emit = (msg) => process.stdout.write(JSON.stringify(msg, function (key, value) {
  const raw = this[key];
  if (raw instanceof Uint8Array) return Buffer.from(raw).toString('hex');
  return typeof value === 'bigint' ? value.toString() : value;
}) + '\\n');
let __wgjitCommands = null;
const commands = { [Symbol.asyncIterator]() {
  __wgjitCommands ??= __wgjitReadline({ input: process.stdin });
  return __wgjitCommands[Symbol.asyncIterator]();
} };
process.on('uncaughtException', (err) => { emit({ type: 'error', message: String(err && err.stack || err) }); process.exit(1); });
`;

export class NsChild {
  /** Every message received so far, in order. */
  readonly messages: Message[] = [];
  #stderr = '';
  #consumed = new Set<number>();
  #waiters: Array<() => void> = [];
  #exit: Promise<number | null>;
  #exited = false;

  private constructor(readonly proc: ChildProcess) {
    let buf = '';
    proc.stdout!.setEncoding('utf8');
    proc.stdout!.on('data', (chunk: string) => {
      buf += chunk;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.trim() === '') continue;
        try {
          this.messages.push(JSON.parse(line) as Message);
        } catch {
          this.messages.push({ type: 'stdout', line });
        }
        this.#wake();
      }
    });
    proc.stderr!.setEncoding('utf8');
    proc.stderr!.on('data', (chunk: string) => {
      this.#stderr += chunk;
    });
    this.#exit = new Promise((res) => {
      proc.on('exit', (code) => {
        this.#exited = true;
        this.#wake();
        res(code);
      });
    });
  }

  /** Runs `code` (ESM; may import project TypeScript) under `ip netns exec ns`. */
  static spawn(ns: string, code: string, env: Record<string, string> = {}): NsChild {
    const proc = spawn('ip', ['netns', 'exec', ns, process.execPath, '--import', 'tsx', '--input-type=module', '-e', PREAMBLE + code], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    return new NsChild(proc);
  }

  get stderr(): string {
    return this.#stderr;
  }

  #wake(): void {
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
  }

  /**
   * The first message not yet returned by next() that matches; waits for it.
   * Rejects if the child exits or nothing matches within timeoutMs.
   */
  async next<T extends Message = Message>(match: (m: Message) => boolean, timeoutMs = DEFAULT_WAIT_MS): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.messages.findIndex((m, idx) => !this.#consumed.has(idx) && match(m));
      if (i >= 0) {
        this.#consumed.add(i);
        return this.messages[i] as T;
      }
      const err = this.messages.find((m) => m.type === 'error');
      if (err) throw new Error(`child failed: ${String(err['message'])}\n${this.#stderr}`);
      if (this.#exited) throw new Error(`child exited before the expected message\n${this.#stderr}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no matching message from child within ${timeoutMs} ms; got ${JSON.stringify(this.messages)}\n${this.#stderr}`);
      await new Promise<void>((res) => {
        const t = setTimeout(res, left);
        this.#waiters.push(() => {
          clearTimeout(t);
          res();
        });
      });
    }
  }

  /** Sends one JSON line to the child's `commands`. */
  send(msg: unknown): void {
    this.proc.stdin!.write(JSON.stringify(msg) + '\n');
  }

  /** Waits for the child to exit by itself. */
  exited(): Promise<number | null> {
    return this.#exit;
  }

  /** Ends the child (SIGTERM, then SIGKILL) and waits for it. Safe to call twice. */
  async stop(): Promise<number | null> {
    if (!this.#exited) {
      this.proc.stdin!.end();
      this.proc.kill('SIGTERM');
      const t = setTimeout(() => this.proc.kill('SIGKILL'), 3000);
      await this.#exit;
      clearTimeout(t);
    }
    return this.#exit;
  }
}
