/**
 * `wgjit peer import`: the built `bin/wgjit` (run `make` first) against a
 * real API (buildApp listening on 127.0.0.1) on a real redis-server; and
 * the dump of a real wireguard-go device in a network namespace.
 *
 *   FILE ─▶ bin/wgjit peer import ──POST /v1/peers/batch──▶ buildApp ──▶ redis-server
 *   wireguard-go (netns) ── wg show IF dump ─┘
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { formatKey, publicKeyOf } from '../../src/handshake/keys.js';
import { generatePrivateKey } from '../../harness/noise/keys.js';
import { PeerStore, peerKeyName } from '../../src/authorize/store.js';
import { buildApp } from '../../src/api/app.js';
import { MAX_BATCH_ITEMS } from '../../src/api/schemas.js';
import { VERSION_HEADER, WGJIT_VERSION } from '../../src/api/version.js';
import { PROGRESS_LINE_EVERY } from '../../src/cli/commands/peer-import.js';
import { nsRun } from '../../harness/testbed/exec.js';
import { createNamespace, deleteNamespace } from '../../harness/testbed/netns.js';
import { WgInterface } from '../../harness/testbed/wireguard.js';
import { startRedis, type TestRedis } from '../support/redis.js';
import { ROOT, wgjit, type Run } from '../support/wgjit.js';

const TOKEN = 'import-test-token-0123456789';
const PSK = formatKey(new Uint8Array(32).fill(9));
const newKey = () => formatKey(publicKeyOf(generatePrivateKey()));
/** Distinct valid keys without an X25519 each: any 32 bytes are a WireGuard public key to the store. */
const nthKey = (n: number) => formatKey(Uint8Array.from({ length: 32 }, (_, j) => (j < 4 ? (n >>> (8 * j)) & 255 : 0x5c)));
const BIG = 10_000;

function expectOneLineError(run: Run, code: number, message: RegExp): void {
  expect(run.code, run.stderr).toBe(code);
  expect(run.stdout).toBe('');
  expect(run.stderr.trimEnd().split('\n')).toHaveLength(1);
  expect(run.stderr).toMatch(/^wgjit: /);
  expect(run.stderr).not.toMatch(/\n\s+at /);
  expect(run.stderr.trimEnd()).toMatch(message);
}

describe('wgjit peer import', () => {
  let redis: TestRedis;
  let store: PeerStore;
  let raw: Redis;
  let app: FastifyInstance;
  let dir: string;
  let env: Record<string, string>;
  const file = (name: string, text: string | Buffer) => {
    const p = path.join(dir, name);
    writeFileSync(p, text);
    return p;
  };
  /** Peers in the store's index, over every group. */
  const count = async () => {
    let n = 0;
    for (const index of await raw.keys('wgjit:{*}:peers')) n += await raw.zcard(index);
    return n;
  };

  beforeAll(async () => {
    if (!existsSync(path.join(ROOT, 'dist/.stamp'))) throw new Error('dist/ is missing: run `make` first (bin/wgjit runs the built CLI)');
    redis = await startRedis();
    store = PeerStore.connect(redis.url);
    expect(await store.whenReady()).toBe(true);
    raw = new Redis(redis.url);
    app = await buildApp({ store, token: TOKEN });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = app.server.address() as { port: number };
    dir = mkdtempSync(path.join(os.tmpdir(), 'wgjit-import-'));
    const tokenFile = path.join(dir, 'token');
    writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
    env = { WGJIT_API: `http://127.0.0.1:${port}`, WGJIT_API_TOKEN_FILE: tokenFile };
  });

  afterAll(async () => {
    await app?.close();
    raw?.disconnect();
    await store?.close();
    await redis?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  beforeEach(async () => {
    await raw.flushall();
  });

  it('a wg-quick config: its [Peer] blocks, Endpoint and [Interface] skipped; the summary on stdout, nothing on stderr', async () => {
    const [a, b] = [newKey(), newKey()];
    const conf = file(
      'wg0.conf',
      `[Interface]\nPrivateKey = ${formatKey(generatePrivateKey())}\nAddress = 10.8.0.1/24\nListenPort = 51820\n\n` +
        `[Peer]\n# alice\nPublicKey = ${a}\nPresharedKey = ${PSK}\nAllowedIPs = 10.8.0.2/32, fd00::2/128\nEndpoint = 192.0.2.1:51820\n\n` +
        `[Peer]\nPublicKey = ${b}\nAllowedIPs = 10.8.0.3/32\nPersistentKeepalive = 25\n`,
    );
    const run = await wgjit(['peer', 'import', conf], env);
    expect(run).toEqual({ code: 0, stdout: `imported 2 peers from ${conf} (wg): 2 created, 0 updated, 0 unchanged\n`, stderr: '' });
    expect(await store.get(a)).toMatchObject({ allowedIPs: ['10.8.0.2/32', 'fd00::2/128'], presharedKey: PSK, disabled: false });
    expect(await store.get(b)).toMatchObject({ allowedIPs: ['10.8.0.3/32'], persistentKeepalive: 25 });
  });

  it('JSON lines from stdin with --json; re-import: unchanged, then updated for what changed, fields not given kept', async () => {
    const [a, b] = [newKey(), newKey()];
    const lines = (bAllowed: string) => `${JSON.stringify({ publicKey: a, allowedIPs: ['10.8.0.2/32'], expiresAt: '2031-01-01T00:00:00Z', disabled: true })}\n\n${JSON.stringify({ publicKey: b, allowedIPs: [bAllowed], presharedKey: PSK })}\n`;
    let run = await wgjit(['peer', 'import', '-', '--json'], env, lines('10.8.0.3/32'));
    expect(run.code, run.stderr).toBe(0);
    const report = JSON.parse(run.stdout);
    expect(report).toEqual({
      source: 'stdin',
      format: 'jsonl',
      dryRun: false,
      written: true,
      counts: { created: 2, updated: 0, unchanged: 0, refused: 0 },
      items: [
        { line: 1, publicKey: a, result: 'created' },
        { line: 3, publicKey: b, result: 'created' },
      ],
    });
    expect(run.stdout).not.toContain(PSK);

    run = await wgjit(['peer', 'import', '-'], env, lines('10.8.0.3/32'));
    expect(run.stdout).toBe('imported 2 peers from stdin (jsonl): 0 created, 0 updated, 2 unchanged\n');
    run = await wgjit(['peer', 'import', '-'], env, `${JSON.stringify({ publicKey: b, allowedIPs: ['10.8.0.33/32'] })}\n`);
    expect(run.stdout).toBe('imported 1 peers from stdin (jsonl): 0 created, 1 updated, 0 unchanged\n');
    expect(await store.get(b)).toMatchObject({ allowedIPs: ['10.8.0.33/32'], presharedKey: PSK });
    expect(await store.get(a)).toMatchObject({ expiresAt: '2031-01-01T00:00:00.000Z', disabled: true });
  });

  it('--dry-run says what would change and writes nothing', async () => {
    const old = newKey();
    await store.create({ publicKey: old, allowedIPs: ['10.8.0.2/32'], disabled: false, createdAt: '2030-01-01T00:00:00.000Z', updatedAt: '2030-01-01T00:00:00.000Z' });
    const before = await raw.getBuffer(peerKeyName('wgjit:', old));
    const f = file('dry.jsonl', `${JSON.stringify({ publicKey: old, allowedIPs: ['10.8.0.9/32'] })}\n${JSON.stringify({ publicKey: newKey(), allowedIPs: ['10.8.0.3/32'] })}\n`);
    const run = await wgjit(['peer', 'import', f, '--dry-run'], env);
    expect(run).toEqual({ code: 0, stdout: `dry run, nothing written: 2 peers from ${f} (jsonl) would be 1 created, 1 updated, 0 unchanged\n`, stderr: '' });
    expect(await count()).toBe(1);
    expect(await raw.getBuffer(peerKeyName('wgjit:', old))).toEqual(before);
  });

  it('a bad line at N: FILE:N and what is wrong, one line, exit 2, nothing written, no preshared key shown', async () => {
    const good = Array.from({ length: 40 }, () => JSON.stringify({ publicKey: newKey(), allowedIPs: ['10.8.0.2/32'], presharedKey: PSK }));
    good.splice(36, 0, JSON.stringify({ publicKey: newKey(), allowedIPs: ['10.8.0.1/24'], presharedKey: PSK }));
    const f = file('bad.jsonl', `${good.join('\n')}\n`);
    let run = await wgjit(['peer', 'import', f], env);
    expectOneLineError(run, 2, new RegExp(`^wgjit: ${f.replace(/[.]/g, '\\.')}:37: allowedIPs\\[0\\]: 10\\.8\\.0\\.1/24 has host bits set.*; nothing was imported$`));
    expect(run.stderr).not.toContain(PSK);
    expect(await count()).toBe(0);

    const conf = file('bad.conf', `[Peer]\nPublicKey = ${newKey()}\nAllowedIPs = 10.8.0.2/32\n\n[Peer]\nPublicKey = ${newKey()}\nPresharedKey = ${PSK.slice(0, 40)}\nAllowedIPs = 10.8.0.3/32\n`);
    run = await wgjit(['peer', 'import', conf], env);
    expectOneLineError(run, 2, /bad\.conf:7: PresharedKey: not a WireGuard key \(.*\); nothing was imported$/);
    expect(run.stderr).not.toContain(PSK.slice(0, 40));
    expect(await count()).toBe(0);
  });

  it(`a broken line anywhere in ${BIG} records (first, middle, last; cut short with no newline): FILE:LINE, exit 2, nothing written`, async () => {
    const lines = Array.from({ length: BIG }, (_, i) => JSON.stringify({ publicKey: nthKey(i), allowedIPs: [`10.9.${(i >> 8) & 255}.${i & 255}/32`], presharedKey: PSK }));
    const middle = BIG / 2;
    const cases: Array<[string, (l: string[]) => string, RegExp]> = [
      // A JSON line cut short: the first line, where the format is also told.
      ['first', (l) => [l[0]!.slice(0, 60), ...l.slice(1)].join('\n'), /:1: not valid JSON \(at character 61\)/],
      ['middle', (l) => l.map((x, i) => (i === middle - 1 ? JSON.stringify({ publicKey: nthKey(i), allowedIPs: ['10.9.0.300/32'] }) : x)).join('\n'), new RegExp(`:${middle}: allowedIPs\\[0\\]: 10\\.9\\.0\\.300 is not an IPv4 address`)],
      ['last', (l) => [...l.slice(0, -1), JSON.stringify({ publicKey: `${nthKey(BIG - 1).slice(0, 40)}`, allowedIPs: ['10.9.0.1/32'] })].join('\n'), new RegExp(`:${BIG}: publicKey: not a WireGuard public key`)],
      // The file cut mid-write: its last line unfinished, no newline after it.
      ['cut', (l) => `${l.join('\n')}\n${l[0]!.slice(0, 80)}`, new RegExp(`:${BIG + 1}: not valid JSON`)],
    ];
    for (const [name, broken, message] of cases) {
      const f = file(`${name}.jsonl`, broken(lines));
      const run = await wgjit(['peer', 'import', f], env);
      expectOneLineError(run, 2, new RegExp(`^wgjit: ${f.replace(/[.]/g, '\\.')}${message.source}.*; nothing was imported$`));
      expect(run.stderr).not.toContain(PSK);
      expect(await count()).toBe(0);
    }
  });

  it('usage mistakes: one line, exit 2', async () => {
    expectOneLineError(await wgjit(['peer', 'import'], env), 2, /peer import needs FILE, or - for stdin/);
    expectOneLineError(await wgjit(['peer', 'import', path.join(dir, 'nope')], env), 2, /cannot read .*nope: no such file$/);
    expectOneLineError(await wgjit(['peer', 'import', dir], env), 2, /is not a file/);
    expectOneLineError(await wgjit(['peer', 'import', file('x.conf', '[Peer]\n'), '--format', 'csv'], env), 2, /--format "csv" must be auto, wg, dump, jsonl/);
    expectOneLineError(await wgjit(['peer', 'import', file('what.txt', 'hello world\n')], env), 2, /what\.txt: cannot tell the format .*give --format/);
    expectOneLineError(await wgjit(['peer', 'import', file('bin.dat', Buffer.from([0x5b, 0xff, 0xfe, 0x0a]))], env), 2, /is not UTF-8 text/);
    expectOneLineError(await wgjit(['peer', 'ls', '--dry-run'], env), 2, /--dry-run is an option of 'peer import', not 'peer ls'/);
    expectOneLineError(await wgjit(['peer', 'import', '-', '--allowed-ips', '10.0.0.2/32'], env, ''), 2, /--allowed-ips is an option of 'peer add'/);
  });

  it('the API unreachable: one line, exit 1, before anything is written', async () => {
    const f = file('one.jsonl', `${JSON.stringify({ publicKey: newKey(), allowedIPs: ['10.8.0.2/32'] })}\n`);
    expectOneLineError(await wgjit(['peer', 'import', f], { ...env, WGJIT_API: 'http://127.0.0.1:1' }), 1, /cannot reach the wgjit API/);
  });

  it(`${BIG} records: several requests, progress lines on a stderr that is not a terminal, all stored; again: all unchanged`, async () => {
    const keys = Array.from({ length: BIG }, (_, i) => nthKey(i));
    const dump = [`${formatKey(generatePrivateKey())}\t${newKey()}\t51820\toff`, ...keys.map((k, i) => `${k}\t${PSK}\t(none)\t10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}/32\t0\t0\t0\toff`)].join('\n');
    const f = file('big.dump', `${dump}\n`);
    const started = Date.now();
    let run = await wgjit(['peer', 'import', f], env);
    const took = Date.now() - started;
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toBe(`imported ${BIG} peers from ${f} (dump): ${BIG} created, 0 updated, 0 unchanged\n`);
    const progress = run.stderr.trimEnd().split('\n');
    // An API of this release: written at once (no dry run first), a line every PROGRESS_LINE_EVERY records and at the end.
    const marks = Array.from({ length: BIG / PROGRESS_LINE_EVERY }, (_, i) => (i + 1) * PROGRESS_LINE_EVERY);
    expect(progress).toEqual(marks.map((n) => `wgjit: import: imported ${n}/${BIG} records (${(n * 100) / BIG}%)`));
    expect(await count()).toBe(BIG);
    expect(await store.get(keys[BIG - 1]!)).toMatchObject({ allowedIPs: [`10.0.${((BIG - 1) >> 8) & 255}.${(BIG - 1) & 255}/32`], presharedKey: PSK });
    // Every record readable through the API: each key listed once, with its allowed IPs.
    const listed = new Map<string, { allowedIPs: string[]; hasPresharedKey: boolean }>();
    for (let cursor: string | null = ''; cursor !== null; ) {
      const r = await fetch(`${env.WGJIT_API}/v1/peers?limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, { headers: { authorization: `Bearer ${TOKEN}` } });
      const page = (await r.json()) as { items: Array<{ publicKey: string; allowedIPs: string[]; hasPresharedKey: boolean }>; nextCursor: string | null };
      for (const item of page.items) {
        expect(listed.has(item.publicKey)).toBe(false);
        listed.set(item.publicKey, item);
      }
      cursor = page.nextCursor;
    }
    expect(listed.size).toBe(BIG);
    keys.forEach((k, i) => expect(listed.get(k)).toMatchObject({ allowedIPs: [`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}/32`], hasPresharedKey: true }));
    console.log(`import of ${BIG} records (${Math.ceil(BIG / MAX_BATCH_ITEMS)} requests): ${took} ms`);

    run = await wgjit(['peer', 'import', f, '--format', 'dump'], env);
    expect(run.stdout).toBe(`imported ${BIG} peers from ${f} (dump): 0 created, 0 updated, ${BIG} unchanged\n`);
  });

  it('a small import shows no progress', async () => {
    const f = file('small.jsonl', Array.from({ length: MAX_BATCH_ITEMS }, (_, i) => JSON.stringify({ publicKey: nthKey(i), allowedIPs: ['10.8.0.2/32'] })).join('\n'));
    const run = await wgjit(['peer', 'import', f], env);
    expect(run.code).toBe(0);
    expect(run.stderr).toBe('');
  });

  it('an API of another release refuses a record (a rule this CLI does not know): checked first, listed with its line, nothing written, exit 1', async () => {
    // The CLI checks what an API of its own release checks, so a refusal comes from an API of another
    // release: one that names another version and refuses the second item stands in for it.
    const keys = [newKey(), newKey(), newKey()];
    const refusing = await buildApp({ store, token: TOKEN });
    refusing.addHook('onSend', async (_request, reply, payload) => {
      reply.header(VERSION_HEADER, `${WGJIT_VERSION}-other`);
      return payload;
    });
    refusing.addHook('preSerialization', async (request, _reply, payload: unknown) => {
      if (request.url !== '/v1/peers/batch') return payload;
      const p = payload as { items: Array<{ publicKey: string; result: string; reason?: string }> };
      // The second line's record (requests go in the store's group order, not the file's).
      // A reason that quotes a value of the record: were it a misplaced preshared key, the CLI must not print it.
      const at = p.items.findIndex((item) => item.publicKey === keys[1]);
      if (at >= 0) p.items[at] = { publicKey: keys[1]!, result: 'refused', reason: `allowedIPs[0]: ${PSK} is refused by a rule of the server` };
      return p;
    });
    await refusing.listen({ host: '127.0.0.1', port: 0 });
    try {
      const { port } = refusing.server.address() as { port: number };
      const f = file('refused.jsonl', keys.map((k) => JSON.stringify({ publicKey: k, allowedIPs: ['10.8.0.2/32'] })).join('\n'));
      const run = await wgjit(['peer', 'import', f], { ...env, WGJIT_API: `http://127.0.0.1:${port}` });
      expect(run.code).toBe(1);
      expect(run.stderr).toBe(`wgjit: ${f}:2: refused: allowedIPs[0]: (not shown) is refused by a rule of the server\n`);
      expect(run.stdout).toBe(`nothing written: 1 of 3 peers from ${f} (jsonl) refused; fix them and import again\n`);
      expect(await count()).toBe(0);
    } finally {
      await refusing.close();
    }
  });

  it('an API of this release answers the counts and the refusals only; a refusal is listed with its line', async () => {
    // What the API could still refuse after the CLI's own check (a record written meanwhile, say): one stands in for it.
    // One group for all three, so the request holds them in file order and items[2] is line 3.
    const keys = [newKey(), newKey(), newKey()].map((k) => `AB${k.slice(2)}`);
    const asked: unknown[] = [];
    const refusing = await buildApp({ store, token: TOKEN });
    refusing.addHook('preSerialization', async (request, _reply, payload: unknown) => {
      if (request.url !== '/v1/peers/batch') return payload;
      asked.push((request.body as { results?: string }).results);
      const p = payload as { counts: Record<string, number>; items: Array<{ index?: number; publicKey: string; result: string; reason?: string }> };
      p.counts = { ...p.counts, created: p.counts['created']! - 1, refused: 1 };
      p.items = [{ index: 2, publicKey: keys[2]!, result: 'refused', reason: 'publicKey: stands in for a refusal' }];
      return p;
    });
    await refusing.listen({ host: '127.0.0.1', port: 0 });
    try {
      const { port } = refusing.server.address() as { port: number };
      const f = file('compact.jsonl', keys.map((k) => JSON.stringify({ publicKey: k, allowedIPs: ['10.8.0.2/32'] })).join('\n'));
      const run = await wgjit(['peer', 'import', f], { ...env, WGJIT_API: `http://127.0.0.1:${port}` });
      expect(asked).toEqual(['refused']);
      expect(run.code).toBe(1);
      expect(run.stderr).toBe(`wgjit: ${f}:3: refused: publicKey: stands in for a refusal\n`);
      expect(run.stdout).toBe(`imported 3 peers from ${f} (jsonl): 2 created, 0 updated, 0 unchanged, 1 refused\n`);
      // --json asks for every result.
      await wgjit(['peer', 'import', '--json', f], { ...env, WGJIT_API: `http://127.0.0.1:${port}` });
      expect(asked).toEqual(['refused', undefined]);
    } finally {
      await refusing.close();
    }
  });

  describe('the dump of a real device', () => {
    const NS = 'imp-t';
    let wg: WgInterface | undefined;
    const peers = [
      { publicKey: newKey(), presharedKey: PSK, endpoint: '192.0.2.7:4242', allowedIPs: ['10.8.0.2/32', 'fd00::2/128'], persistentKeepalive: 25 },
      { publicKey: newKey(), allowedIPs: ['10.8.0.3/32'] },
    ];

    beforeAll(async () => {
      await createNamespace(NS);
      wg = await WgInterface.start({ ns: NS, ifname: 'impt0', listenPort: 51820, peers });
    });

    afterAll(async () => {
      await wg?.stop();
      await deleteNamespace(NS);
    });

    it('`wg show IF dump` of wireguard-go, piped in: every peer stored, the private key never shown', async () => {
      const { stdout: dump } = await nsRun(NS, 'wg', ['show', 'impt0', 'dump']);
      expect(dump.split('\n')[0]!.split('\t')).toHaveLength(4);
      const run = await wgjit(['peer', 'import', '-'], env, dump);
      expect(run).toEqual({ code: 0, stdout: 'imported 2 peers from stdin (dump): 2 created, 0 updated, 0 unchanged\n', stderr: '' });
      expect(await store.get(peers[0]!.publicKey)).toMatchObject({ allowedIPs: ['10.8.0.2/32', 'fd00::2/128'], presharedKey: PSK, persistentKeepalive: 25 });
      expect(await store.get(peers[1]!.publicKey)).toMatchObject({ allowedIPs: ['10.8.0.3/32'] });
      expect((await store.get(peers[1]!.publicKey))?.presharedKey).toBeUndefined();

      // The interface line twice: an error that names the line, not the key on it.
      const broken = `${dump.trimEnd()}\n${dump.split('\n')[0]}\n`;
      const bad = await wgjit(['peer', 'import', '-'], env, broken);
      expectOneLineError(bad, 2, /^wgjit: stdin:4: 4 tab-separated fields/);
      expect(bad.stderr).not.toContain(formatKey(wg!.privateKey));
    });
  });
});
