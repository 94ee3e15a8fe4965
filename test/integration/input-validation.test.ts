/**
 * Inputs no client can use, refused with a 400 naming the problem and
 * nothing stored (issue 18, item 4), on a real redis-server:
 *
 *   buildApp as `wgjit api` ──inject──▶ POST /v1/peers, PATCH, POST /v1/peers/batch
 *   buildApp as `wgjit run` (its own interface's key and addresses)
 *   bin/wgjit peer import ──HTTP──▶ the `wgjit api` app, listening
 *   Presence ──heartbeat──▶ redis-server ◀── both apps read the fleet's list
 *   bin/wgjit api / run with a bad token: exit 2 before anything starts
 *
 * Gateway g1's heartbeat (a real Presence, written into Redis) carries its
 * interface wg-g1, its public key and its addresses 10.77.0.1 and fd77::1;
 * the `wgjit run` app is gateway g0, wg-g0, 10.66.0.1.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { buildApp } from '../../src/api/app.js';
import { PeerStore } from '../../src/authorize/store.js';
import { formatKey, publicKeyOf } from '../../src/handshake/keys.js';
import { LOW_ORDER_KEYS } from '../../src/handshake/low-order.js';
import { Gateways } from '../../src/fleet/gateways.js';
import { Presence } from '../../src/fleet/presence.js';
import { parseAddress, type IpAddress } from '../../src/net/address.js';
import { generatePrivateKey } from '../../harness/noise/keys.js';
import { startRedis, type TestRedis } from '../support/redis.js';
import { BIN, ROOT, wgjit, type Run } from '../support/wgjit.js';

const TOKEN = 'input-validation-token-0123456789';
const AUTH = { authorization: `Bearer ${TOKEN}` };
const newKey = () => formatKey(publicKeyOf(generatePrivateKey()));
const G0_KEY = newKey();
const G1_KEY = newKey();

function address(text: string): IpAddress {
  const r = parseAddress(text);
  if (!r.ok) throw new Error(r.message);
  return r.address;
}

interface ErrorBody {
  error: { code: string; message: string };
}

let redis: TestRedis;
let store: PeerStore;
let raw: Redis;
let presence: Presence;
/** `wgjit api`: the store routes, the fleet's gateways from the store. */
let api: FastifyInstance;
/** `wgjit run`: the same, and its own interface's key and addresses. */
let gateway: FastifyInstance;
let dir: string;

const call = (app: FastifyInstance, o: InjectOptions) => app.inject({ ...o, headers: { ...AUTH, ...(o.headers ?? {}) } });
/** Records in the store's index, over every group. */
async function stored(): Promise<number> {
  let n = 0;
  for (const index of await raw.keys('wgjit:{*}:peers')) n += await raw.zcard(index);
  return n;
}

/** A 400 bad_request whose message is `message`, and no record for `key`, in the store or through the API. */
async function expectRefused(res: { statusCode: number; json: () => unknown }, message: string | RegExp, key: string, app = api): Promise<void> {
  expect(res.statusCode, JSON.stringify(res.json())).toBe(400);
  const { error } = res.json() as ErrorBody;
  expect(error.code).toBe('bad_request');
  if (typeof message === 'string') expect(error.message).toBe(message);
  else expect(error.message).toMatch(message);
  expect(await store.get(key)).toBeNull();
  expect((await call(app, { method: 'GET', url: `/v1/peers/${encodeURIComponent(key)}` })).statusCode).toBe(404);
}

beforeAll(async () => {
  if (!existsSync(path.join(ROOT, 'dist/.stamp'))) throw new Error('dist/ is missing: run `make` first (bin/wgjit runs the built CLI)');
  redis = await startRedis();
  store = PeerStore.connect(redis.url);
  expect(await store.whenReady()).toBe(true);
  raw = new Redis(redis.url);
  // Gateway g1 beats into the store as a running one does.
  presence = new Presence({
    gateways: new Gateways(store),
    id: 'g1',
    version: 'test',
    publicKey: G1_KEY,
    interface: 'wg-g1',
    addresses: () => ['10.77.0.1', 'fd77::1'],
    installedPeers: () => 0,
    log: pino({ level: 'silent' }),
  });
  await presence.join();
  api = await buildApp({ store, token: TOKEN });
  gateway = await buildApp({ store, token: TOKEN, self: () => ({ gateway: 'g0', interface: 'wg-g0', publicKey: G0_KEY, addresses: [address('10.66.0.1')] }) });
  dir = mkdtempSync(path.join(os.tmpdir(), 'wgjit-validation-'));
});

afterAll(async () => {
  await presence?.stop();
  await api?.close();
  await gateway?.close();
  raw?.disconnect();
  await store?.close();
  await redis?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('POST /v1/peers refuses what no client can use, and stores nothing', () => {
  const ALL_ZERO = formatKey(new Uint8Array(32));
  const order8 = formatKey(LOW_ORDER_KEYS.find((k) => k.what === 'order 8')!.key);
  const pOne = formatKey(LOW_ORDER_KEYS.find((k) => k.what === 'u = p + 1, which is 1, top bit set')!.key);

  it.each([
    ['the all-zero key', ALL_ZERO, `publicKey: ${ALL_ZERO} is all zeros, which no client key can be`],
    ['a low-order key (order 8)', order8, /^publicKey: \S+ is a low-order Curve25519 point \(order 8\): every Diffie-Hellman with it gives zero/],
    ['a non-canonical low-order key (p + 1, top bit set)', pOne, /is a low-order Curve25519 point \(u = p \+ 1, which is 1, top bit set\)/],
    ["a fleet gateway's public key", G1_KEY, `publicKey: ${G1_KEY} is the public key of gateway g1's interface wg-g1: a gateway cannot be its own peer`],
  ])('%s', async (_, publicKey, message) => {
    await expectRefused(await call(api, { method: 'POST', url: '/v1/peers', payload: { publicKey, allowedIPs: ['10.0.0.2/32'] } }), message, publicKey);
  });

  it("GET /v1/gateways shows what is refused: g1's interface and its addresses", async () => {
    const res = await call(api, { method: 'GET', url: '/v1/gateways' });
    expect(res.json()).toMatchObject({ items: [{ id: 'g1', alive: true, publicKey: G1_KEY, interface: 'wg-g1', addresses: ['10.77.0.1', 'fd77::1'] }] });
  });

  it("this gateway's own key (`wgjit run`), and the fleet's from there too", async () => {
    const body = (publicKey: string) => ({ method: 'POST' as const, url: '/v1/peers', payload: { publicKey, allowedIPs: ['10.0.0.2/32'] } });
    await expectRefused(await call(gateway, body(G0_KEY)), `publicKey: ${G0_KEY} is the public key of gateway g0's interface wg-g0: a gateway cannot be its own peer`, G0_KEY, gateway);
    await expectRefused(await call(gateway, body(G1_KEY)), /gateway g1's interface wg-g1/, G1_KEY, gateway);
  });

  it.each([
    ['127.0.0.1/32', 'allowedIPs[1]: 127.0.0.1/32 is loopback (127.0.0.0/8)'],
    ['::1/128', 'allowedIPs[1]: ::1/128 is loopback (::1/128)'],
    ['224.0.0.5/32', 'allowedIPs[1]: 224.0.0.5/32 is multicast (224.0.0.0/4)'],
    ['ff02::1', 'allowedIPs[1]: ff02::1/128 is multicast (ff00::/8)'],
    ['169.254.169.254/32', 'allowedIPs[1]: 169.254.169.254/32 is link-local (169.254.0.0/16)'],
    ['fe80::/64', 'allowedIPs[1]: fe80::/64 is link-local (fe80::/10)'],
    ['0.0.0.0/32', 'allowedIPs[1]: 0.0.0.0/32 is the unspecified address (0.0.0.0/32)'],
    ['::/128', 'allowedIPs[1]: ::/128 is the unspecified address (::/128)'],
    ['120.0.0.0/5', 'allowedIPs[1]: 120.0.0.0/5 overlaps loopback (127.0.0.0/8)'],
    ['10.77.0.1/32', "allowedIPs[1]: 10.77.0.1/32 contains 10.77.0.1, an address of gateway g1's interface wg-g1"],
    ['10.77.0.0/24', "allowedIPs[1]: 10.77.0.0/24 contains 10.77.0.1, an address of gateway g1's interface wg-g1"],
    ['fd77::/64', "allowedIPs[1]: fd77::/64 contains fd77::1, an address of gateway g1's interface wg-g1"],
  ])('allowed IP %s', async (cidr, message) => {
    const publicKey = newKey();
    await expectRefused(await call(api, { method: 'POST', url: '/v1/peers', payload: { publicKey, allowedIPs: ['10.0.0.2/32', cidr] } }), message, publicKey);
  });

  it("an allowed IP over this gateway's own interface address (`wgjit run`)", async () => {
    const publicKey = newKey();
    const res = await call(gateway, { method: 'POST', url: '/v1/peers', payload: { publicKey, allowedIPs: ['10.66.0.0/16'] } });
    await expectRefused(res, "allowedIPs[0]: 10.66.0.0/16 contains 10.66.0.1, an address of gateway g0's interface wg-g0", publicKey, gateway);
  });

  it.each([
    ['2030-02-30', 'expiresAt: 2030-02-30 is not a date (2030-02 has 28 days)'],
    ['2030-02-30T00:00:00Z', 'expiresAt: 2030-02-30 is not a date (2030-02 has 28 days)'],
    ['2030-06-31T08:00:00+02:00', 'expiresAt: 2030-06-31 is not a date (2030-06 has 30 days)'],
    ['2030-01-01T24:00:00Z', 'expiresAt: 24:00:00 is not a time of day'],
  ])('expiresAt %s', async (expiresAt, message) => {
    const publicKey = newKey();
    await expectRefused(await call(api, { method: 'POST', url: '/v1/peers', payload: { publicKey, allowedIPs: ['10.0.0.2/32'], expiresAt } }), message, publicKey);
  });

  it('still takes the default routes, addresses beside the gateways\', and a leap day', async () => {
    const publicKey = newKey();
    const res = await call(api, { method: 'POST', url: '/v1/peers', payload: { publicKey, allowedIPs: ['0.0.0.0/0', '::/0', '10.77.0.2/32'], expiresAt: '2032-02-29T00:00:00Z' } });
    expect(res.statusCode, res.body).toBe(201);
    expect(await store.get(publicKey)).toMatchObject({ allowedIPs: ['0.0.0.0/0', '::/0', '10.77.0.2/32'], expiresAt: '2032-02-29T00:00:00.000Z' });
  });
});

describe('PATCH refuses the same and leaves the record as it was', () => {
  it.each([
    [{ allowedIPs: ['127.0.0.1/32'] }, 'allowedIPs[0]: 127.0.0.1/32 is loopback (127.0.0.0/8)'],
    [{ allowedIPs: ['10.0.0.3/32', '10.77.0.0/16'] }, "allowedIPs[1]: 10.77.0.0/16 contains 10.77.0.1, an address of gateway g1's interface wg-g1"],
    [{ expiresAt: '2030-02-30' }, 'expiresAt: 2030-02-30 is not a date (2030-02 has 28 days)'],
  ])('%j', async (patch, message) => {
    const publicKey = newKey();
    expect((await call(api, { method: 'POST', url: '/v1/peers', payload: { publicKey, allowedIPs: ['10.0.0.3/32'] } })).statusCode).toBe(201);
    const before = await store.get(publicKey);
    const res = await call(api, { method: 'PATCH', url: `/v1/peers/${encodeURIComponent(publicKey)}`, payload: patch });
    expect(res.statusCode).toBe(400);
    expect((res.json() as ErrorBody).error).toEqual({ code: 'bad_request', message });
    expect(await store.get(publicKey)).toEqual(before);
  });
});

describe('the batch (what `wgjit peer import` sends) refuses each such item with the reason, and writes none of them', () => {
  it('every bad item refused, the good one created', async () => {
    const keys = Array.from({ length: 6 }, newKey);
    const items = [
      { publicKey: formatKey(new Uint8Array(32)), allowedIPs: ['10.0.0.2/32'] },
      { publicKey: G1_KEY, allowedIPs: ['10.0.0.2/32'] },
      { publicKey: keys[0], allowedIPs: ['127.0.0.1/32'] },
      { publicKey: keys[1], allowedIPs: ['10.77.0.0/24'] },
      { publicKey: keys[2], allowedIPs: ['10.0.0.2/32'], expiresAt: '2030-02-30T00:00:00Z' },
      { publicKey: keys[3], allowedIPs: ['10.0.0.5/32'] },
    ];
    const before = await stored();
    const res = await call(api, { method: 'POST', url: '/v1/peers/batch', payload: { items } });
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json() as { counts: Record<string, number>; items: Array<{ result: string; reason?: string }> };
    expect(body.counts).toEqual({ created: 1, updated: 0, unchanged: 0, refused: 5 });
    expect(body.items.map((i) => i.reason ?? i.result)).toEqual([
      expect.stringMatching(/^publicKey: \S+ is all zeros/),
      expect.stringMatching(/^publicKey: \S+ is the public key of gateway g1's interface wg-g1/),
      'allowedIPs[0]: 127.0.0.1/32 is loopback (127.0.0.0/8)',
      "allowedIPs[0]: 10.77.0.0/24 contains 10.77.0.1, an address of gateway g1's interface wg-g1",
      'expiresAt: 2030-02-30 is not a date (2030-02 has 28 days)',
      'created',
    ]);
    expect(await stored()).toBe(before + 1);
    for (const k of keys.slice(0, 3)) expect(await store.get(k!)).toBeNull();
  });

  it("`wgjit peer import` of a file with a gateway's key or address: the line named with the reason, exit 2, nothing written", async () => {
    await api.listen({ host: '127.0.0.1', port: 0 });
    const { port } = api.server.address() as { port: number };
    const tokenFile = path.join(dir, 'client-token');
    writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
    const env = { WGJIT_API: `http://127.0.0.1:${port}`, WGJIT_API_TOKEN_FILE: tokenFile };
    const good = newKey();
    const file = path.join(dir, 'peers.jsonl');
    const line = (o: object) => `${JSON.stringify(o)}\n`;
    const before = await stored();

    // Checked against GET /v1/gateways before anything is sent: all or none, as for any bad line.
    writeFileSync(file, line({ publicKey: good, allowedIPs: ['10.0.0.9/32'] }) + line({ publicKey: G1_KEY, allowedIPs: ['10.0.0.10/32'] }));
    const key = await wgjit(['peer', 'import', file], env);
    expect(key.code, key.stderr).toBe(2);
    // The CLI shows no key-like text from a message (it could be a preshared key).
    expect(key.stderr).toBe(`wgjit: ${file}:2: publicKey: (not shown) is the public key of gateway g1's interface wg-g1: a gateway cannot be its own peer; nothing was imported\n`);
    writeFileSync(file, line({ publicKey: good, allowedIPs: ['10.0.0.9/32'] }) + line({ publicKey: newKey(), allowedIPs: ['fd77::/48'] }));
    const address = await wgjit(['peer', 'import', file], env);
    expect(address.code, address.stderr).toBe(2);
    expect(address.stderr).toContain(`${file}:2: allowedIPs[0]: fd77::/48 contains fd77::1, an address of gateway g1's interface wg-g1; nothing was imported`);
    // A reserved range and a date that does not exist: the file's own check, as before.
    writeFileSync(file, line({ publicKey: good, allowedIPs: ['10.0.0.9/32', '169.254.0.0/16'] }) + line({ publicKey: newKey(), allowedIPs: ['10.0.0.11/32'], expiresAt: '2031-02-29T00:00:00Z' }));
    const local = await wgjit(['peer', 'import', file], env);
    expect(local.code).toBe(2);
    expect(local.stderr).toBe(`wgjit: ${file}:1: allowedIPs[1]: 169.254.0.0/16 is link-local (169.254.0.0/16) (and 1 more bad line); nothing was imported\n`);

    // The dry run asks the API, which refuses the same.
    writeFileSync(file, line({ publicKey: good, allowedIPs: ['10.0.0.9/32'] }) + line({ publicKey: G1_KEY, allowedIPs: ['10.0.0.10/32'] }));
    const dry = await wgjit(['peer', 'import', '--dry-run', file], env);
    expect(dry.code, dry.stderr).toBe(1);
    expect(dry.stderr).toContain(`${file}:2: refused: publicKey: (not shown) is the public key of gateway g1's interface wg-g1`);

    expect(await stored()).toBe(before);
    expect(await store.get(good)).toBeNull();
  });
});

describe('a server will not start with a token no one should use', () => {
  /** A start refused: exit 2, one line on stderr that names `where` and never the token, nothing on stdout. */
  function expectRefusedStart(run: Run, where: string, problem: RegExp, token: string): void {
    expect(run.code, run.stderr).toBe(2);
    expect(run.stdout).toBe('');
    const lines = run.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(where);
    expect(lines[0]).toMatch(problem);
    expect(lines[0]).not.toContain(token);
  }
  const tokenFile = (name: string, body: string) => {
    const p = path.join(dir, name);
    writeFileSync(p, body, { mode: 0o600 });
    return p;
  };
  const apiArgs = () => ['api', '--redis', redis.url, '--api-listen', '127.0.0.1:0'];

  it('wgjit api: a one-character token file', async () => {
    const f = tokenFile('one-char', 'Q\n');
    expectRefusedStart(await wgjit([...apiArgs(), '--api-token-file', f]), `wgjit: --api-token-file ${f}: `, /the token is 1 bytes, shorter than 16/, 'Q\n');
  });

  it('wgjit api: a token file with a space inside', async () => {
    const secret = 'correct-horse battery-staple';
    const f = tokenFile('spaced', `${secret}\n`);
    expectRefusedStart(await wgjit([...apiArgs(), '--api-token-file', f]), `--api-token-file ${f}`, /whitespace inside/, secret);
  });

  it('wgjit api: WGJIT_API_TOKEN and --api-token, named as given', async () => {
    expectRefusedStart(await wgjit(apiArgs(), { WGJIT_API_TOKEN: 'hunter2' }), 'wgjit: WGJIT_API_TOKEN is invalid: ', /the token is 7 bytes, shorter than 16/, 'hunter2');
    expectRefusedStart(await wgjit([...apiArgs(), '--api-token', 'a-long-enough token']), 'wgjit: --api-token is invalid: ', /whitespace inside/, 'a-long-enough');
  });

  it('wgjit run: refused before the device or the store is touched', async () => {
    const f = tokenFile('short-run', 'tiny-token\n');
    const run = await wgjit(['run', '--interface', 'wgjit-none0', '--capture-dev', 'wgjit-none1', '--redis', redis.url, '--api-token-file', f]);
    expectRefusedStart(run, `--api-token-file ${f}`, /the token is 10 bytes, shorter than 16/, 'tiny-token');
  });

  it('a good token file (its trailing newline trimmed as before) starts', async () => {
    // The token rule passes; the start then goes on to listen, which the test stops at once.
    const f = tokenFile('good', `${TOKEN}\n`);
    const child = spawn(BIN, [...apiArgs(), '--api-token-file', f], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, stdio: ['ignore', 'pipe', 'pipe'] });
    const listening = await new Promise<boolean>((resolve) => {
      let out = '';
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('API listening')) resolve(true);
      });
      child.once('exit', () => resolve(false));
    });
    expect(listening).toBe(true);
    const code = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    expect(await code).toBe(0);
  });
});
