/**
 * Issue 18's "a store outage and recovery each produce exactly one log line
 * per process and flip `wgjit_store_up`", on real parts: a redis-server
 * stopped under a running process and started again on the same port
 * (empty), for `wgjit api` (bin/wgjit, JSON log on stdout) and for the
 * gateway daemon (`wgjit run` with wireguard-go and XDP in a testbed).
 * Also: the API's request lines show a query's parameter names, never
 * their values.
 *
 *   wgjit api ── 127.0.0.1:<free port> redis-server (stopped, started again)
 *
 *   sou-gw: wireguard-go sougw0, wgjit run ── redis-server 127.0.0.1:6379 (stopped, started again)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nsRun } from '../../harness/testbed/exec.js';
import { startStack, type Stack } from '../../harness/testbed/stack.js';
import { createTestbed, type Testbed } from '../../harness/testbed/topology.js';
import { startRedis, waitFor, type TestRedis } from '../support/redis.js';
import { BIN } from '../support/wgjit.js';

const TOKEN = 'store-outage-test-token-0123456789';
/** Generous bounds for what happens within a second or two: waited for, never asserted. */
const WAIT_MS = 15_000;
const LOST = 'peer store unreachable';
const BACK = 'peer store reachable again';

interface LogLine {
  level: string;
  msg: string;
  component?: string;
  err?: string;
  downSeconds?: number;
  listen?: string;
  req?: { url?: string };
}

/** The store gauges in a /metrics text. */
function storeGauges(text: string): { up: number; lastSuccess: number } {
  const value = (name: string) => {
    const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
    if (m === null) throw new Error(`no ${name} in /metrics`);
    return Number(m[1]);
  };
  return { up: value('wgjit_store_up'), lastSuccess: value('wgjit_store_last_success_timestamp_seconds') };
}

/** The store's loss and recovery lines among `lines`. */
const storeLines = (lines: LogLine[], msg: string) => lines.filter((l) => l.component === 'store' && l.msg === msg);

/**
 * The outage every process goes through: stop the store, wait for
 * `wgjit_store_up 0`, start it again, wait for `wgjit_store_up 1` and the
 * recovery line; then exactly one loss line (naming the reason) and one
 * recovery line, and the last success advanced.
 */
async function outage(opts: { metrics: () => Promise<string>; lines: () => LogLine[]; stop: () => Promise<void>; start: () => Promise<void>; reason: RegExp }): Promise<void> {
  const { metrics, lines } = opts;
  expect(storeGauges(await metrics()).up).toBe(1);
  expect(storeLines(lines(), LOST)).toEqual([]);

  await opts.stop();
  const down = await waitFor('wgjit_store_up 0', WAIT_MS, async () => {
    const g = storeGauges(await metrics());
    return g.up === 0 ? g : undefined;
  });
  expect(down.lastSuccess).toBeGreaterThan(0);
  const lost = await waitFor('the loss line', WAIT_MS, async () => storeLines(lines(), LOST)[0]);
  expect(lost.level).toBe('warn');
  expect(lost.err).toMatch(opts.reason);

  await opts.start();
  const up = await waitFor('wgjit_store_up 1', WAIT_MS, async () => {
    const g = storeGauges(await metrics());
    return g.up === 1 ? g : undefined;
  });
  const back = await waitFor('the recovery line', WAIT_MS, async () => storeLines(lines(), BACK)[0]);
  expect(back.level).toBe('info');
  expect(back.downSeconds).toBeGreaterThan(0);
  expect(up.lastSuccess).toBeGreaterThan(down.lastSuccess);

  // Many reconnect attempts failed in between (every 100 ms … 1 s), on every connection of the store: one line each way.
  expect(storeLines(lines(), LOST)).toHaveLength(1);
  expect(storeLines(lines(), BACK)).toHaveLength(1);
  expect(storeLines(lines(), 'peer store connected')).toHaveLength(1); // at start only
}

describe('wgjit api across a store outage', () => {
  let dir: string;
  let redis: TestRedis | null = null;
  let port: number;
  let child: ChildProcess | undefined;
  let exited: Promise<number | null>;
  const lines: LogLine[] = [];
  let stderr = '';
  let url: string;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'wgjit-store-outage-'));
    const tokenFile = path.join(dir, 'token');
    writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
    redis = await startRedis();
    port = redis.port;
    child = spawn(BIN, ['api', '--redis', redis.url, '--api-listen', '127.0.0.1:0', '--api-token-file', tokenFile], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    exited = new Promise((r) => child!.once('exit', (code) => r(code)));
    createInterface({ input: child.stdout! }).on('line', (line) => lines.push(JSON.parse(line) as LogLine));
    const listen = await waitFor('wgjit api to listen', WAIT_MS, async () => {
      if (child!.exitCode !== null) throw new Error(`wgjit api exited (${child!.exitCode}): ${stderr}`);
      return lines.find((l) => l.msg.startsWith('API listening'))?.listen;
    });
    url = `http://${listen}`;
  });

  afterAll(async () => {
    if (child !== undefined && child.exitCode === null) {
      child.kill('SIGTERM');
      await exited;
    }
    await redis?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('logs one loss line naming the reason and one recovery line, and /metrics flips wgjit_store_up', async () => {
    await outage({
      metrics: async () => (await fetch(`${url}/metrics`)).text(),
      lines: () => lines,
      stop: async () => {
        await redis!.stop();
        redis = null;
      },
      start: async () => {
        redis = await startRedis({ port });
      },
      reason: /ECONNREFUSED 127\.0\.0\.1:\d+/,
    });
    expect(child!.exitCode).toBeNull();
  });

  it("logs a request's query with its parameter names and none of its values", async () => {
    const auth = { authorization: `Bearer ${TOKEN}` };
    const sent = [
      '/v1/peers?token=abc123secret&psk=xyz',
      // Refused before any route: no token, an unknown route.
      '/v1/peers?psk=xyz&token=abc123secret',
      '/v1/nowhere?token=abc123secret&psk=xyz',
    ];
    await fetch(`${url}${sent[0]}`, { headers: auth });
    await fetch(`${url}${sent[1]}`);
    await fetch(`${url}${sent[2]}`, { headers: auth });
    const requests = await waitFor('the three request lines', WAIT_MS, async () => {
      const seen = lines.filter((l) => l.msg === 'incoming request' && l.req?.url?.startsWith('/v1/'));
      return seen.length >= 3 ? seen : undefined;
    });
    expect(requests.map((l) => l.req?.url)).toEqual([
      '/v1/peers?token=[redacted]&psk=[redacted]',
      '/v1/peers?psk=[redacted]&token=[redacted]',
      '/v1/nowhere?token=[redacted]&psk=[redacted]',
    ]);
    // Wait for each request's last line, then look at the whole log.
    await waitFor('the requests to complete', WAIT_MS, async () => (lines.filter((l) => l.msg === 'request completed').length >= 3 ? true : undefined));
    const text = lines.map((l) => JSON.stringify(l)).join('\n');
    expect(text).not.toContain('abc123secret');
    expect(text).not.toContain('xyz');
  });

  it('stops on SIGTERM with nothing on stderr', async () => {
    child!.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(stderr).toBe('');
  });
});

describe('wgjit run (the gateway daemon) across a store outage', () => {
  let tb: Testbed;
  let stack: Stack;

  beforeAll(async () => {
    tb = await createTestbed({ prefix: 'sou', clients: 0, gatewayWg: true, underlayOctet: 113 });
    stack = await startStack(tb);
  }, 60_000);

  afterAll(async () => {
    await stack?.stop();
    await tb?.destroy();
  });

  it('logs one loss line naming the reason and one recovery line, and /metrics flips wgjit_store_up', async () => {
    const lines = () => stack.logs.map((l) => JSON.parse(l) as LogLine);
    await outage({
      metrics: async () => (await nsRun(tb.gatewayNs, 'curl', ['-sS', `${stack.apiUrl}/metrics`])).stdout,
      lines,
      stop: () => stack.stopRedis(),
      start: () => stack.startRedis(),
      reason: /ECONNREFUSED 127\.0\.0\.1:6379/,
    });
    expect(stack.daemon.isRunning()).toBe(true);
  });
});
