/**
 * PeerStore against a real redis-server (test/support/redis.ts).
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { formatKey, parseKey, PublicKey, publicKeyOf } from '../../src/handshake/keys.js';
import { generatePrivateKey } from '../../harness/noise/keys.js';
import { validateCreate, validatePatch, type PeerGrant, type PeerRecord } from '../../src/authorize/peer.js';
import { cidrs } from '../../harness/cidr.js';
import { decodeCursor, GROUPS, indexKeyName, MAX_BATCH_KEYS, MAX_CREATES_PER_SCRIPT, MAX_LIST_LIMIT, PeerStore, peerKeyName, REDIS_COMMAND_TIMEOUT_MS, StoreCorruptError, StoreUnavailableError, type StoreEvent, type UpsertItem } from '../../src/authorize/store.js';
import { startRedis, type TestRedis } from '../support/redis.js';
import { tai64nFromUnixMs } from '../../src/handshake/tai64n.js';
import { encodeRecord } from '../../src/authorize/record-codec.js';

const NOW = new Date('2030-01-01T00:00:00.000Z');
const newKey = () => formatKey(publicKeyOf(generatePrivateKey()));
/** A key as the data plane passes it to the store. */
const pk = (text: string) => PublicKey.parse(text)!;
const PREFIX = 'st-test:';
const valueKey = (publicKey: string) => peerKeyName(PREFIX, publicKey);
const indexOf = (publicKey: string) => indexKeyName(PREFIX, publicKey.slice(0, 2));
/** No timestamp kept yet: the head of a value. */
const NO_TS = Buffer.alloc(12);
/** A key whose spelling starts with `head` (two characters: its group). */
function keyIn(head: string): string {
  for (;;) {
    const key = newKey();
    const bytes = Buffer.from(key, 'base64');
    const wanted = Buffer.from(`${head}AA`, 'base64'); // 4 characters: 3 bytes, the first 12 bits ours
    bytes[0] = wanted[0]!;
    bytes[1] = (wanted[1]! & 0xf0) | (bytes[1]! & 0x0f);
    const spelled = formatKey(bytes);
    if (spelled.startsWith(head)) return spelled;
  }
}

function record(fields: Record<string, unknown> = {}): PeerRecord {
  const r = validateCreate({ publicKey: newKey(), allowedIPs: ['10.0.0.2/32'], ...fields }, NOW);
  if (!r.ok) throw new Error(r.message);
  return r.value;
}

/** An import item as the batch route makes it: the record, and the same fields as a patch. */
function upsertItem(fields: Record<string, unknown>, now = NOW): UpsertItem {
  const r = validateCreate(fields, now);
  if (!r.ok) throw new Error(r.message);
  const { publicKey: _, ...rest } = fields;
  const p = validatePatch(rest);
  if (!p.ok) throw new Error(p.message);
  return { record: r.value, patch: p.value };
}

/** What authorize hands the device for a record: its values, parsed. */
function grantOf(r: PeerRecord): PeerGrant {
  const grant: PeerGrant = { allowedIPs: cidrs(...r.allowedIPs), version: r.updatedAt };
  if (r.presharedKey !== undefined) grant.presharedKey = parseKey(r.presharedKey)!;
  if (r.persistentKeepalive !== undefined) grant.persistentKeepalive = r.persistentKeepalive;
  return grant;
}

async function until(what: string, check: () => Promise<boolean>, attempts = 100): Promise<void> {
  for (let i = 0; i < attempts; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('PeerStore on a real redis-server', () => {
  let redis: TestRedis;
  let store: PeerStore;
  let raw: Redis;

  beforeAll(async () => {
    redis = await startRedis();
    store = PeerStore.connect(redis.url, { prefix: PREFIX });
    expect(await store.whenReady()).toBe(true);
    raw = new Redis(redis.url);
  });

  afterAll(async () => {
    raw?.disconnect();
    await store?.close();
    await redis?.stop();
  });

  beforeEach(async () => {
    await raw.flushall();
  });

  it('create writes one packed value (no timestamp yet, the record) and its group\'s index; a second create is "exists" and changes nothing', async () => {
    const rec = record({ presharedKey: formatKey(new Uint8Array(32).fill(1)), persistentKeepalive: 25 });
    expect(await store.create(rec)).toEqual({ ok: true, record: rec });
    expect(await raw.getBuffer(valueKey(rec.publicKey))).toEqual(Buffer.concat([NO_TS, encodeRecord(rec)]));
    expect(valueKey(rec.publicKey)).toBe(`st-test:{${rec.publicKey.slice(0, 2)}}:peer:${rec.publicKey}`);
    expect(await raw.zrange(indexOf(rec.publicKey), 0, -1, 'WITHSCORES')).toEqual([rec.publicKey, '0']);
    // A peer's value, its group's index and channel share one hash tag, so one slot (on a Cluster: store-cluster.test.ts).
    const tag = `{${rec.publicKey.slice(0, 2)}}`;
    for (const name of [valueKey(rec.publicKey), indexOf(rec.publicKey), store.channel(rec.publicKey)]) expect(name.slice(name.indexOf('{'), name.indexOf('}') + 1)).toBe(tag);

    const again = { ...rec, allowedIPs: ['10.9.9.9/32'] };
    expect(await store.create(again)).toEqual({ ok: false, reason: 'exists' });
    expect(await store.get(rec.publicKey)).toEqual(rec);
    expect(await raw.zcard(indexOf(rec.publicKey))).toBe(1);
  });

  it('get returns null for an unknown key', async () => {
    expect(await store.get(newKey())).toBeNull();
  });

  it('get refuses a value that is not a record (StoreCorruptError)', async () => {
    const key = newKey();
    await raw.set(valueKey(key), '{"hello":1}'); // shorter than a timestamp
    await expect(store.get(key)).rejects.toBeInstanceOf(StoreCorruptError);
    await raw.set(valueKey(key), Buffer.concat([NO_TS, Buffer.from('{"hello":1}')]));
    await expect(store.get(key)).rejects.toBeInstanceOf(StoreCorruptError);
  });

  it('list pages through 250 records in key order with opaque cursors', async () => {
    const recs = Array.from({ length: 250 }, () => record());
    for (const r of recs) expect((await store.create(r)).ok).toBe(true);
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page = await store.list({ limit: 100, cursor });
      if (!page.ok) throw new Error('bad cursor');
      seen.push(...page.items.map((r) => r.publicKey));
      cursor = page.nextCursor;
      if (cursor !== null) {
        expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
        expect(decodeCursor(cursor)).toBe(page.items[page.items.length - 1]!.publicKey);
      }
      pages++;
    } while (cursor !== null);
    expect(pages).toBe(3);
    // Keys are ASCII, so code-unit order is Redis's byte order.
    const keys = recs.map((r) => r.publicKey).sort();
    expect(seen).toEqual(keys);
  });

  it('list: exact multiple of the limit ends with nextCursor null; limits are clamped; bad cursors are tagged', async () => {
    for (let i = 0; i < 4; i++) await store.create(record());
    const first = await store.list({ limit: 2 });
    expect(first.ok && first.items.length === 2 && first.nextCursor !== null).toBe(true);
    const second = await store.list({ limit: 2, cursor: first.ok ? first.nextCursor : null });
    expect(second.ok && second.items.length === 2 && second.nextCursor === null).toBe(true);
    const all = await store.list({ limit: MAX_LIST_LIMIT * 10 });
    expect(all.ok && all.items.length).toBe(4);
    expect(await store.list({ cursor: 'not!base64' })).toEqual({ ok: false, reason: 'bad_cursor' });
    expect(await store.list({ cursor: Buffer.from('hello').toString('base64url') })).toEqual({ ok: false, reason: 'bad_cursor' });
  });

  it('list skips an index entry whose value is gone', async () => {
    const a = record();
    await store.create(a);
    const gone = newKey();
    await raw.zadd(indexOf(gone), 0, gone);
    const page = await store.list();
    expect(page.ok && page.items.map((r) => r.publicKey)).toEqual([a.publicKey]);
  });

  it('list walks the groups in key order: the first and last groups, a sparse middle, and a cursor whose key was deleted', async () => {
    expect(GROUPS).toHaveLength(4096);
    expect([...GROUPS].sort()).toEqual(GROUPS);
    const keys = ['++', '+/', 'AA', 'Az', 'zy', 'zz', 'zz'].map(keyIn);
    for (const k of keys) await store.create(record({ publicKey: k }));
    const want = [...keys].sort();
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page = await store.list({ limit: 2, cursor });
      if (!page.ok) throw new Error('bad cursor');
      seen.push(...page.items.map((r) => r.publicKey));
      cursor = page.nextCursor;
      // The key a cursor names is deleted before the next page: the walk goes on after it.
      if (cursor !== null) await store.delete(decodeCursor(cursor)!);
    } while (cursor !== null);
    expect(seen).toEqual(want);
    // Pages of one: every key, in order, nothing twice.
    for (const k of want) await store.create(record({ publicKey: k }));
    const ones: string[] = [];
    cursor = null;
    do {
      const page = await store.list({ limit: 1, cursor });
      if (!page.ok) throw new Error('bad cursor');
      ones.push(...page.items.map((r) => r.publicKey));
      cursor = page.nextCursor;
    } while (cursor !== null);
    expect(ones).toEqual(want);
  });

  it('update merges atomically, null clears, updatedAt moves, not_found for unknown', async () => {
    const rec = record({ presharedKey: formatKey(new Uint8Array(32).fill(2)), persistentKeepalive: 25, expiresAt: '2031-01-01T00:00:00Z' });
    await store.create(rec);
    const later = new Date('2030-02-01T00:00:00.000Z');
    const r = await store.update(rec.publicKey, { allowedIPs: ['fd00::/64', '10.1.0.0/16'], presharedKey: null, persistentKeepalive: null, disabled: true }, later);
    const want = { publicKey: rec.publicKey, allowedIPs: ['fd00::/64', '10.1.0.0/16'], expiresAt: rec.expiresAt, disabled: true, createdAt: rec.createdAt, updatedAt: later.toISOString() };
    expect(r).toEqual({ ok: true, record: want });
    expect(await store.get(rec.publicKey)).toEqual(want);
    expect(await store.update(newKey(), { disabled: true })).toEqual({ ok: false, reason: 'not_found' });
  });

  it('delete removes the value and the index entry and says whether it existed', async () => {
    const rec = record();
    await store.create(rec);
    expect(await store.delete(rec.publicKey)).toBe(true);
    expect(await store.get(rec.publicKey)).toBeNull();
    expect(await raw.zcard(indexOf(rec.publicKey))).toBe(0);
    expect(await raw.exists(valueKey(rec.publicKey))).toBe(0); // no timestamp was kept: nothing stays
    expect(await store.delete(rec.publicKey)).toBe(false);
  });

  it('authorize: unknown, disabled, expired, allowed', async () => {
    const ok = record({ expiresAt: '2030-01-01T01:00:00Z' });
    const off = record({ disabled: true });
    await store.create(ok);
    await store.create(off);
    expect(await store.authorize(pk(newKey()), NOW)).toEqual({ allowed: false, reason: 'unknown' });
    expect(await store.authorize(pk(off.publicKey), NOW)).toEqual({ allowed: false, reason: 'disabled' });
    expect(await store.authorize(pk(ok.publicKey), new Date('2030-01-01T01:00:00Z'))).toEqual({ allowed: false, reason: 'expired' });
    expect(await store.authorize(pk(ok.publicKey), NOW)).toEqual({ allowed: true, grant: grantOf(ok) });
  });

  it('authorizeMany answers like authorize for every key, across batches, and leaves corrupt records out', async () => {
    const allowed = Array.from({ length: MAX_BATCH_KEYS + 5 }, () => record());
    for (const r of allowed) await store.create(r);
    const off = record({ disabled: true });
    await store.create(off);
    const unknown = newKey();
    const corrupt = record();
    await store.create(corrupt);
    await raw.set(valueKey(corrupt.publicKey), Buffer.concat([NO_TS, Buffer.from('{"not":"a record"}')]));
    const keys = [unknown, ...allowed.map((r) => r.publicKey), off.publicKey, corrupt.publicKey];
    const answers = await store.authorizeMany(keys.map(pk), NOW);
    expect(answers.size).toBe(keys.length - 1);
    expect(answers.has(pk(corrupt.publicKey).id)).toBe(false);
    for (const key of [unknown, off.publicKey, allowed[0]!.publicKey, allowed.at(-1)!.publicKey]) {
      expect(answers.get(pk(key).id)).toEqual(await store.authorize(pk(key), NOW));
    }
    expect(await store.authorizeMany([], NOW)).toEqual(new Map());
  });

  it('advanceTimestamp keeps the greatest TAI64N per key, atomically, beyond the record', async () => {
    const key = newKey();
    const ts = (unixMs: number) => tai64nFromUnixMs(unixMs);
    expect(await store.advanceTimestamp(pk(key), ts(1_000_000))).toBe(true);
    expect(await store.advanceTimestamp(pk(key), ts(1_000_000))).toBe(false); // the same: a replay
    expect(await store.advanceTimestamp(pk(key), ts(999_000))).toBe(false); // older
    expect(await store.advanceTimestamp(pk(key), ts(1_001_000))).toBe(true);
    expect(await store.advanceTimestamp(pk(newKey()), ts(1_000))).toBe(true); // per key
    expect(await raw.getBuffer(valueKey(key))).toEqual(Buffer.from(ts(1_001_000))); // a timestamp, no record
    // Of many concurrent attempts with one timestamp, exactly one wins.
    const racers = await Promise.all(Array.from({ length: 20 }, () => store.advanceTimestamp(pk(key), ts(1_002_000))));
    expect(racers.filter(Boolean)).toHaveLength(1);
    await expect(store.advanceTimestamp(pk(key), new Uint8Array(11))).rejects.toThrow(RangeError);
    // Byte order, not the server's locale: a byte past 0x7f is greater.
    const high = Buffer.from(ts(1_002_000));
    high[11] = 0x80;
    expect(await store.advanceTimestamp(pk(key), high)).toBe(true);
    high[11] = 0x7f;
    expect(await store.advanceTimestamp(pk(key), high)).toBe(false);
  });

  it('the timestamp outlives the record (a tombstone) and a record created again keeps it', async () => {
    const rec = record();
    await store.create(rec);
    expect(await store.advanceTimestamp(pk(rec.publicKey), tai64nFromUnixMs(2_000_000))).toBe(true);
    expect(await store.get(rec.publicKey)).toEqual(rec); // the timestamp does not disturb the record
    expect(await store.delete(rec.publicKey)).toBe(true);
    expect(await raw.getBuffer(valueKey(rec.publicKey))).toEqual(Buffer.from(tai64nFromUnixMs(2_000_000)));
    expect(await store.get(rec.publicKey)).toBeNull();
    expect(await store.authorize(pk(rec.publicKey), NOW)).toEqual({ allowed: false, reason: 'unknown' });
    expect((await store.authorizeMany([pk(rec.publicKey)], NOW)).get(pk(rec.publicKey).id)).toEqual({ allowed: false, reason: 'unknown' });
    expect(await store.delete(rec.publicKey)).toBe(false);
    expect((await store.create(rec)).ok).toBe(true);
    expect(await store.advanceTimestamp(pk(rec.publicKey), tai64nFromUnixMs(1_999_000))).toBe(false); // replayed from before the delete
    expect(await store.update(rec.publicKey, { disabled: true })).toMatchObject({ ok: true });
    expect(await store.advanceTimestamp(pk(rec.publicKey), tai64nFromUnixMs(2_000_000))).toBe(false);
  });

  it('a tombstone is kept for the retention, then goes; a record created again holds its timestamp for good', async () => {
    const RETENTION_MS = 400;
    const short = PeerStore.connect(redis.url, { prefix: PREFIX, timestampRetentionMs: RETENTION_MS });
    try {
      await short.whenReady();
      const rec = record();
      await short.create(rec);
      expect(await short.advanceTimestamp(pk(rec.publicKey), tai64nFromUnixMs(2_000_000))).toBe(true);
      expect(await raw.pttl(valueKey(rec.publicKey))).toBe(-1); // a record's timestamp has no expiry
      expect(await short.delete(rec.publicKey)).toBe(true);
      const ttl = await raw.pttl(valueKey(rec.publicKey));
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(RETENTION_MS);
      expect(await short.advanceTimestamp(pk(rec.publicKey), tai64nFromUnixMs(2_001_000))).toBe(true); // a tombstone advances
      expect(await raw.pttl(valueKey(rec.publicKey))).toBeGreaterThan(0); // and keeps its expiry
      expect((await short.create(rec)).ok).toBe(true);
      expect(await raw.pttl(valueKey(rec.publicKey))).toBe(-1); // registered again: kept with the record
      expect(await short.advanceTimestamp(pk(rec.publicKey), tai64nFromUnixMs(2_000_500))).toBe(false);

      // A key the store never held gets a tombstone only for the retention too (an initiation
      // that raced its delete), and a deleted key's tombstone goes after it.
      const other = newKey();
      expect(await short.advanceTimestamp(pk(other), tai64nFromUnixMs(3_000_000))).toBe(true);
      expect(await raw.pttl(valueKey(other))).toBeGreaterThan(0);
      expect(await short.delete(rec.publicKey)).toBe(true);
      await until('the tombstones to expire', async () => (await raw.exists(valueKey(rec.publicKey), valueKey(other))) === 0);
      expect(await short.advanceTimestamp(pk(rec.publicKey), tai64nFromUnixMs(1_000))).toBe(true); // forgotten: the pipeline's age bound refuses such a one
    } finally {
      await short.close();
    }
  });

  it('update is a compare-and-set: concurrent patches of different fields all land', async () => {
    const rec = record();
    await store.create(rec);
    const results = await Promise.all([
      store.update(rec.publicKey, { persistentKeepalive: 25 }),
      store.update(rec.publicKey, { expiresAt: '2031-01-01T00:00:00.000Z' }),
      store.update(rec.publicKey, { allowedIPs: ['10.0.0.9/32'] }),
      store.update(rec.publicKey, { disabled: true }),
    ]);
    expect(results.every((r) => r.ok)).toBe(true);
    expect(await store.get(rec.publicKey)).toMatchObject({ persistentKeepalive: 25, expiresAt: '2031-01-01T00:00:00.000Z', allowedIPs: ['10.0.0.9/32'], disabled: true });
  });

  describe('upsertMany (an import)', () => {
    const LATER = new Date('2030-03-01T00:00:00.000Z');
    const PSK2 = formatKey(new Uint8Array(32).fill(2));

    it('creates new keys with the index; an existing one takes the given fields, keeps the others, and moves updatedAt', async () => {
      const kept = record({ presharedKey: PSK2, persistentKeepalive: 25, expiresAt: '2031-01-01T00:00:00Z', disabled: true });
      await store.create(kept);
      const fresh = newKey();
      const outcomes = await store.upsertMany([upsertItem({ publicKey: fresh, allowedIPs: ['10.0.0.9/32'], persistentKeepalive: 15 }), upsertItem({ publicKey: kept.publicKey, allowedIPs: ['fd00::/64', '10.1.0.0/16'] })], { now: LATER });
      expect(outcomes).toEqual(['created', 'updated']);
      expect(await store.get(fresh)).toEqual({ publicKey: fresh, allowedIPs: ['10.0.0.9/32'], persistentKeepalive: 15, disabled: false, createdAt: NOW.toISOString(), updatedAt: NOW.toISOString() });
      // Not cleared, not re-enabled: an import sets what it gives.
      expect(await store.get(kept.publicKey)).toEqual({ ...kept, allowedIPs: ['fd00::/64', '10.1.0.0/16'], updatedAt: LATER.toISOString() });
      for (const k of [fresh, kept.publicKey]) expect(await raw.zrange(indexOf(k), 0, -1)).toContain(k);
    });

    it(`many keys of one group (more than one script's ${MAX_CREATES_PER_SCRIPT}): created together, existing ones and a tombstone among them handled each as alone`, async () => {
      const keys = Array.from({ length: MAX_CREATES_PER_SCRIPT * 2 + 5 }, () => keyIn('Gq'));
      const existing = record({ publicKey: keys[3]! });
      await store.create(existing);
      const gone = record({ publicKey: keys[200]! });
      await store.create(gone);
      expect(await store.advanceTimestamp(pk(gone.publicKey), tai64nFromUnixMs(5_000_000))).toBe(true);
      await store.delete(gone.publicKey); // a tombstone, with an expiry
      const items = keys.map((k) => upsertItem({ publicKey: k, allowedIPs: ['10.9.0.1/32'] }));
      const outcomes = await store.upsertMany(items, { now: LATER });
      expect(outcomes.filter((o) => o === 'created')).toHaveLength(keys.length - 1);
      expect(outcomes[3]).toBe('updated');
      expect(await raw.zcard(indexOf(keys[0]!))).toBe(keys.length);
      for (const k of keys) expect(await store.get(k)).toMatchObject({ publicKey: k, allowedIPs: ['10.9.0.1/32'] });
      // The tombstone's timestamp went into the new value, and its expiry went.
      expect((await raw.getBuffer(valueKey(gone.publicKey)))!.subarray(0, 12)).toEqual(Buffer.from(tai64nFromUnixMs(5_000_000)));
      expect(await raw.pttl(valueKey(gone.publicKey))).toBe(-1);
      expect(await store.upsertMany(items, { now: LATER })).toEqual(keys.map(() => 'unchanged'));
    });

    it('unchanged when the record already holds the values: nothing written; keepalive 0 turns it off', async () => {
      const rec = record({ presharedKey: PSK2, persistentKeepalive: 25 });
      await store.create(rec);
      const before = await raw.getBuffer(valueKey(rec.publicKey));
      const same = upsertItem({ publicKey: rec.publicKey, allowedIPs: rec.allowedIPs, presharedKey: PSK2, persistentKeepalive: 25, disabled: false });
      expect(await store.upsertMany([same], { now: LATER })).toEqual(['unchanged']);
      expect(await raw.getBuffer(valueKey(rec.publicKey))).toEqual(before);
      // After an update, the comparison still holds: values, not text.
      await store.upsertMany([upsertItem({ publicKey: rec.publicKey, allowedIPs: ['10.0.0.0/24'] })], { now: LATER });
      expect(await store.upsertMany([upsertItem({ publicKey: rec.publicKey, allowedIPs: ['10.0.0.0/24'], persistentKeepalive: 25 })], { now: LATER })).toEqual(['unchanged']);
      expect(await store.upsertMany([upsertItem({ publicKey: rec.publicKey, allowedIPs: ['10.0.0.0/24'], persistentKeepalive: 0 })], { now: LATER })).toEqual(['updated']);
      expect((await store.get(rec.publicKey))?.persistentKeepalive).toBeUndefined();
      // Order of allowed IPs is part of the record.
      expect(await store.upsertMany([upsertItem({ publicKey: rec.publicKey, allowedIPs: ['10.0.0.0/24', '10.9.0.0/16'] })])).toEqual(['updated']);
      expect(await store.upsertMany([upsertItem({ publicKey: rec.publicKey, allowedIPs: ['10.9.0.0/16', '10.0.0.0/24'] })])).toEqual(['updated']);
    });

    it("mode 'create' leaves an existing record alone (exists); a dry run decides the same and writes nothing", async () => {
      const rec = record();
      await store.create(rec);
      const before = await raw.getBuffer(valueKey(rec.publicKey));
      const fresh = newKey();
      const items = [upsertItem({ publicKey: rec.publicKey, allowedIPs: ['10.7.0.0/16'] }), upsertItem({ publicKey: fresh, allowedIPs: ['10.0.0.3/32'] }), upsertItem({ publicKey: rec.publicKey, allowedIPs: rec.allowedIPs })];
      expect(await store.upsertMany(items, { dryRun: true })).toEqual(['updated', 'created', 'unchanged']);
      expect(await store.upsertMany(items.slice(0, 2), { mode: 'create', dryRun: true })).toEqual(['exists', 'created']);
      expect(await raw.dbsize()).toBe(2); // the value and its group's index: nothing more
      expect(await raw.getBuffer(valueKey(rec.publicKey))).toEqual(before);
      expect(await store.upsertMany(items.slice(0, 2), { mode: 'create' })).toEqual(['exists', 'created']);
      expect(await raw.getBuffer(valueKey(rec.publicKey))).toEqual(before);
      expect(await store.get(fresh)).not.toBeNull();
    });

    it('publishes an upsert event naming each created or updated record, none for unchanged, exists or a dry run', async () => {
      const events: string[] = [];
      const sub = new Redis(redis.url);
      sub.on('smessage', (_c: string, m: string) => events.push(m));
      try {
        const rec = record();
        const fresh = newKey();
        await sub.ssubscribe(...new Set([store.channel(rec.publicKey), store.channel(fresh)]));
        await store.create(rec);
        const items = [upsertItem({ publicKey: rec.publicKey, allowedIPs: ['10.7.0.0/16'] }), upsertItem({ publicKey: fresh, allowedIPs: ['10.0.0.3/32'] })];
        await store.upsertMany(items, { dryRun: true });
        await store.upsertMany(items);
        await store.upsertMany(items); // unchanged both
        await store.upsertMany(items, { mode: 'create' }); // exists both
        await until('three events', async () => events.length >= 3);
        await new Promise((r) => setTimeout(r, 100));
        const [created, ...imported] = events.map((e) => JSON.parse(e) as { op: string; publicKeys: string[] });
        expect(created).toEqual({ op: 'upsert', publicKeys: [rec.publicKey] });
        // The items of one batch are written at once: their events in any order.
        expect(imported.sort((a, b) => a.publicKeys[0]!.localeCompare(b.publicKeys[0]!))).toEqual(
          [{ op: 'upsert', publicKeys: [rec.publicKey] }, { op: 'upsert', publicKeys: [fresh] }].sort((a, b) => a.publicKeys[0]!.localeCompare(b.publicKeys[0]!)),
        );
      } finally {
        sub.disconnect();
      }
    });

    it('2,500 items in one call, on a fresh server (the script not loaded yet), in order', async () => {
      await raw.script('FLUSH');
      const keys = Array.from({ length: 2500 }, newKey);
      const items = keys.map((k, i) => upsertItem({ publicKey: k, allowedIPs: [`10.${i >> 8}.${i & 255}.0/24`], presharedKey: PSK2 }));
      expect(await store.upsertMany(items)).toEqual(keys.map(() => 'created'));
      let indexed = 0;
      for (const index of await raw.keys('st-test:{*}:peers')) indexed += await raw.zcard(index);
      expect(indexed).toBe(2500);
      const again = await store.upsertMany(items.map((it, i) => (i % 2 === 0 ? it : upsertItem({ publicKey: keys[i]!, allowedIPs: ['fd00::/64'] }))));
      expect(again).toEqual(keys.map((_, i) => (i % 2 === 0 ? 'unchanged' : 'updated')));
      expect((await store.get(keys[1]!))?.allowedIPs).toEqual(['fd00::/64']);
      expect((await store.get(keys[1]!))?.presharedKey).toBe(PSK2);
    });
  });

  it('publishes one event per mutation on its group\'s shard channel <prefix>{<group>}:events, none for no-ops', async () => {
    /** As published: the key in base64. */
    const events: Array<{ op: StoreEvent['op']; publicKeys: string[] }> = [];
    const sub = new Redis(redis.url);
    const rec = record();
    expect(store.channel(rec.publicKey)).toBe(`st-test:{${rec.publicKey.slice(0, 2)}}:events`);
    await sub.ssubscribe(store.channel(rec.publicKey));
    sub.on('smessage', (_channel: string, message: string) => events.push(JSON.parse(message) as { op: StoreEvent['op']; publicKeys: string[] }));
    try {
      await store.create(rec);
      await store.create(rec); // exists: no event
      await store.update(rec.publicKey, { disabled: true });
      await store.update(newKey(), { disabled: true }); // not found: no event
      await store.delete(rec.publicKey);
      await store.delete(rec.publicKey); // gone: no event
      await until('three events', async () => events.length >= 3);
      await new Promise((r) => setTimeout(r, 100)); // room for a wrong fourth event to arrive
      expect(events).toEqual([
        { op: 'upsert', publicKeys: [rec.publicKey] },
        { op: 'upsert', publicKeys: [rec.publicKey] },
        { op: 'delete', publicKeys: [rec.publicKey] },
      ]);
    } finally {
      sub.disconnect();
    }
  });

  it('an import publishes one event per script call: every record it created in the group, named once', async () => {
    const messages: string[] = [];
    const sub = new Redis(redis.url);
    const keys = Array.from({ length: MAX_CREATES_PER_SCRIPT + 2 }, () => keyIn('Ev'));
    await sub.ssubscribe(store.channel(keys[0]!));
    sub.on('smessage', (_channel: string, message: string) => messages.push(message));
    try {
      await store.create(record({ publicKey: keys[0]! })); // exists in the import: not in its event
      await store.upsertMany(keys.map((k) => upsertItem({ publicKey: k, allowedIPs: ['10.0.0.1/32'] })), { mode: 'create' });
      await until('the events', async () => messages.length >= 3);
      await new Promise((r) => setTimeout(r, 100)); // room for a wrong extra event
      const named = messages.slice(1).map((m) => (JSON.parse(m) as { op: string; publicKeys: string[] }).publicKeys);
      expect(named.map((k) => k.length)).toEqual([MAX_CREATES_PER_SCRIPT - 1, 2]);
      expect(named.flat().sort()).toEqual(keys.slice(1).sort());
    } finally {
      sub.disconnect();
    }
  });

  it('subscribe() delivers parsed events through its own connection', async () => {
    const events: Array<{ op: StoreEvent['op']; publicKey: string }> = [];
    const sub = await store.subscribe((e) => events.push({ op: e.op, publicKey: e.publicKey.toString() }));
    try {
      const rec = record();
      await store.create(rec);
      await raw.spublish(store.channel(rec.publicKey), 'not json'); // ignored
      const elsewhere = keyIn(rec.publicKey.startsWith('zz') ? 'AA' : 'zz');
      await raw.spublish(store.channel(rec.publicKey), JSON.stringify({ op: 'delete', publicKeys: [elsewhere] })); // not of this channel's group: ignored
      // Several keys in one message: one event each, those of other groups left out.
      const other = keyIn(rec.publicKey.slice(0, 2));
      await raw.spublish(store.channel(rec.publicKey), JSON.stringify({ op: 'upsert', publicKeys: [other, elsewhere, rec.publicKey] }));
      // The single-key spelling of earlier releases is still read.
      await raw.spublish(store.channel(rec.publicKey), JSON.stringify({ op: 'upsert', publicKey: other }));
      await store.delete(rec.publicKey);
      await until('five events', async () => events.length >= 5);
      expect(events).toEqual([
        { op: 'upsert', publicKey: rec.publicKey },
        { op: 'upsert', publicKey: other },
        { op: 'upsert', publicKey: rec.publicKey },
        { op: 'upsert', publicKey: other },
        { op: 'delete', publicKey: rec.publicKey },
      ]);
    } finally {
      await sub.close();
    }
  });

  it('a second store with another prefix sees nothing of the first', async () => {
    const other = new PeerStore(new Redis(redis.url), { prefix: 'st-other:' });
    try {
      const rec = record();
      await store.create(rec);
      expect(await other.get(rec.publicKey)).toBeNull();
      const page = await other.list();
      expect(page.ok && page.items).toEqual([]);
    } finally {
      await other.close();
    }
  });
});

describe('PeerStore when Redis goes away', () => {
  let redis: TestRedis | undefined;
  let store: PeerStore | undefined;

  afterAll(async () => {
    await store?.close();
    await redis?.stop();
  });

  it('fails with StoreUnavailableError while down and recovers by itself on the same port', async () => {
    redis = await startRedis();
    const port = redis.port;
    store = PeerStore.connect(redis.url, { prefix: 'st-outage:' });
    expect(await store.whenReady()).toBe(true);
    const rec = record();
    expect((await store.create(rec)).ok).toBe(true);

    await redis.stop();
    for (const op of [() => store!.get(rec.publicKey), () => store!.create(record()), () => store!.list(), () => store!.update(rec.publicKey, { disabled: true }), () => store!.delete(rec.publicKey), () => store!.authorize(pk(rec.publicKey), NOW), () => store!.upsertMany([upsertItem({ publicKey: newKey(), allowedIPs: ['10.0.0.2/32'] })])]) {
      await expect(op()).rejects.toBeInstanceOf(StoreUnavailableError);
    }
    expect(await store.ping()).toBe(false);

    // A fresh server (no persistence): the data is gone, the client is the same.
    redis = await startRedis({ port });
    await until('the store to reconnect', () => store!.ping());
    expect(await store.get(rec.publicKey)).toBeNull();
    // Scripts are loaded again on demand (NOSCRIPT → EVAL).
    expect((await store.create(rec)).ok).toBe(true);
    expect(await store.authorize(pk(rec.publicKey), NOW)).toEqual({ allowed: true, grant: grantOf(rec) });
  });

  it('a Redis that accepts but does not answer counts as unavailable (command timeout)', async () => {
    const r = await startRedis();
    const s = PeerStore.connect(r.url, { prefix: 'st-pause:' });
    const admin = new Redis(r.url);
    try {
      expect(await s.whenReady()).toBe(true);
      await admin.client('PAUSE', REDIS_COMMAND_TIMEOUT_MS * 2, 'ALL');
      await expect(s.get(newKey())).rejects.toBeInstanceOf(StoreUnavailableError);
    } finally {
      admin.disconnect();
      await s.close();
      await r.stop();
    }
  });

  it('a store whose Redis never came up fails the same way, subscribe too (rather than waiting for it), and says why', async () => {
    const s = PeerStore.connect('redis://127.0.0.1:1', { prefix: 'st-never:' });
    try {
      expect(await s.whenReady(200)).toBe(false);
      await expect(s.get(newKey())).rejects.toBeInstanceOf(StoreUnavailableError);
      expect(s.problem()).toBe('connect ECONNREFUSED 127.0.0.1:1');
      await expect(s.subscribe(() => {})).rejects.toThrow('peer store unavailable (subscribe): connect ECONNREFUSED 127.0.0.1:1');
    } finally {
      await s.close();
    }
  });

  it('rejects a URL that is not a Redis URL', () => {
    expect(() => PeerStore.connect('http://127.0.0.1:6379')).toThrow(/invalid Redis URL: the scheme "http" is not a Redis scheme/);
    expect(() => PeerStore.connect('nonsense')).toThrow(/invalid Redis URL/);
  });
});
