/**
 * The REST API through app.inject(), on a real redis-server.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { Counter, Registry } from 'prom-client';
import { pino } from 'pino';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { formatKey, publicKeyOf } from '../../src/handshake/keys.js';
import { generatePrivateKey } from '../../harness/noise/keys.js';
import { DEFAULT_PREFIX, GROUPS, PeerStore, peerKeyName } from '../../src/authorize/store.js';
import { resetKeyName, StoreEpoch } from '../../src/authorize/epoch.js';
import { buildApp, DEFAULT_BODY_LIMIT } from '../../src/api/app.js';
import { BATCH_BODY_LIMIT, MAX_BATCH_ITEMS } from '../../src/api/schemas.js';
import { ERROR_CODES, ERROR_STATUS } from '../../src/api/errors.js';
import type { GatewayView, InstalledPeerView } from '../../src/api/gateway-view.js';
import { startRedis, type TestRedis } from '../support/redis.js';
import { PublicKey } from '../../src/handshake/keys.js';
import { Gateways } from '../../src/fleet/gateways.js';
import { Holders } from '../../src/fleet/holders.js';
import { tai64nFromUnixMs } from '../../src/handshake/tai64n.js';

const TOKEN = 'st-test-token-0123456789';
const AUTH = { authorization: `Bearer ${TOKEN}` };
const PSK = formatKey(new Uint8Array(32).fill(9));
const newKey = () => formatKey(publicKeyOf(generatePrivateKey()));
/** A key whose standard spelling has '/' and '+', so the path needs percent-encoding. */
function awkwardKey(): string {
  for (;;) {
    const k = newKey();
    if (k.includes('/') && k.includes('+')) return k;
  }
}

/** Base64 of n bytes: 31 and 33 spell like a key (44 characters) but are not one. */
const b64 = (n: number, alphabet: 'base64' | 'base64url' = 'base64') => Buffer.alloc(n, 0xa7).toString(alphabet);
const WRONG_LENGTH_KEYS: Array<[string, string]> = [
  ['31 bytes', b64(31)],
  ['33 bytes', b64(33)],
  ['31 bytes, base64url', b64(31, 'base64url')],
  ['33 bytes, base64url', b64(33, 'base64url')],
];
const WRONG_LENGTH = /\(base64 of 3[13] bytes, not 32\)/;

const installedPeer = (publicKey: string, o: Partial<InstalledPeerView> = {}): InstalledPeerView => ({
  publicKey,
  endpoint: null,
  allowedIPs: ['10.0.0.2/32'],
  state: 'provisional',
  installedAt: '2030-01-01T00:00:00.000Z',
  lastHandshakeAt: null,
  rxBytes: 0,
  txBytes: 0,
  ...o,
});
const GATEWAY_PUBLIC_KEY = formatKey(new Uint8Array(32).fill(3));

/** A small in-memory data plane standing in for the daemon's: the API only reads it. */
class FakeGateway implements GatewayView {
  peers = new Map<string, InstalledPeerView>();
  removed: Array<[string, string]> = [];
  /** `fresh` of each listPeers call: whether the API asked for a device read. */
  reads: boolean[] = [];
  isReady = true;
  async listPeers({ fresh }: { fresh: boolean }) {
    this.reads.push(fresh);
    return [...this.peers.values()];
  }
  async removePeer(publicKey: PublicKey, reason: string) {
    const key = publicKey.toString();
    this.removed.push([key, reason]);
    return this.peers.delete(key);
  }
  stats() {
    return { initiations_seen: 3, verified: 2, rejected_unknown: 1, installs: 1 };
  }
  info() {
    // A private key slipped in by mistake must still never be served (the response schema filters).
    return { interface: 'wg0', publicKey: GATEWAY_PUBLIC_KEY, listenPort: 51820, backend: 'netlink' as const, installedPeers: this.peers.size, privateKey: PSK };
  }
  async ready() {
    return { ready: this.isReady, checks: { device: this.isReady, capture: true } };
  }
}

function errorOf(res: { statusCode: number; json(): unknown }): { code: string; message: string } {
  return (res.json() as { error: { code: string; message: string } }).error;
}

describe('REST API', () => {
  let redis: TestRedis;
  let store: PeerStore;
  let raw: Redis;
  let app: FastifyInstance;
  let gw: FakeGateway;
  let apiOnly: FastifyInstance;
  /** Every route of `app`, collected by an onRoute hook added before ready(). */
  const registered: Array<{ method: string; url: string }> = [];
  const registry = new Registry();
  new Counter({ name: 'st_test_counter_total', help: 'a counter for the test', registers: [registry] }).inc(5);

  const req = (o: InjectOptions) => app.inject({ ...o, headers: { ...AUTH, ...(o.headers ?? {}) } });
  const create = (body: unknown) => req({ method: 'POST', url: '/v1/peers', payload: body as object });
  /** Peers in the store's index, over every group. */
  const count = async () => {
    let n = 0;
    for (const index of await raw.keys('wgjit:{*}:peers')) n += await raw.zcard(index);
    return n;
  };

  beforeAll(async () => {
    redis = await startRedis();
    store = PeerStore.connect(redis.url);
    expect(await store.whenReady()).toBe(true);
    raw = new Redis(redis.url);
    gw = new FakeGateway();
    const onRoute = (r: { method: string | string[]; url: string }) => {
      for (const method of [r.method].flat()) registered.push({ method, url: r.url });
    };
    app = await buildApp({ store, token: TOKEN, gateway: gw, registry, onRoute });
    apiOnly = await buildApp({ store, token: TOKEN });
  });

  afterAll(async () => {
    await app?.close();
    await apiOnly?.close();
    raw?.disconnect();
    await store?.close();
    await redis?.stop();
  });

  beforeEach(async () => {
    await raw.flushall();
    gw.peers.clear();
    gw.removed = [];
    gw.isReady = true;
  });

  it('refuses to build without a token', async () => {
    await expect(buildApp({ store, token: '' })).rejects.toThrow(/token/);
  });

  describe('auth', () => {
    /** Open routes, besides every /v1 route needing the token. Anything added outside /v1 must be added here on purpose. */
    const PUBLIC_ROUTES = [
      'GET /healthz',
      'GET /readyz',
      'GET /metrics',
      'GET /openapi.json',
      // Swagger UI (@fastify/swagger-ui): the page, its assets, the document again as JSON and YAML.
      'GET /docs',
      'GET /docs/json',
      'GET /docs/yaml',
      'GET /docs/static/*',
      'GET /docs/static/index.html',
      'GET /docs/static/swagger-initializer.js',
    ];
    const withHead = (routes: string[]) => [...routes.flatMap((r) => [r, r.replace(/^GET /, 'HEAD ')]), 'HEAD /docs/'].sort();

    it('the route walk sees every route, the automatic HEAD routes too', () => {
      const seen = new Set(registered.map((r) => `${r.method} ${r.url}`));
      for (const r of ['POST /v1/peers', 'GET /v1/peers', 'HEAD /v1/peers', 'PATCH /v1/peers/:publicKey', 'DELETE /v1/gateway/peers/:publicKey', 'GET /v1/gateway/stats']) {
        expect(seen).toContain(r);
      }
    });

    it('outside /v1, exactly the expected routes, and all open', async () => {
      const outside = registered.filter((r) => !r.url.startsWith('/v1/'));
      expect(outside.map((r) => `${r.method} ${r.url}`).sort()).toEqual(withHead(PUBLIC_ROUTES));
      for (const r of outside) {
        const res = await app.inject({ method: r.method as InjectOptions['method'], url: r.url.replace(/\*$/, 'swagger-ui.css') });
        // /docs/static/index.html redirects to the page.
        expect(res.statusCode, `${r.method} ${r.url}`).toBe(r.url.endsWith('/index.html') ? 302 : 200);
      }
    });

    it('every registered /v1 route without a valid token → 401, only the error object, nothing changed', async () => {
      const v1 = registered.filter((r) => r.url.startsWith('/v1/'));
      expect(v1.length).toBeGreaterThanOrEqual(10);
      const key = newKey();
      await store.create({ publicKey: key, allowedIPs: ['10.0.0.2/32'], presharedKey: PSK, disabled: false, createdAt: '2030-01-01T00:00:00.000Z', updatedAt: '2030-01-01T00:00:00.000Z' });
      gw.peers.set(key, installedPeer(key, { endpoint: '192.0.2.1:51820', state: 'confirmed', rxBytes: 1, txBytes: 2 }));
      const before = await raw.getBuffer(peerKeyName('wgjit:', key));
      for (const { method, url: pattern } of v1) {
        expect(pattern.replace(/:publicKey\b/g, ''), `${method} ${pattern}: a path parameter the walk cannot fill`).not.toMatch(/[:*]/);
        const url = pattern.replace(/:publicKey\b/g, encodeURIComponent(key));
        const body = method === 'POST' ? { publicKey: newKey(), allowedIPs: ['10.0.0.3/32'] } : method === 'PATCH' ? { disabled: true } : undefined;
        for (const authorization of [undefined, 'Bearer wrong', `Bearer ${TOKEN}x`, `Basic ${TOKEN}`, TOKEN, 'Bearer ']) {
          const res = await app.inject({ method: method as InjectOptions['method'], url, payload: body, headers: authorization === undefined ? {} : { authorization } });
          const what = `${method} ${url} with ${authorization ?? 'no Authorization'}`;
          expect(res.statusCode, what).toBe(401);
          expect(res.headers['www-authenticate'], what).toBe('Bearer');
          if (method === 'HEAD') expect(res.body, what).toBe('');
          else expect(res.json(), what).toEqual({ error: { code: 'unauthorized', message: expect.any(String) } });
        }
      }
      expect(await count()).toBe(1);
      expect(await raw.getBuffer(peerKeyName('wgjit:', key))).toEqual(before);
      expect(gw.peers.has(key)).toBe(true);
      expect(gw.removed).toEqual([]);
    });

    it('an unknown /v1 path without a token → 401, not 404', async () => {
      const res = await app.inject({ method: 'GET', url: '/v1/nope' });
      expect(res.statusCode).toBe(401);
      expect(res.json()).toEqual({ error: { code: 'unauthorized', message: expect.any(String) } });
    });

    it('the token scheme is case-insensitive', async () => {
      const res = await app.inject({ method: 'GET', url: '/v1/peers', headers: { authorization: `bearer ${TOKEN}` } });
      expect(res.statusCode).toBe(200);
    });

  });

  describe('POST /v1/peers', () => {
    it('creates and returns the canonical record without the PSK', async () => {
      const key = newKey();
      const res = await create({ publicKey: key, allowedIPs: ['10.0.0.2', 'FD00::2/128'], presharedKey: PSK, persistentKeepalive: 25, expiresAt: '2031-01-01T00:00:00Z' });
      expect(res.statusCode).toBe(201);
      expect(res.headers.location).toBe(`/v1/peers/${encodeURIComponent(key)}`);
      const body = res.json();
      expect(body).toMatchObject({ publicKey: key, allowedIPs: ['10.0.0.2/32', 'fd00::2/128'], hasPresharedKey: true, persistentKeepalive: 25, expiresAt: '2031-01-01T00:00:00.000Z', disabled: false });
      expect(body).not.toHaveProperty('presharedKey');
      expect(res.body).not.toContain(PSK);
      expect((await store.get(key))?.presharedKey).toBe(PSK);
    });

    it('accepts a base64url public key and stores the standard spelling', async () => {
      const key = awkwardKey();
      const res = await create({ publicKey: Buffer.from(key, 'base64').toString('base64url'), allowedIPs: ['10.0.0.2/32'] });
      expect(res.statusCode).toBe(201);
      expect(res.json().publicKey).toBe(key);
    });

    it('409 on a duplicate, the first record kept', async () => {
      const key = newKey();
      expect((await create({ publicKey: key, allowedIPs: ['10.0.0.2/32'] })).statusCode).toBe(201);
      const res = await create({ publicKey: key, allowedIPs: ['10.0.0.9/32'] });
      expect(res.statusCode).toBe(409);
      expect(errorOf(res)).toEqual({ code: 'conflict', message: expect.stringContaining(key) });
      expect((await store.get(key))?.allowedIPs).toEqual(['10.0.0.2/32']);
    });

    const K = newKey();
    it.each<[string, unknown, RegExp]>([
      ['bad key', { publicKey: 'abc', allowedIPs: ['10.0.0.2/32'] }, /^publicKey: not a WireGuard public key/],
      ['bad CIDR', { publicKey: K, allowedIPs: ['10.0.0.300/32'] }, /^allowedIPs\[0\]: .*300 is more than 255/],
      ['host bits', { publicKey: K, allowedIPs: ['10.0.0.1/24'] }, /did you mean 10\.0\.0\.0\/24/],
      ['no allowedIPs', { publicKey: K }, /^body: missing field 'allowedIPs'/],
      ['empty allowedIPs', { publicKey: K, allowedIPs: [] }, /^allowedIPs: /],
      ['unknown field', { publicKey: K, allowedIPs: ['10.0.0.2/32'], endpoint: '1.2.3.4:5' }, /^body: unknown field 'endpoint'/],
      ['PSK not a key', { publicKey: K, allowedIPs: ['10.0.0.2/32'], presharedKey: 'abc' }, /^presharedKey: /],
      ['keepalive type', { publicKey: K, allowedIPs: ['10.0.0.2/32'], persistentKeepalive: '25' }, /^persistentKeepalive: must be integer/],
      ['keepalive range', { publicKey: K, allowedIPs: ['10.0.0.2/32'], persistentKeepalive: 70000 }, /^persistentKeepalive: must be <= 65535/],
      ['disabled type', { publicKey: K, allowedIPs: ['10.0.0.2/32'], disabled: 'true' }, /^disabled: must be boolean/],
      ['bad time', { publicKey: K, allowedIPs: ['10.0.0.2/32'], expiresAt: 'next tuesday' }, /^expiresAt: must be an ISO 8601/],
      ['array body', [{ publicKey: K }], /^body: /],
    ])('400 for %s, nothing written', async (_name, body, re) => {
      const res = await create(body);
      expect(res.statusCode).toBe(400);
      expect(errorOf(res).code).toBe('bad_request');
      expect(errorOf(res).message).toMatch(re);
      expect(await count()).toBe(0);
    });

    it.each(WRONG_LENGTH_KEYS)('400 for a public key of %s, nothing written', async (_name, text) => {
      const res = await create({ publicKey: text, allowedIPs: ['10.0.0.2/32'] });
      expect(res.statusCode).toBe(400);
      expect(errorOf(res)).toEqual({ code: 'bad_request', message: expect.stringMatching(/^publicKey: not a WireGuard public key /) });
      expect(errorOf(res).message).toMatch(WRONG_LENGTH);
      expect(await count()).toBe(0);
    });

    it.each(WRONG_LENGTH_KEYS)('400 for a preshared key of %s, nothing written, the value not echoed', async (_name, text) => {
      const res = await create({ publicKey: newKey(), allowedIPs: ['10.0.0.2/32'], presharedKey: text });
      expect(res.statusCode).toBe(400);
      expect(errorOf(res)).toEqual({ code: 'bad_request', message: expect.stringMatching(/^presharedKey: not a WireGuard key /) });
      expect(errorOf(res).message).toMatch(WRONG_LENGTH);
      expect(res.body).not.toContain(text);
      expect(await count()).toBe(0);
    });

    it('400 for malformed JSON, a non-JSON body, an empty body', async () => {
      for (const [payload, type] of [['{"publicKey":', 'application/json'], ['publicKey=x', 'application/x-www-form-urlencoded'], ['', 'application/json']] as const) {
        const res = await req({ method: 'POST', url: '/v1/peers', payload, headers: { 'content-type': type } });
        expect(res.statusCode).toBe(400);
        expect(errorOf(res).code).toBe('bad_request');
      }
      expect(await count()).toBe(0);
    });

    it('413 payload_too_large for an oversized body, nothing written', async () => {
      const res = await create({ publicKey: newKey(), allowedIPs: ['10.0.0.2/32'], pad: 'x'.repeat(DEFAULT_BODY_LIMIT) });
      expect(res.statusCode).toBe(413);
      expect(errorOf(res)).toEqual({ code: 'payload_too_large', message: `body is larger than ${DEFAULT_BODY_LIMIT} bytes, this route's limit; send a smaller body` });
      expect(await count()).toBe(0);
    });
  });

  describe('POST /v1/peers/batch', () => {
    const batch = (body: unknown) => req({ method: 'POST', url: '/v1/peers/batch', payload: body as object });
    const PSK2 = formatKey(new Uint8Array(32).fill(2));

    it('creates new keys, updates existing ones with the given fields (the others kept), answers per item in order', async () => {
      const old = newKey();
      expect((await create({ publicKey: old, allowedIPs: ['10.0.0.2/32'], presharedKey: PSK, expiresAt: '2031-01-01T00:00:00Z', disabled: true })).statusCode).toBe(201);
      const a = newKey();
      const b = awkwardKey();
      const res = await batch({
        items: [
          { publicKey: a, allowedIPs: ['10.0.0.3/32'], presharedKey: PSK2, persistentKeepalive: 25 },
          { publicKey: old, allowedIPs: ['10.0.1.0/24', 'FD00::/64'] },
          { publicKey: Buffer.from(b, 'base64').toString('base64url'), allowedIPs: ['10.0.0.4'] },
        ],
      });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toEqual({
        dryRun: false,
        counts: { created: 2, updated: 1, unchanged: 0, refused: 0 },
        items: [
          { publicKey: a, result: 'created' },
          { publicKey: old, result: 'updated' },
          { publicKey: b, result: 'created' },
        ],
      });
      expect(res.body).not.toContain(PSK2);
      expect(await store.get(a)).toMatchObject({ allowedIPs: ['10.0.0.3/32'], presharedKey: PSK2, persistentKeepalive: 25, disabled: false });
      // An import sets what it gives: the PSK, the expiry and disabled stay.
      expect(await store.get(old)).toMatchObject({ allowedIPs: ['10.0.1.0/24', 'fd00::/64'], presharedKey: PSK, expiresAt: '2031-01-01T00:00:00.000Z', disabled: true });
      expect(await count()).toBe(3);

      const again = await batch({ items: [{ publicKey: a, allowedIPs: ['10.0.0.3/32'], presharedKey: PSK2 }, { publicKey: old, allowedIPs: ['10.0.1.0/24', 'fd00::/64'], disabled: false }] });
      expect(again.json().items.map((i: { result: string }) => i.result)).toEqual(['unchanged', 'updated']);
      expect((await store.get(old))?.disabled).toBe(false);
    });

    it('refuses a bad item with the reason naming the field (never a preshared key), and a key given twice; the rest go ahead', async () => {
      const [a, b, c] = [newKey(), newKey(), newKey()];
      const badPsk = b64(31);
      const res = await batch({
        items: [
          { publicKey: a, allowedIPs: ['10.0.0.2/32'] },
          { publicKey: 'abc', allowedIPs: ['10.0.0.3/32'] },
          { publicKey: b, allowedIPs: ['10.0.0.1/24'] },
          { publicKey: c, allowedIPs: ['10.0.0.5/32'], presharedKey: badPsk },
          { publicKey: Buffer.from(a, 'base64').toString('base64url'), allowedIPs: ['10.0.0.9/32'] },
        ],
      });
      expect(res.statusCode).toBe(200);
      expect(res.json().items).toEqual([
        { publicKey: a, result: 'created' },
        { publicKey: 'abc', result: 'refused', reason: expect.stringMatching(/^publicKey: not a WireGuard public key/) },
        { publicKey: b, result: 'refused', reason: expect.stringMatching(/^allowedIPs\[0\]: 10\.0\.0\.1\/24 has host bits set/) },
        { publicKey: c, result: 'refused', reason: expect.stringMatching(/^presharedKey: not a WireGuard key \(base64 of 31 bytes/) },
        { publicKey: a, result: 'refused', reason: 'publicKey: given twice in this batch, first as items[0]' },
      ]);
      expect(res.body).not.toContain(badPsk);
      expect(await count()).toBe(1);
      expect((await store.get(a))?.allowedIPs).toEqual(['10.0.0.2/32']);
    });

    it('dryRun answers what would happen and writes nothing, publishes nothing', async () => {
      const old = newKey();
      await create({ publicKey: old, allowedIPs: ['10.0.0.2/32'] });
      const before = await raw.get(`wgjit:peer:${old}`);
      const events: string[] = [];
      const sub = new Redis(redis.url);
      await sub.subscribe('wgjit:events');
      sub.on('message', (_c: string, m: string) => events.push(m));
      try {
        const fresh = newKey();
        const items = [{ publicKey: fresh, allowedIPs: ['10.0.0.3/32'] }, { publicKey: old, allowedIPs: ['10.0.0.4/32'] }, { publicKey: newKey(), allowedIPs: ['nope'] }];
        const res = await batch({ items, dryRun: true });
        expect(res.json()).toEqual({
          dryRun: true,
          counts: { created: 1, updated: 1, unchanged: 0, refused: 1 },
          items: [
            { publicKey: fresh, result: 'created' },
            { publicKey: old, result: 'updated' },
            { publicKey: items[2]!.publicKey, result: 'refused', reason: expect.stringMatching(/^allowedIPs\[0\]: /) },
          ],
        });
        await new Promise((r) => setTimeout(r, 100));
        expect(events).toEqual([]);
        expect(await count()).toBe(1);
        expect(await raw.get(`wgjit:peer:${old}`)).toBe(before);
      } finally {
        sub.disconnect();
      }
    });

    it("results: 'refused' answers the counts and only the refused items, each with its index", async () => {
      const old = newKey();
      await create({ publicKey: old, allowedIPs: ['10.0.0.2/32'] });
      const [a, b] = [newKey(), newKey()];
      const res = await batch({
        results: 'refused',
        items: [
          { publicKey: a, allowedIPs: ['10.0.0.3/32'] },
          { publicKey: old, allowedIPs: ['10.0.0.2/32'] },
          { publicKey: b, allowedIPs: ['10.0.0.1/24'] },
          { publicKey: old, allowedIPs: ['10.0.0.4/32'] },
        ],
      });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toEqual({
        dryRun: false,
        counts: { created: 1, updated: 0, unchanged: 1, refused: 2 },
        items: [
          { index: 2, publicKey: b, result: 'refused', reason: expect.stringMatching(/^allowedIPs\[0\]: 10\.0\.0\.1\/24 has host bits set/) },
          { index: 3, publicKey: old, result: 'refused', reason: 'publicKey: given twice in this batch, first as items[1]' },
        ],
      });
      expect(await store.get(a)).not.toBeNull();
      const none = await batch({ results: 'refused', items: [{ publicKey: a, allowedIPs: ['10.0.0.3/32'] }] });
      expect(none.json()).toEqual({ dryRun: false, counts: { created: 0, updated: 0, unchanged: 1, refused: 0 }, items: [] });
      expect((await batch({ results: 'some', items: [] })).statusCode).toBe(400);
    });

    it("mode 'create' refuses existing keys and leaves them alone", async () => {
      const old = newKey();
      await create({ publicKey: old, allowedIPs: ['10.0.0.2/32'] });
      const fresh = newKey();
      const res = await batch({ mode: 'create', items: [{ publicKey: old, allowedIPs: ['10.0.0.9/32'] }, { publicKey: fresh, allowedIPs: ['10.0.0.3/32'] }] });
      expect(res.json().items).toEqual([
        { publicKey: old, result: 'refused', reason: "publicKey: exists; mode 'create' leaves existing peers alone" },
        { publicKey: fresh, result: 'created' },
      ]);
      expect((await store.get(old))?.allowedIPs).toEqual(['10.0.0.2/32']);
    });

    it(`takes ${MAX_BATCH_ITEMS} items, over the app's body limit but within the route's; 400 for one more, nothing written`, async () => {
      const items = Array.from({ length: MAX_BATCH_ITEMS }, (_, i) => ({ publicKey: formatKey(new Uint8Array(32).fill(0).map((_, j) => (j < 4 ? (i >> (8 * j)) & 255 : 7))), allowedIPs: [`10.${i >> 8}.${i & 255}.0/24`], presharedKey: PSK }));
      const body = JSON.stringify({ items });
      expect(body.length).toBeGreaterThan(DEFAULT_BODY_LIMIT);
      const over = await batch({ items: [...items, { publicKey: newKey(), allowedIPs: ['10.255.0.0/24'] }] });
      expect(over.statusCode).toBe(400);
      expect(errorOf(over)).toEqual({ code: 'bad_request', message: `items: must not have more than ${MAX_BATCH_ITEMS} items` });
      expect(await count()).toBe(0);
      const res = await batch({ items });
      expect(res.statusCode).toBe(200);
      expect(res.json().items.every((i: { result: string }) => i.result === 'created')).toBe(true);
      expect(await count()).toBe(MAX_BATCH_ITEMS);
    });

    it('400 for a body of the wrong shape, naming the item; nothing written', async () => {
      for (const [body, re] of [
        [{ items: [{ publicKey: newKey(), allowedIPs: ['10.0.0.2/32'] }, { publicKey: newKey(), allowedIPs: ['10.0.0.3/32'], endpoint: '1.2.3.4:5' }] }, /^body: unknown field 'endpoint' in items\[1\]$/],
        [{ items: [{ publicKey: newKey(), allowedIPs: ['10.0.0.2/32'] }, { publicKey: newKey(), allowedIPs: '10.0.0.3/32' }] }, /^items\[1\]\.allowedIPs: /],
        [{ items: [], extra: 1 }, /^body: unknown field 'extra'$/],
        [{ items: [], mode: 'replace' }, /^mode: /],
        [{}, /^body: missing field 'items'$/],
      ] as const) {
        const res = await batch(body);
        expect(res.statusCode, JSON.stringify(body)).toBe(400);
        expect(errorOf(res).message).toMatch(re);
      }
      expect(await count()).toBe(0);
    });

    it(`413 payload_too_large beyond ${BATCH_BODY_LIMIT} bytes, naming the route's limit`, async () => {
      const res = await batch({ items: [{ publicKey: newKey(), allowedIPs: ['10.0.0.2/32'], pad: 'x'.repeat(BATCH_BODY_LIMIT) }] });
      expect(res.statusCode).toBe(413);
      expect(errorOf(res)).toEqual({ code: 'payload_too_large', message: `body is larger than ${BATCH_BODY_LIMIT} bytes, this route's limit; send a smaller body` });
    });
  });

  describe('GET /v1/peers', () => {
    it('pages with limit and cursor, never carrying the PSK', async () => {
      const keys = Array.from({ length: 5 }, newKey);
      for (const k of keys) expect((await create({ publicKey: k, allowedIPs: ['10.0.0.2/32'], presharedKey: PSK })).statusCode).toBe(201);
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const res = await req({ method: 'GET', url: `/v1/peers?limit=2${cursor ? `&cursor=${cursor}` : ''}` });
        expect(res.statusCode).toBe(200);
        expect(res.body).not.toContain(PSK);
        const body = res.json() as { items: Array<{ publicKey: string; hasPresharedKey: boolean }>; nextCursor: string | null };
        expect(body.items.length).toBeLessThanOrEqual(2);
        for (const item of body.items) expect(item.hasPresharedKey).toBe(true);
        seen.push(...body.items.map((i) => i.publicKey));
        cursor = body.nextCursor;
      } while (cursor !== null);
      expect(seen).toEqual([...keys].sort());
    });

    it('default page is 100', async () => {
      for (let i = 0; i < 101; i++) await store.create({ publicKey: newKey(), allowedIPs: ['10.0.0.2/32'], disabled: false, createdAt: '2030-01-01T00:00:00.000Z', updatedAt: '2030-01-01T00:00:00.000Z' });
      const body = (await req({ method: 'GET', url: '/v1/peers' })).json();
      expect(body.items).toHaveLength(100);
      expect(body.nextCursor).not.toBeNull();
    });

    it.each([['limit=0'], ['limit=1001'], ['limit=abc'], ['cursor=%21%21'], ['cursor=aGVsbG8'], ['colour=blue']])('400 for ?%s', async (q) => {
      const res = await req({ method: 'GET', url: `/v1/peers?${q}` });
      expect(res.statusCode).toBe(400);
      expect(errorOf(res).code).toBe('bad_request');
    });
  });

  describe('GET/PATCH/DELETE /v1/peers/:publicKey', () => {
    let key: string;
    beforeEach(async () => {
      key = awkwardKey();
      expect((await create({ publicKey: key, allowedIPs: ['10.0.0.2/32'], presharedKey: PSK, persistentKeepalive: 25 })).statusCode).toBe(201);
    });

    it('GET accepts percent-encoded standard base64 and base64url', async () => {
      for (const spelling of [encodeURIComponent(key), Buffer.from(key, 'base64').toString('base64url'), Buffer.from(key, 'base64').toString('base64url').replace(/=$/, '')]) {
        const res = await req({ method: 'GET', url: `/v1/peers/${spelling}` });
        expect(res.statusCode).toBe(200);
        expect(res.json().publicKey).toBe(key);
        expect(res.body).not.toContain(PSK);
      }
    });

    it('GET names the gateway that holds the peer, while that gateway is alive; null otherwise', async () => {
      expect((await req({ method: 'GET', url: `/v1/peers/${encodeURIComponent(key)}` })).json().holder).toBeNull();
      const since = new Date('2030-01-01T00:00:07.000Z');
      expect(await new Holders(store).take(PublicKey.parse(key)!, 'gw-b', tai64nFromUnixMs(1_000_000), since)).toEqual({ result: 'taken' });
      // gw-b has never beaten: gone, so it holds nothing.
      expect((await req({ method: 'GET', url: `/v1/peers/${encodeURIComponent(key)}` })).json().holder).toBeNull();
      await new Gateways(store).beat({ id: 'gw-b', instance: 'i', host: 'h', pid: 1, version: 'v', publicKey: GATEWAY_PUBLIC_KEY, startedAt: since.toISOString(), heartbeatAt: since.toISOString(), installedPeers: 1 });
      for (const server of [app, apiOnly]) {
        const res = await server.inject({ method: 'GET', url: `/v1/peers/${encodeURIComponent(key)}`, headers: AUTH });
        expect(res.json().holder).toEqual({ gateway: 'gw-b', since: since.toISOString() });
      }
    });

    it('GET 404 for an unknown key, 400 for a malformed one', async () => {
      const res = await req({ method: 'GET', url: `/v1/peers/${encodeURIComponent(newKey())}` });
      expect(res.statusCode).toBe(404);
      expect(errorOf(res).code).toBe('not_found');
      const bad = await req({ method: 'GET', url: '/v1/peers/not-a-key' });
      expect(bad.statusCode).toBe(400);
      expect(errorOf(bad).message).toMatch(/publicKey in the path/);
    });

    it('PATCH changes fields, clears with null, keeps the PSK out of the reply', async () => {
      const url = `/v1/peers/${Buffer.from(key, 'base64').toString('base64url')}`;
      const res = await req({ method: 'PATCH', url, payload: { allowedIPs: ['fd00::/64'], persistentKeepalive: null, disabled: true } });
      expect(res.statusCode).toBe(200);
      const body = res.json();
      expect(body).toMatchObject({ publicKey: key, allowedIPs: ['fd00::/64'], disabled: true, hasPresharedKey: true });
      expect(body).not.toHaveProperty('persistentKeepalive');
      expect(res.body).not.toContain(PSK);
      const cleared = await req({ method: 'PATCH', url, payload: { presharedKey: null } });
      expect(cleared.json().hasPresharedKey).toBe(false);
      expect((await store.get(key))?.presharedKey).toBeUndefined();
    });

    it.each<[string, unknown, RegExp]>([
      ['empty patch', {}, /nothing to change/],
      ['publicKey', { publicKey: newKey() }, /unknown field 'publicKey'/],
      ['unknown field', { colour: 'blue' }, /unknown field 'colour'/],
      ['bad CIDR', { allowedIPs: ['10.0.0.0/33'] }, /^allowedIPs\[0\]: .*more than 32/],
      ['wrong type', { disabled: 'yes' }, /^disabled: must be boolean/],
      ['nullable wrong type', { expiresAt: 5 }, /^expiresAt: must be string or null/],
      ['bad PSK', { presharedKey: 'abc' }, /^presharedKey: /],
      ['keepalive', { persistentKeepalive: -1 }, /^persistentKeepalive: must be >= 0/],
    ])('PATCH 400 for %s, nothing changed', async (_name, body, re) => {
      const before = await raw.getBuffer(peerKeyName('wgjit:', key));
      const res = await req({ method: 'PATCH', url: `/v1/peers/${encodeURIComponent(key)}`, payload: body as object });
      expect(res.statusCode).toBe(400);
      expect(errorOf(res).code).toBe('bad_request');
      expect(errorOf(res).message).toMatch(re);
      expect(await raw.getBuffer(peerKeyName('wgjit:', key))).toEqual(before);
    });

    it.each(WRONG_LENGTH_KEYS)('PATCH 400 for a preshared key of %s, nothing changed', async (_name, text) => {
      const before = await raw.getBuffer(peerKeyName('wgjit:', key));
      const res = await req({ method: 'PATCH', url: `/v1/peers/${encodeURIComponent(key)}`, payload: { presharedKey: text } });
      expect(res.statusCode).toBe(400);
      expect(errorOf(res).message).toMatch(/^presharedKey: not a WireGuard key /);
      expect(errorOf(res).message).toMatch(WRONG_LENGTH);
      expect(await raw.getBuffer(peerKeyName('wgjit:', key))).toEqual(before);
    });

    it.each(WRONG_LENGTH_KEYS)('PATCH and DELETE 400 for a path key of %s, nothing changed', async (_name, text) => {
      const before = await raw.getBuffer(peerKeyName('wgjit:', key));
      for (const [method, payload] of [['PATCH', { disabled: true }], ['DELETE', undefined]] as const) {
        const res = await req({ method, url: `/v1/peers/${encodeURIComponent(text)}`, payload });
        expect(res.statusCode).toBe(400);
        expect(errorOf(res).code).toBe('bad_request');
        expect(errorOf(res).message).toMatch(/^publicKey in the path is not a WireGuard key /);
        expect(errorOf(res).message).toMatch(WRONG_LENGTH);
      }
      expect(await count()).toBe(1);
      expect(await raw.getBuffer(peerKeyName('wgjit:', key))).toEqual(before);
      expect(gw.removed).toEqual([]);
    });

    it('PATCH 413 payload_too_large for an oversized body, nothing changed', async () => {
      const before = await raw.getBuffer(peerKeyName('wgjit:', key));
      const allowedIPs = Array.from({ length: 6000 }, (_, i) => `10.${(i >> 8) & 255}.${i & 255}.1/32`);
      expect(JSON.stringify({ allowedIPs }).length).toBeGreaterThan(DEFAULT_BODY_LIMIT);
      const res = await req({ method: 'PATCH', url: `/v1/peers/${encodeURIComponent(key)}`, payload: { allowedIPs } });
      expect(res.statusCode).toBe(413);
      expect(errorOf(res)).toEqual({ code: 'payload_too_large', message: `body is larger than ${DEFAULT_BODY_LIMIT} bytes, this route's limit; send a smaller body` });
      expect(await raw.getBuffer(peerKeyName('wgjit:', key))).toEqual(before);
    });

    it('PATCH 404 for an unknown key', async () => {
      const res = await req({ method: 'PATCH', url: `/v1/peers/${encodeURIComponent(newKey())}`, payload: { disabled: true } });
      expect(res.statusCode).toBe(404);
    });

    it('DELETE removes from the store and from this gateway → 204, then 404', async () => {
      gw.peers.set(key, installedPeer(key));
      const url = `/v1/peers/${encodeURIComponent(key)}`;
      const res = await req({ method: 'DELETE', url });
      expect(res.statusCode).toBe(204);
      expect(res.body).toBe('');
      expect(await store.get(key)).toBeNull();
      expect(gw.peers.has(key)).toBe(false);
      expect(gw.removed).toEqual([[key, 'revoked']]);
      expect((await req({ method: 'DELETE', url })).statusCode).toBe(404);
    });

    it('DELETE 400 for a malformed key, nothing removed', async () => {
      expect((await req({ method: 'DELETE', url: '/v1/peers/zzz' })).statusCode).toBe(400);
      expect(await count()).toBe(1);
    });
  });

  describe('gateway routes', () => {
    it('GET /v1/gateway/peers lists installed peers with their allowed IPs', async () => {
      const key = newKey();
      const peer = installedPeer(key, { endpoint: '[fd00::1]:51820', allowedIPs: ['10.0.0.2/32', 'fd00::2/128'], state: 'confirmed', lastHandshakeAt: '2030-01-01T00:00:01.000Z', rxBytes: 10, txBytes: 20 });
      gw.peers.set(key, peer);
      const res = await req({ method: 'GET', url: '/v1/gateway/peers' });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toEqual({ items: [peer], nextCursor: null });
    });

    it('GET /v1/gateway/peers pages in key order with limit and cursor, like /v1/peers', async () => {
      const keys = Array.from({ length: 7 }, newKey);
      for (const k of keys) gw.peers.set(k, installedPeer(k));
      gw.reads = [];
      const seen: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const res = await req({ method: 'GET', url: `/v1/gateway/peers?limit=3${cursor ? `&cursor=${cursor}` : ''}` });
        expect(res.statusCode).toBe(200);
        const body = res.json() as { items: InstalledPeerView[]; nextCursor: string | null };
        expect(body.items.length).toBeLessThanOrEqual(3);
        seen.push(...body.items.map((i) => i.publicKey));
        cursor = body.nextCursor;
        pages++;
      } while (cursor !== null);
      expect(pages).toBe(3);
      expect(seen).toEqual([...keys].sort());
      // One device read for the walk: the first page's.
      expect(gw.reads).toEqual([true, false, false]);
      // A page that ends exactly at the last peer says so.
      const exact = (await req({ method: 'GET', url: '/v1/gateway/peers?limit=7' })).json();
      expect(exact.items).toHaveLength(7);
      expect(exact.nextCursor).toBeNull();
    });

    it('GET /v1/gateway/peers default page is 100', async () => {
      for (let i = 0; i < 101; i++) {
        const k = newKey();
        gw.peers.set(k, installedPeer(k));
      }
      const body = (await req({ method: 'GET', url: '/v1/gateway/peers' })).json();
      expect(body.items).toHaveLength(100);
      expect(body.nextCursor).not.toBeNull();
    });

    it.each([['limit=0'], ['limit=1001'], ['limit=abc'], ['cursor=%21%21'], ['cursor=aGVsbG8'], ['colour=blue']])('GET /v1/gateway/peers 400 for ?%s', async (q) => {
      const res = await req({ method: 'GET', url: `/v1/gateway/peers?${q}` });
      expect(res.statusCode).toBe(400);
      expect(errorOf(res).code).toBe('bad_request');
    });

    it('GET /v1/gateway describes the interface, never its private key', async () => {
      gw.peers.set(newKey(), installedPeer(newKey()));
      const res = await req({ method: 'GET', url: '/v1/gateway' });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toEqual({ interface: 'wg0', publicKey: GATEWAY_PUBLIC_KEY, listenPort: 51820, backend: 'netlink', installedPeers: 1 });
      expect(res.body).not.toContain(PSK);
    });

    it('DELETE /v1/gateway/peers/:key removes from the gateway only → 204; 404 when not installed', async () => {
      const key = awkwardKey();
      await create({ publicKey: key, allowedIPs: ['10.0.0.2/32'] });
      gw.peers.set(key, installedPeer(key));
      const url = `/v1/gateway/peers/${Buffer.from(key, 'base64').toString('base64url')}`;
      expect((await req({ method: 'DELETE', url })).statusCode).toBe(204);
      expect(gw.removed).toEqual([[key, 'operator']]);
      expect(await store.get(key)).not.toBeNull();
      const again = await req({ method: 'DELETE', url });
      expect(again.statusCode).toBe(404);
      expect(errorOf(again).code).toBe('not_found');
    });

    it.each([...WRONG_LENGTH_KEYS, ['not base64', 'not-a-key!'], ['a space', '%20']])(
      'DELETE /v1/gateway/peers 400 for a path key of %s, nothing removed',
      async (_name, text) => {
        const key = newKey();
        await create({ publicKey: key, allowedIPs: ['10.0.0.2/32'] });
        gw.peers.set(key, installedPeer(key));
        const res = await req({ method: 'DELETE', url: `/v1/gateway/peers/${text.startsWith('%') ? text : encodeURIComponent(text)}` });
        expect(res.statusCode).toBe(400);
        expect(errorOf(res)).toEqual({ code: 'bad_request', message: expect.stringMatching(/^publicKey in the path is not a WireGuard key \(.+\): use its 44-character base64/) });
        expect(gw.removed).toEqual([]);
        expect(gw.peers.has(key)).toBe(true);
        expect(await count()).toBe(1);
      },
    );

    it('GET /v1/gateway/stats returns the flat counters', async () => {
      const res = await req({ method: 'GET', url: '/v1/gateway/stats' });
      expect(res.json()).toEqual(gw.stats());
    });

    it('without a gateway (wgjit api) they answer 404 no_gateway', async () => {
      for (const [method, url] of [['GET', '/v1/gateway'], ['GET', '/v1/gateway/peers'], ['GET', '/v1/gateway/stats'], ['DELETE', `/v1/gateway/peers/${encodeURIComponent(newKey())}`]] as const) {
        const res = await apiOnly.inject({ method, url, headers: AUTH });
        expect(res.statusCode).toBe(404);
        expect(errorOf(res).code).toBe('no_gateway');
      }
    });
  });

  describe('GET /v1/gateways', () => {
    it('lists the fleet from the store, on gateways and on wgjit api alike: alive ones first, with their heartbeat and peer count', async () => {
      const gateways = new Gateways(store);
      const beat = (id: string, installedPeers: number) => ({ id, instance: `i-${id}`, host: `host-${id}`, pid: 7, version: '1.2.3', publicKey: GATEWAY_PUBLIC_KEY, startedAt: '2030-01-01T00:00:00.000Z', heartbeatAt: new Date().toISOString(), installedPeers });
      await gateways.beat(beat('gw-2', 20));
      await gateways.beat(beat('gw-1', 10));
      await gateways.beat(beat('gw-0', 0));
      await gateways.leave('gw-0', 'i-gw-0');
      for (const server of [app, apiOnly]) {
        const res = await server.inject({ method: 'GET', url: '/v1/gateways', headers: AUTH });
        expect(res.statusCode).toBe(200);
        expect(res.json().items.map((g: { id: string; alive: boolean; installedPeers: number; host: string }) => [g.id, g.alive, g.installedPeers, g.host])).toEqual([
          ['gw-1', true, 10, 'host-gw-1'],
          ['gw-2', true, 20, 'host-gw-2'],
          ['gw-0', false, 0, 'host-gw-0'],
        ]);
        // A beat without the interface's name and addresses (an earlier release's) lists none.
        expect(Object.keys(res.json().items[0]).sort()).toEqual(['addresses', 'alive', 'host', 'id', 'installedPeers', 'lastHeartbeatAt', 'publicKey', 'startedAt', 'version']);
        expect(res.json().items[0].addresses).toEqual([]);
      }
      expect((await app.inject({ method: 'GET', url: '/v1/gateways' })).statusCode).toBe(401);
    });
  });

  describe('the store reset and a key\'s replay state', () => {
    it('GET /v1/store shows a recorded reset; POST /v1/store/confirm-reset deletes it (404 when there is none), on wgjit api too', async () => {
      for (const server of [app, apiOnly]) {
        await raw.flushall();
        const get = () => server.inject({ method: 'GET', url: '/v1/store', headers: AUTH });
        expect((await get()).json()).toEqual({ reset: null });
        const confirm = () => server.inject({ method: 'POST', url: '/v1/store/confirm-reset', headers: AUTH });
        expect((await confirm()).statusCode).toBe(404);
        const marker = { since: '2026-12-03T12:00:00.000Z', detectedBy: 'gw-1', lostGroups: 4096, epoch: '0123456789abcdef' };
        expect(await new StoreEpoch(store).recordReset(marker)).toEqual(marker);
        expect((await get()).json()).toEqual({ reset: marker });
        const confirmed = await confirm();
        expect(confirmed.statusCode).toBe(200);
        expect(confirmed.json()).toEqual({ reset: marker });
        expect(await raw.exists(resetKeyName(DEFAULT_PREFIX))).toBe(0);
      }
    });

    it('the epoch markers on redis-server: read and filled in one round trip each, and holdsRecords sees a record', async () => {
      const epoch = new StoreEpoch(store);
      expect(await epoch.holdsRecords()).toBe(false);
      expect((await epoch.read()).every((v) => v === null)).toBe(true);
      await epoch.fill(GROUPS, '0123456789abcdef');
      await epoch.fill(['++'], 'fedcba9876543210'); // NX: kept
      expect(new Set(await epoch.read())).toEqual(new Set(['0123456789abcdef']));
      await epoch.fill(['++'], 'fedcba9876543210', true);
      expect((await epoch.read(['++', '+/']))).toEqual(['fedcba9876543210', '0123456789abcdef']);
      expect((await create({ publicKey: newKey(), allowedIPs: ['10.0.0.9/32'] })).statusCode).toBe(201);
      expect(await epoch.holdsRecords()).toBe(true);
    });

    it('POST /v1/peers/:publicKey/reset-replay zeroes the kept timestamp (the record stays), deletes a tombstone, and tells every gateway', async () => {
      const key = newKey();
      expect((await create({ publicKey: key, allowedIPs: ['10.0.0.1/32'] })).statusCode).toBe(201);
      const pk = PublicKey.parse(key)!;
      expect(await store.advanceTimestamp(pk, tai64nFromUnixMs(Date.now() + 300_000))).toBe(true);
      const events: string[] = [];
      const sub = await store.subscribe((e) => events.push(`${e.op} ${e.publicKey.toString()}`));
      const res = await req({ method: 'POST', url: `/v1/peers/${encodeURIComponent(key)}/reset-replay` });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toEqual({ publicKey: key, storeHadTimestamp: true });
      // A timestamp of now is greater again; the record is untouched.
      expect(await store.advanceTimestamp(pk, tai64nFromUnixMs(Date.now()))).toBe(true);
      expect((await req({ method: 'GET', url: `/v1/peers/${encodeURIComponent(key)}` })).json().allowedIPs).toEqual(['10.0.0.1/32']);
      // A deleted key's tombstone goes.
      expect((await req({ method: 'DELETE', url: `/v1/peers/${encodeURIComponent(key)}` })).statusCode).toBe(204);
      expect(await raw.exists(peerKeyName(DEFAULT_PREFIX, key))).toBe(1);
      expect((await req({ method: 'POST', url: `/v1/peers/${encodeURIComponent(key)}/reset-replay` })).json()).toEqual({ publicKey: key, storeHadTimestamp: true });
      expect(await raw.exists(peerKeyName(DEFAULT_PREFIX, key))).toBe(0);
      // Nothing kept at all: the gateways are told anyway (they keep timestamps in memory too).
      expect((await req({ method: 'POST', url: `/v1/peers/${encodeURIComponent(key)}/reset-replay` })).json()).toEqual({ publicKey: key, storeHadTimestamp: false });
      for (let i = 0; i < 50 && events.filter((e) => e.startsWith('reset-replay')).length < 3; i++) await new Promise((r) => setTimeout(r, 20));
      await sub.close();
      expect(events.filter((e) => e === `reset-replay ${key}`)).toHaveLength(3);
      expect((await req({ method: 'POST', url: '/v1/peers/not-a-key/reset-replay' })).statusCode).toBe(400);
      expect((await app.inject({ method: 'POST', url: `/v1/peers/${encodeURIComponent(key)}/reset-replay` })).statusCode).toBe(401);
    });
  });

  describe('open routes', () => {
    it('/healthz', async () => {
      expect((await app.inject({ url: '/healthz' })).json()).toEqual({ status: 'ok' });
    });

    it('names its release in every answer, refusals too (wgjit-version, as package.json has it)', async () => {
      const version = JSON.parse(readFileSync('package.json', 'utf8')).version as string;
      expect((await app.inject({ url: '/healthz' })).headers['wgjit-version']).toBe(version);
      expect((await app.inject({ url: '/v1/peers' })).headers['wgjit-version']).toBe(version); // 401: no token
    });

    it('/readyz combines the store ping with the gateway checks', async () => {
      let res = await app.inject({ url: '/readyz' });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toEqual({ ready: true, checks: { store: true, device: true, capture: true } });
      gw.isReady = false;
      res = await app.inject({ url: '/readyz' });
      expect(res.statusCode).toBe(503);
      expect(res.json()).toEqual({ ready: false, checks: { store: true, device: false, capture: true } });
    });

    it('/metrics serves the given registry in Prometheus text format', async () => {
      const res = await app.inject({ url: '/metrics' });
      expect(res.headers['content-type']).toMatch(/^text\/plain/);
      expect(res.body).toMatch(/^st_test_counter_total 5$/m);
    });

    it('/openapi.json lists every route with its schemas and security', async () => {
      const doc = (await app.inject({ url: '/openapi.json' })).json();
      expect(doc.openapi).toBe('3.1.0');
      const ops = Object.entries(doc.paths as Record<string, Record<string, unknown>>).flatMap(([p, m]) => Object.keys(m).map((k) => `${k.toUpperCase()} ${p}`));
      expect(ops.sort()).toEqual(
        [
          'POST /v1/peers',
          'POST /v1/peers/batch',
          'GET /v1/peers',
          'GET /v1/peers/{publicKey}',
          'PATCH /v1/peers/{publicKey}',
          'DELETE /v1/peers/{publicKey}',
          'POST /v1/peers/{publicKey}/reset-replay',
          'GET /v1/store',
          'POST /v1/store/confirm-reset',
          'GET /v1/gateway',
          'GET /v1/gateway/peers',
          'DELETE /v1/gateway/peers/{publicKey}',
          'GET /v1/gateway/stats',
          'GET /v1/gateways',
          'GET /healthz',
          'GET /readyz',
          'GET /metrics',
          'GET /openapi.json',
        ].sort(),
      );
      const post = doc.paths['/v1/peers'].post;
      expect(post.security).toEqual([{ bearer: [] }]);
      expect(post.requestBody.content['application/json'].schema.additionalProperties).toBe(false);
      expect(Object.keys(post.responses).sort()).toEqual(['201', '400', '401', '409', '503']);
      expect(post.responses['201'].content['application/json'].schema.properties).not.toHaveProperty('presharedKey');
      expect(doc.paths['/v1/peers'].get.parameters.map((p: { name: string }) => p.name)).toEqual(['limit', 'cursor']);
      expect(doc.paths['/v1/gateway/peers'].get.parameters.map((p: { name: string }) => p.name)).toEqual(['limit', 'cursor']);
      expect(Object.keys(doc.paths['/v1/gateway'].get.responses['200'].content['application/json'].schema.properties).sort()).toEqual(['backend', 'installedPeers', 'interface', 'listenPort', 'publicKey']);
      expect(doc.paths['/healthz'].get.security).toEqual([]);
      const batchOp = doc.paths['/v1/peers/batch'].post;
      expect(batchOp.security).toEqual([{ bearer: [] }]);
      expect(batchOp.requestBody.content['application/json'].schema.properties.items.maxItems).toBe(MAX_BATCH_ITEMS);
      expect(batchOp.requestBody.content['application/json'].schema.properties.items.items.properties).toEqual(post.requestBody.content['application/json'].schema.properties);
      expect(Object.keys(batchOp.responses).sort()).toEqual(['200', '400', '401', '503']);
      expect(batchOp.responses['200'].content['application/json'].schema.properties.items.items.properties.result.anyOf.map((c: { const: string }) => c.const)).toEqual(['created', 'updated', 'unchanged', 'refused']);
      expect(Object.keys(batchOp.responses['200'].content['application/json'].schema.properties.counts.properties)).toEqual(['created', 'updated', 'unchanged', 'refused']);
      expect(batchOp.requestBody.content['application/json'].schema.properties.results.anyOf.map((c: { const: string }) => c.const)).toEqual(['all', 'refused']);
      const codes = post.responses['400'].content['application/json'].schema.properties.error.properties.code.anyOf.map((c: { const: string }) => c.const);
      expect(codes).toEqual(ERROR_CODES);
    });
  });

  describe('GET /docs', () => {
    const assetsOf = (html: string) => [...html.matchAll(/(?:href|src)="([^"]+)"/g)].map((m) => m[1]!);

    it.each([['/docs'], ['/docs/']])('%s is an HTML page whose assets all load from this server, no token', async (page) => {
      const res = await app.inject({ url: page });
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toMatch(/^text\/html/);
      expect(res.body).toContain('<div id="swagger-ui">');
      const assets = assetsOf(res.body);
      expect(assets).toEqual(expect.arrayContaining([expect.stringMatching(/swagger-ui-bundle\.js$/), expect.stringMatching(/swagger-ui\.css$/), expect.stringMatching(/swagger-initializer\.js$/)]));
      for (const asset of assets) {
        // Offline: nothing from another host.
        expect(asset).not.toMatch(/^[a-z]+:|^\/\//i);
        const url = new URL(asset, `http://gateway${page}`).pathname;
        const got = await app.inject({ url });
        expect(got.statusCode, url).toBe(200);
        expect(got.rawPayload.length, url).toBeGreaterThan(0);
        if (url.endsWith('.js')) expect(got.headers['content-type'], url).toMatch(/javascript/);
        if (url.endsWith('.css')) expect(got.headers['content-type'], url).toMatch(/^text\/css/);
      }
    });

    it('the page reads this API\'s OpenAPI document: the same as /openapi.json', async () => {
      const init = await app.inject({ url: '/docs/static/swagger-initializer.js' });
      expect(init.body).toContain("url: resolveUrl('./json')");
      // No online validator badge, nothing fetched from another host (a comment may name a URL).
      expect(init.body).toContain('validatorUrl: null');
      expect(init.body.replace(/\/\/ .*$/gm, '')).not.toMatch(/https?:\/\//);
      const shown = await app.inject({ url: '/docs/json' });
      expect(shown.statusCode).toBe(200);
      expect(shown.json()).toEqual((await app.inject({ url: '/openapi.json' })).json());
      expect(shown.json().paths).toHaveProperty('/v1/peers');
    });
  });

  it('probes and scrapes write no request lines at info; other routes do', async () => {
    const lines: Array<{ level: number; msg: string; req?: { url: string }; res?: unknown }> = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
    const logged = await buildApp({ store, token: TOKEN, gateway: gw, logger });
    try {
      for (const url of ['/healthz', '/readyz', '/metrics']) expect((await logged.inject({ url })).statusCode).toBe(200);
      expect(lines).toEqual([]);
      expect((await logged.inject({ url: '/v1/peers', headers: AUTH })).statusCode).toBe(200);
      expect(lines.map((l) => l.msg)).toEqual(['incoming request', 'request completed']);
    } finally {
      await logged.close();
    }
  });

  it('unknown route with a token → 404 not_found', async () => {
    const res = await req({ method: 'GET', url: '/v1/nope' });
    expect(res.statusCode).toBe(404);
    expect(errorOf(res).code).toBe('not_found');
  });

  describe('HTTP habits', () => {
    const seed = async () => {
      const key = newKey();
      expect((await create({ publicKey: key, allowedIPs: ['10.0.0.2/32'] })).statusCode).toBe(201);
      return key;
    };

    it('a request without a body is taken whatever its Content-Type says: DELETE, reset-replay, confirm-reset', async () => {
      for (const type of ['application/json', 'text/plain', 'application/merge-patch+json', 'nonsense']) {
        const key = await seed();
        const url = `/v1/peers/${encodeURIComponent(key)}`;
        const reset = await req({ method: 'POST', url: `${url}/reset-replay`, headers: { 'content-type': type } });
        expect(reset.statusCode, type).toBe(200);
        expect((await req({ method: 'POST', url: '/v1/store/confirm-reset', headers: { 'content-type': type } })).statusCode, type).toBe(404);
        const del = await req({ method: 'DELETE', url, headers: { 'content-type': type } });
        expect(del.statusCode, type).toBe(204);
        expect(await store.get(key), type).toBeNull();
      }
    });

    it('a route that needs a body, called without one: 400 naming the empty body, nothing written', async () => {
      const res = await req({ method: 'POST', url: '/v1/peers', headers: { 'content-type': 'application/json' } });
      expect(res.statusCode).toBe(400);
      expect(errorOf(res)).toEqual({ code: 'bad_request', message: 'the body is empty; send a JSON object' });
      expect(await count()).toBe(0);
    });

    it('PATCH takes application/merge-patch+json (null clears a field); other routes do not', async () => {
      const key = await seed();
      const url = `/v1/peers/${encodeURIComponent(key)}`;
      const res = await req({ method: 'PATCH', url, payload: JSON.stringify({ disabled: true, expiresAt: null }), headers: { 'content-type': 'application/merge-patch+json' } });
      expect(res.statusCode).toBe(200);
      expect(res.json().disabled).toBe(true);
      const bad = await req({ method: 'PATCH', url, payload: '{"disabled":', headers: { 'content-type': 'application/merge-patch+json' } });
      expect(bad.statusCode).toBe(400);
      const post = await req({ method: 'POST', url: '/v1/peers', payload: JSON.stringify({ publicKey: newKey(), allowedIPs: ['10.0.0.3/32'] }), headers: { 'content-type': 'application/merge-patch+json' } });
      expect(post.statusCode).toBe(400);
      expect(errorOf(post).message).toMatch(/merge-patch\+json is for PATCH/);
      expect(await count()).toBe(1);
    });

    it('a known path with a wrong method → 405 method_not_allowed and Allow; an unknown path stays 404; without a token both are 401', async () => {
      const key = await seed();
      const url = `/v1/peers/${encodeURIComponent(key)}`;
      for (const [method, path, allow] of [
        ['PUT', url, 'GET, HEAD, PATCH, DELETE'],
        ['POST', url, 'GET, HEAD, PATCH, DELETE'],
        ['GET', `${url}/reset-replay`, 'POST'],
        ['DELETE', '/v1/peers', 'GET, HEAD, POST'],
        ['GET', '/v1/store/confirm-reset', 'POST'],
        ['PATCH', '/v1/gateway/stats', 'GET, HEAD'],
      ] as const) {
        const res = await req({ method, url: path, payload: method === 'GET' ? undefined : {} });
        expect(res.statusCode, `${method} ${path}`).toBe(405);
        expect(res.headers.allow, `${method} ${path}`).toBe(allow);
        expect(errorOf(res)).toEqual({ code: 'method_not_allowed', message: expect.stringContaining(allow) });
        const stranger = await app.inject({ method, url: path });
        expect(stranger.statusCode, `${method} ${path} without a token`).toBe(401);
        expect(stranger.headers.allow).toBeUndefined();
      }
      expect(await store.get(key)).not.toBeNull();
      expect((await req({ method: 'PUT', url: `${url}/nope` })).statusCode).toBe(404);
    });
  });

  describe('telemetry', () => {
    it('an audit line per mutation, with tokenId (a digest), never the token or a preshared key', async () => {
      const lines: Array<{ audit?: string; tokenId?: string; publicKey?: string; [k: string]: unknown }> = [];
      const raws: string[] = [];
      const logger = pino({ level: 'info' }, { write: (line: string) => void (raws.push(line), lines.push(JSON.parse(line))) });
      const logged = await buildApp({ store, token: TOKEN, gateway: gw, logger });
      try {
        const call = (o: InjectOptions) => logged.inject({ ...o, headers: { ...AUTH, ...(o.headers ?? {}) } });
        const [a, b, c] = [newKey(), newKey(), newKey()];
        expect((await call({ method: 'POST', url: '/v1/peers', payload: { publicKey: a, allowedIPs: ['10.0.0.2/32'], presharedKey: PSK } })).statusCode).toBe(201);
        const batch = await call({ method: 'POST', url: '/v1/peers/batch', payload: { items: [{ publicKey: b, allowedIPs: ['10.0.0.3/32'] }, { publicKey: c, allowedIPs: ['127.0.0.1/32'] }] } });
        expect(batch.statusCode).toBe(200);
        expect((await call({ method: 'PATCH', url: `/v1/peers/${encodeURIComponent(a)}`, payload: { presharedKey: PSK, disabled: true } })).statusCode).toBe(200);
        gw.peers.set(b, installedPeer(b));
        expect((await call({ method: 'DELETE', url: `/v1/gateway/peers/${encodeURIComponent(b)}` })).statusCode).toBe(204);
        expect((await call({ method: 'DELETE', url: `/v1/peers/${encodeURIComponent(a)}`, headers: { 'content-type': 'application/json' } })).statusCode).toBe(204);
        // A refused change is not audited.
        expect((await call({ method: 'DELETE', url: `/v1/peers/${encodeURIComponent(newKey())}` })).statusCode).toBe(404);
        const audits = lines.filter((l) => l.audit !== undefined);
        const tokenId = createHash('sha256').update(TOKEN).digest('hex').slice(0, 8);
        expect(audits.map((l) => [l.audit, l.publicKey])).toEqual([
          ['peer.create', a],
          ['peer.batch', undefined],
          ['peer.update', a],
          ['gateway.peer.remove', b],
          ['peer.delete', a],
        ]);
        for (const l of audits) expect(l.tokenId, l.audit).toBe(tokenId);
        expect(audits[1]).toMatchObject({ items: 2, created: 1, refused: 1, dryRun: false });
        expect(audits[2]).toMatchObject({ fields: ['presharedKey', 'disabled'] });
        const text = raws.join('');
        expect(text).not.toContain(TOKEN);
        expect(text).not.toContain(PSK);
      } finally {
        await logged.close();
      }
    });

    it('request metrics by method, route pattern and status, in the registry served at /metrics; no raw path', async () => {
      const reg = new Registry();
      const counted = await buildApp({ store, token: TOKEN, gateway: gw, registry: reg });
      try {
        const key = newKey();
        const call = (o: InjectOptions) => counted.inject({ ...o, headers: { ...AUTH, ...(o.headers ?? {}) } });
        expect((await call({ method: 'POST', url: '/v1/peers', payload: { publicKey: key, allowedIPs: ['10.0.0.2/32'] } })).statusCode).toBe(201);
        expect((await call({ method: 'GET', url: `/v1/peers/${encodeURIComponent(key)}` })).statusCode).toBe(200);
        expect((await call({ method: 'GET', url: `/v1/peers/${encodeURIComponent(newKey())}` })).statusCode).toBe(404);
        expect((await counted.inject({ method: 'GET', url: '/v1/secret-route-guess' })).statusCode).toBe(401);
        expect((await call({ method: 'PUT', url: `/v1/peers/${encodeURIComponent(key)}` })).statusCode).toBe(405);
        const text = (await counted.inject({ url: '/metrics' })).body;
        for (const series of [
          'wgjit_http_requests_total{method="POST",route="/v1/peers",status="201"} 1',
          'wgjit_http_requests_total{method="GET",route="/v1/peers/:publicKey",status="200"} 1',
          'wgjit_http_requests_total{method="GET",route="/v1/peers/:publicKey",status="404"} 1',
          'wgjit_http_requests_total{method="GET",route="unknown",status="401"} 1',
          'wgjit_http_requests_total{method="PUT",route="unknown",status="405"} 1',
          'wgjit_http_request_duration_seconds_count{method="GET",route="/v1/peers/:publicKey"} 2',
        ]) {
          expect(text).toContain(series);
        }
        expect(text).not.toContain('secret-route-guess');
        expect(text).not.toContain(encodeURIComponent(key));
      } finally {
        await counted.close();
      }
    });
  });

  it('every error code has a status', () => {
    for (const code of ERROR_CODES) expect(ERROR_STATUS[code]).toBeGreaterThanOrEqual(400);
  });
});

describe('REST API while Redis is down', () => {
  let redis: TestRedis | undefined;
  let store: PeerStore | undefined;
  let app: FastifyInstance | undefined;

  afterAll(async () => {
    await app?.close();
    await store?.close();
    await redis?.stop();
  });

  it('store routes answer 503 store_unavailable, /readyz 503, /healthz 200; back to normal after a restart', async () => {
    redis = await startRedis();
    const port = redis.port;
    store = PeerStore.connect(redis.url);
    expect(await store.whenReady()).toBe(true);
    app = await buildApp({ store, token: TOKEN });
    const key = encodeURIComponent(newKey());
    await redis.stop();

    const calls: InjectOptions[] = [
      { method: 'POST', url: '/v1/peers', payload: { publicKey: newKey(), allowedIPs: ['10.0.0.2/32'] } },
      { method: 'GET', url: '/v1/peers' },
      { method: 'GET', url: `/v1/peers/${key}` },
      { method: 'PATCH', url: `/v1/peers/${key}`, payload: { disabled: true } },
      { method: 'DELETE', url: `/v1/peers/${key}` },
    ];
    for (const call of calls) {
      const res = await app.inject({ ...call, headers: AUTH });
      expect(res.statusCode).toBe(503);
      expect(errorOf(res).code).toBe('store_unavailable');
      expect(res.headers['retry-after']).toBe('1');
    }
    // Bad input is still 400 while the store is down: validation comes first.
    expect((await app.inject({ method: 'POST', url: '/v1/peers', headers: AUTH, payload: { publicKey: 'x', allowedIPs: ['10.0.0.2/32'] } })).statusCode).toBe(400);
    const ready = await app.inject({ url: '/readyz' });
    expect(ready.statusCode).toBe(503);
    expect(ready.json()).toEqual({ ready: false, checks: { store: false } });
    expect((await app.inject({ url: '/healthz' })).statusCode).toBe(200);

    redis = await startRedis({ port });
    for (let i = 0; i < 100 && !(await store.ping()); i++) await new Promise((r) => setTimeout(r, 100));
    expect((await app.inject({ method: 'GET', url: '/v1/peers', headers: AUTH })).statusCode).toBe(200);
    expect((await app.inject({ url: '/readyz' })).statusCode).toBe(200);
  });
});
