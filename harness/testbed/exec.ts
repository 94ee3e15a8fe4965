/**
 * Running commands for the testbed: one-shot commands that fail loudly with
 * their stderr, commands inside a network namespace, and long-running
 * children that die with us. Also the single exit hook every testbed
 * resource registers with, so Ctrl-C leaves no namespace or daemon behind.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';

/** One-shot commands (ip, wg, sysctl) answer in milliseconds; a minute means stuck. */
export const RUN_TIMEOUT_MS = 60_000;
/** How long a child gets to exit after SIGTERM before SIGKILL. */
export const KILL_GRACE_MS = 2_000;
/** ip/wg output is small; a big `wg show dump` of 10,000 peers is ≈ 2 MB. */
const MAX_OUTPUT_BYTES = 64 * 1024 * 1024;

export interface RunResult {
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  input?: string;
  timeoutMs?: number;
}

/** Runs `cmd args`; rejects with the command line, exit status and stderr on failure. */
export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      cmd,
      args,
      {
        env: opts.env ?? process.env,
        timeout: opts.timeoutMs ?? RUN_TIMEOUT_MS,
        maxBuffer: MAX_OUTPUT_BYTES,
        encoding: 'utf8',
      },
      (err, stdout, stderr) => {
        if (err) {
          const status = err.killed ? `killed (${err.signal ?? 'timeout'})` : `exit ${String(err.code ?? err.signal)}`;
          reject(new Error(`command failed (${status}): ${[cmd, ...args].join(' ')}\n${stderr.trim() || err.message}`));
        } else {
          resolve({ stdout, stderr });
        }
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/** `ip netns exec NS cmd args`. */
export function nsRun(ns: string, cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return run('ip', ['netns', 'exec', ns, cmd, ...args], opts);
}

// ------------------------------------------------------------- exit hooks

type Cleanup = () => void;
const cleanups = new Set<Cleanup>();
let hooked = false;

function runCleanups(): void {
  for (const fn of [...cleanups].reverse()) {
    cleanups.delete(fn);
    try {
      fn();
    } catch {
      // Best effort at exit: one failure must not keep the rest from running.
    }
  }
}

function onSignal(signal: NodeJS.Signals): void {
  runCleanups();
  // Only we listen: restore the default action and die by the same signal.
  if (process.listenerCount(signal) === 1) {
    process.removeListener(signal, onSignal);
    process.kill(process.pid, signal);
  }
}

/**
 * Registers a synchronous cleanup run at process exit, SIGINT or SIGTERM.
 * Returns the function that unregisters it (call it once cleaned up normally).
 */
export function onExit(fn: Cleanup): () => void {
  if (!hooked) {
    hooked = true;
    process.on('exit', runCleanups);
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  }
  cleanups.add(fn);
  return () => cleanups.delete(fn);
}

// ------------------------------------------------------- long-running ones

export interface SpawnOptions {
  env?: NodeJS.ProcessEnv;
  /** Called with each stdout / stderr chunk as it arrives. */
  onStdout?: (chunk: string) => void;
  onStderr?: (chunk: string) => void;
}

export interface Spawned {
  readonly pid: number;
  readonly child: ChildProcess;
  /** Settles when the process has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Last few KiB of stderr, for error messages. */
  stderrTail(): string;
  isRunning(): boolean;
  /** SIGTERM, then SIGKILL after KILL_GRACE_MS; resolves once it is gone. Idempotent. */
  kill(): Promise<void>;
}

const STDERR_TAIL_BYTES = 8 * 1024;

/**
 * Starts a long-running command, inside namespace `ns` unless it is null.
 * The child is killed at process exit too, so it never outlives us.
 */
export function spawnIn(ns: string | null, cmd: string, args: readonly string[], opts: SpawnOptions = {}): Spawned {
  const argv = ns === null ? [cmd, ...args] : ['ip', 'netns', 'exec', ns, cmd, ...args];
  const child = spawn(argv[0]!, argv.slice(1), { env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  if (child.pid === undefined) {
    // spawn reports ENOENT asynchronously; make the failure synchronous and clear.
    throw new Error(`could not start ${argv.join(' ')}`);
  }
  const pid = child.pid;
  let tail = '';
  let running = true;
  child.stdout!.setEncoding('utf8');
  child.stderr!.setEncoding('utf8');
  child.stdout!.on('data', (c: string) => opts.onStdout?.(c));
  child.stderr!.on('data', (c: string) => {
    tail = (tail + c).slice(-STDERR_TAIL_BYTES);
    opts.onStderr?.(c);
  });
  const unregister = onExit(() => {
    if (running) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => {
      running = false;
      unregister();
      resolve({ code, signal });
    });
    child.on('error', () => {
      running = false;
      unregister();
      resolve({ code: null, signal: null });
    });
  });
  return {
    pid,
    child,
    exited,
    stderrTail: () => tail,
    isRunning: () => running,
    async kill() {
      if (!running) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => running && child.kill('SIGKILL'), KILL_GRACE_MS);
      await exited;
      clearTimeout(timer);
    },
  };
}

/**
 * In the test VM (software emulation, harness/testbed/vm.ts sets WGJIT_IN_VM)
 * everything starts 10-50× slower: waits for something to come up stretch
 * by this much there. Nothing is asserted on these times.
 */
export const WAIT_SCALE = process.env['WGJIT_IN_VM'] ? 10 : 1;

/** Polls `check` every `intervalMs` until it returns true; throws `what` after `timeoutMs` (× WAIT_SCALE). */
export async function waitFor(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
  intervalMs = 20,
): Promise<void> {
  const limit = timeoutMs * WAIT_SCALE;
  const deadline = Date.now() + limit;
  for (;;) {
    if (await check()) return;
    if (Date.now() >= deadline) throw new Error(`timed out after ${limit} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
