/**
 * HTTP as clients send it, through real curl against a real `bin/wgjit api`
 * (after `make`) on a real redis-server: a DELETE that says
 * Content-Type: application/json with no body, a wrong method, an
 * oversized body; and its audit lines.
 *
 *   curl ──HTTP──▶ bin/wgjit api ──▶ redis-server
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatKey, publicKeyOf } from '../../src/handshake/keys.js';
import { generatePrivateKey } from '../../harness/noise/keys.js';
import { DEFAULT_BODY_LIMIT } from '../../src/api/app.js';
import { startRedis, waitFor, type TestRedis } from '../support/redis.js';
import { BIN } from '../support/wgjit.js';

const TOKEN = 'http-test-token-0123456789';
const newKey = () => formatKey(publicKeyOf(generatePrivateKey()));
const LOG_WAIT_MS = 10_000;
const run = promisify(execFile);

interface LogLine {
  msg: string;
  listen?: string;
  audit?: string;
  tokenId?: string;
  [field: string]: unknown;
}

/** `bin/wgjit api` with `args`, once it says where it listens; its log lines as they come. */
async function startApi(args: string[]) {
  const child: ChildProcess = spawn(BIN, ['api', ...args], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: LogLine[] = [];
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  createInterface({ input: child.stdout! }).on('line', (line) => lines.push(JSON.parse(line) as LogLine));
  const listen = await waitFor('wgjit api to listen', LOG_WAIT_MS, async () => {
    if (child.exitCode !== null) throw new Error(`wgjit api exited (${child.exitCode}): ${stderr}`);
    return lines.find((l) => l.msg.startsWith('API listening'))?.listen;
  });
  const metricsListen = args.includes('--metrics-listen')
    ? await waitFor('wgjit api to serve metrics', LOG_WAIT_MS, async () => lines.find((l) => l.msg.startsWith('metrics listening'))?.listen)
    : undefined;
  return {
    url: `http://${listen}`,
    metricsUrl: metricsListen === undefined ? undefined : `http://${metricsListen}`,
    lines,
    stop: async () => {
      child.kill('SIGTERM');
      return exited;
    },
  };
}

/** curl: the status, the headers (lower-case names) and the body. */
async function curl(args: string[]): Promise<{ status: number; headers: Record<string, string>; body: string }> {
  const { stdout } = await run('curl', ['-sS', '-i', ...args]);
  const [head, ...rest] = stdout.split('\r\n\r\n');
  const [statusLine, ...headerLines] = head!.split('\r\n');
  const headers = Object.fromEntries(headerLines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
  return { status: Number(statusLine!.split(' ')[1]), headers, body: rest.join('\r\n\r\n') };
}

describe('HTTP through curl against bin/wgjit api', () => {
  let redis: TestRedis;
  let dir: string;
  let api: Awaited<ReturnType<typeof startApi>>;
  const auth = ['-H', `Authorization: Bearer ${TOKEN}`];

  beforeAll(async () => {
    redis = await startRedis();
    dir = mkdtempSync(path.join(os.tmpdir(), 'wgjit-http-'));
    const tokenFile = path.join(dir, 'token');
    writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
    api = await startApi(['--redis', redis.url, '--api-listen', '127.0.0.1:0', '--metrics-listen', '127.0.0.1:0', '--api-token-file', tokenFile]);
  });

  afterAll(async () => {
    await api?.stop();
    await redis?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('curl -X DELETE -H "Content-Type: application/json" with no body deletes the peer (204), then 404', async () => {
    const key = newKey();
    const created = await curl([...auth, '-H', 'Content-Type: application/json', '-d', JSON.stringify({ publicKey: key, allowedIPs: ['10.0.0.2/32'] }), `${api.url}/v1/peers`]);
    expect(created.status, created.body).toBe(201);
    const url = `${api.url}/v1/peers/${encodeURIComponent(key)}`;
    const del = await curl([...auth, '-X', 'DELETE', '-H', 'Content-Type: application/json', url]);
    expect(del.status, del.body).toBe(204);
    expect((await curl([...auth, url])).status).toBe(404);
  });

  it('PUT on a peer → 405 with Allow; an oversized body → 413 naming the limit', async () => {
    const key = encodeURIComponent(newKey());
    const put = await curl([...auth, '-X', 'PUT', '-H', 'Content-Type: application/json', '-d', '{}', `${api.url}/v1/peers/${key}`]);
    expect(put.status).toBe(405);
    expect(put.headers.allow).toBe('GET, HEAD, PATCH, DELETE');
    expect(JSON.parse(put.body).error.code).toBe('method_not_allowed');
    const big = JSON.stringify({ publicKey: newKey(), allowedIPs: ['10.0.0.2/32'], pad: 'x'.repeat(DEFAULT_BODY_LIMIT) });
    const file = path.join(dir, 'big.json');
    writeFileSync(file, big);
    const over = await curl([...auth, '-H', 'Content-Type: application/json', '--data-binary', `@${file}`, `${api.url}/v1/peers`]);
    expect(over.status).toBe(413);
    expect(JSON.parse(over.body).error).toEqual({ code: 'payload_too_large', message: expect.stringContaining(String(DEFAULT_BODY_LIMIT)) });
  });

  it('--metrics-listen serves /metrics, /healthz and /readyz without a token, and no /v1 route (404, not 401); the API is unchanged', async () => {
    const metrics = api.metricsUrl!;
    expect(metrics).not.toBe(api.url);
    const scrape = await curl([`${metrics}/metrics`]);
    expect(scrape.status).toBe(200);
    expect(scrape.body).toMatch(/^process_cpu_seconds_total /m);
    expect((await curl([`${metrics}/healthz`])).status).toBe(200);
    expect(JSON.parse((await curl([`${metrics}/readyz`])).body)).toEqual({ ready: true, checks: { store: true } });
    for (const args of [[`${metrics}/v1/peers`], [...auth, `${metrics}/v1/peers`]]) {
      const res = await curl(args);
      expect(res.status).toBe(404);
      expect(JSON.parse(res.body).error.code).toBe('not_found');
    }
    // The main listener: /v1 with the token as before, 401 without; its /metrics still open.
    expect((await curl([...auth, `${api.url}/v1/peers`])).status).toBe(200);
    expect((await curl([`${api.url}/v1/peers`])).status).toBe(401);
    expect((await curl([`${api.url}/metrics`])).status).toBe(200);
  });
});
