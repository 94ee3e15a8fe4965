/**
 * The wgjit side of a testbed: a private redis-server (or a store the
 * caller runs: StackOptions.redisUrl) and the wgjit daemon
 * (and, asked for, a `wgjit api` control plane), all inside the gateway
 * namespace, plus a way to run the wgjit CLI there.
 * Used by `wgjit demo`, the end-to-end tests and the benchmarks, and for
 * each gateway of a fleet (fleet.ts).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nsRun, spawnIn, waitFor, type RunResult, type Spawned } from './exec.js';
import type { Testbed } from './topology.js';

const REPO = resolve(fileURLToPath(import.meta.url), '../../..');
export const CLI = join(REPO, 'bin/wgjit');
export const REDIS_PORT = 6379;
export const API_PORT = 9180;
/** `wgjit api`, the store-only control plane, when StackOptions.controlPlane asks for one. */
export const CONTROL_API_PORT = 9181;
export const START_TIMEOUT_MS = 20_000;

/** What a stack needs of its gateway: a testbed (topology.ts) is one, and so is each gateway of a fleet. */
export type StackHost = Pick<Testbed, 'gatewayNs' | 'gateway' | 'uplink' | 'gatewayAddress'>;

/**
 * A throwaway redis-server in `ns` (no persistence, its files in `dir`),
 * listening on `bind`:`port`; resolves once it accepts connections.
 * Protected mode is off: without a password it answers only clients from
 * 127.0.0.1 and ::1 (DENIED to anyone else, even on an address of lo), and
 * a fleet's gateways reach their Redis from other namespaces.
 */
export async function startRedisServer(ns: string, bind: string, port: number, dir: string): Promise<Spawned> {
  const proc = spawnIn(ns, 'redis-server', ['--port', String(port), '--bind', bind, '--protected-mode', 'no', '--save', '', '--appendonly', 'no', '--dir', dir]);
  let out = '';
  proc.child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
  await waitFor('redis-server to accept connections', () => out.includes('Ready to accept connections') || !proc.isRunning(), START_TIMEOUT_MS);
  if (!proc.isRunning()) throw new Error(`redis-server exited: ${proc.stderrTail()}`);
  return proc;
}

export interface StackOptions {
  /** Extra `wgjit run` flags, e.g. ['--replay', 'off']. */
  runArgs?: string[];
  /** Serve the API on the gateway's underlay address (reachable from clients) instead of loopback. */
  apiOnUnderlay?: boolean;
  logLevel?: string;
  /** Every line the daemon logs (JSON). */
  onLog?: (line: string) => void;
  /** Also run `wgjit api` (store routes only) on CONTROL_API_PORT: a fleet's central API, which reaches gateways only through the store. */
  controlPlane?: boolean;
  /**
   * A store the caller runs, as `--redis` takes it, reachable from the
   * gateway namespace (a Sentinel set or a Cluster started there): the
   * stack then starts no redis-server, and stopRedis/startRedis refuse.
   */
  redisUrl?: string;
}

export interface Stack {
  readonly token: string;
  readonly apiUrl: string;
  readonly redisUrl: string;
  /** The daemon now running (a new one after startDaemon). */
  readonly daemon: Spawned;
  /** Every log line the daemon printed so far. */
  readonly logs: string[];
  /** One REST call from inside the gateway namespace (the API listens there): the status and the parsed body. */
  api(method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }>;
  /** The same through the control plane (StackOptions.controlPlane). */
  controlApi(method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }>;
  /** Runs the wgjit CLI in the gateway namespace against this daemon. */
  cli(args: string[]): Promise<RunResult>;
  /** Stops the daemon (SIGTERM, or SIGKILL: no cleanup at all) and starts a new one: for restart tests. */
  stopDaemon(signal?: 'SIGTERM' | 'SIGKILL'): Promise<void>;
  startDaemon(): Promise<void>;
  /** Stops redis (its data is lost) or starts a fresh one on the same port: for store-outage tests. Not with StackOptions.redisUrl. */
  stopRedis(): Promise<void>;
  startRedis(): Promise<void>;
  /** Stops the control plane, the daemon (SIGTERM) and redis. Idempotent. */
  stop(): Promise<void>;
}

export async function startStack(tb: StackHost, opts: StackOptions = {}): Promise<Stack> {
  if (tb.gateway === null) throw new Error('startStack needs a testbed built with gatewayWg');
  const dir = mkdtempSync(join(tmpdir(), 'wgjit-stack-'));
  const token = randomBytes(24).toString('base64url');
  const tokenFile = join(dir, 'api-token');
  writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });

  const startRedis = () => startRedisServer(tb.gatewayNs, '127.0.0.1', REDIS_PORT, dir);
  let redis: Spawned | null = null;
  const stopRedis = async () => {
    await redis?.kill();
    redis = null;
  };
  const apiHost = opts.apiOnUnderlay ? tb.gatewayAddress : '127.0.0.1';
  const apiUrl = `http://${apiHost}:${API_PORT}`;
  const redisUrl = opts.redisUrl ?? `redis://127.0.0.1:${REDIS_PORT}`;
  const ownRedis = () => {
    if (opts.redisUrl !== undefined) throw new Error('the stack runs no redis-server of its own (StackOptions.redisUrl): stop or start the caller\'s store instead');
  };
  const logs: string[] = [];
  let partial = '';
  /** Whether host:port in the gateway namespace accepts connections (bash's /dev/tcp: no HTTP client needed). */
  const listening = (host: string, port: number) =>
    nsRun(tb.gatewayNs, 'bash', ['-c', `exec 3<>/dev/tcp/${host}/${port}`]).then(
      () => true,
      () => false,
    );
  // curl, not node: under emulation a node process costs seconds to start.
  const authHeader = join(dir, 'auth-header');
  writeFileSync(authHeader, `authorization: Bearer ${token}\n`, { mode: 0o600 });
  /** One REST call from inside the gateway namespace: the status and the parsed body. */
  const call = async (baseUrl: string, method: string, path: string, body?: unknown) => {
    const args = ['-sS', '-X', method, '-H', `@${authHeader}`, '-w', '\n%{http_code}', baseUrl + path];
    if (body !== undefined) args.push('-H', 'content-type: application/json', '--data-binary', '@-');
    const out = (await nsRun(tb.gatewayNs, 'curl', args, body === undefined ? {} : { input: JSON.stringify(body) })).stdout;
    const cut = out.lastIndexOf('\n');
    const text = out.slice(0, cut);
    return { status: Number(out.slice(cut + 1)), body: text === '' ? null : (JSON.parse(text) as unknown) };
  };
  let daemon = null as Spawned | null;
  const startDaemon = async (): Promise<Spawned> => {
    const d = spawnIn(tb.gatewayNs, CLI, [
      'run',
      '--interface', tb.gateway!.ifname,
      '--capture-dev', tb.uplink,
      '--redis', redisUrl,
      '--api-listen', `${apiHost}:${API_PORT}`,
      '--api-token-file', tokenFile,
      '--log-level', opts.logLevel ?? 'info',
      ...(opts.runArgs ?? []),
    ], {
      onStdout: (chunk) => {
        const lines = (partial + chunk).split('\n');
        partial = lines.pop()!;
        for (const line of lines) {
          logs.push(line);
          opts.onLog?.(line);
        }
      },
    });
    daemon = d;
    await waitFor('the wgjit daemon to serve its API', async () => !d.isRunning() || (await listening(apiHost, API_PORT)), START_TIMEOUT_MS, 100);
    if (!d.isRunning()) throw new Error(`wgjit run exited: ${d.stderrTail()}${logs.slice(-5).join('\n')}`);
    return d;
  };
  let control = null as Spawned | null;
  const startControlPlane = async (): Promise<Spawned> => {
    const c = spawnIn(tb.gatewayNs, CLI, ['api', '--redis', redisUrl, '--api-listen', `127.0.0.1:${CONTROL_API_PORT}`, '--api-token-file', tokenFile, '--log-level', 'warn']);
    control = c;
    await waitFor('wgjit api to serve', async () => !c.isRunning() || (await listening('127.0.0.1', CONTROL_API_PORT)), START_TIMEOUT_MS, 100);
    if (!c.isRunning()) throw new Error(`wgjit api exited: ${c.stderrTail()}`);
    return c;
  };
  try {
    if (opts.redisUrl === undefined) redis = await startRedis();
    await startDaemon();
    if (opts.controlPlane) await startControlPlane();
  } catch (err) {
    await control?.kill();
    await daemon?.kill();
    await stopRedis();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }

  let stopped: Promise<void> | null = null;
  return {
    token,
    apiUrl,
    redisUrl,
    get daemon() {
      return daemon!;
    },
    logs,
    stopRedis: async () => {
      ownRedis();
      await stopRedis();
    },
    startRedis: async () => {
      ownRedis();
      if (redis === null) redis = await startRedis();
    },
    stopDaemon: async (signal = 'SIGTERM') => {
      const d = daemon!;
      if (signal === 'SIGKILL' && d.isRunning()) process.kill(d.pid, 'SIGKILL');
      await d.kill();
    },
    startDaemon: async () => {
      if (daemon?.isRunning()) throw new Error('the daemon is running');
      await startDaemon();
    },
    cli: (args) => nsRun(tb.gatewayNs, CLI, args, { env: { ...process.env, WGJIT_API: apiUrl, WGJIT_API_TOKEN: token } }),
    api: (method, path, body) => call(apiUrl, method, path, body),
    controlApi: (method, path, body) => {
      if (control === null) throw new Error('no control plane: start the stack with controlPlane: true');
      return call(`http://127.0.0.1:${CONTROL_API_PORT}`, method, path, body);
    },
    stop: () =>
      (stopped ??= (async () => {
        await control?.kill();
        await daemon?.kill();
        await stopRedis();
        rmSync(dir, { recursive: true, force: true });
      })()),
  };
}
