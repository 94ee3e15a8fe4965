/**
 * `wgjit store migrate` (the real bin/wgjit, after `make`) on a real
 * redis-server holding the single-node layout of earlier releases, written
 * here as those releases wrote it (docs/store-schema.md, "Migrating").
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { validateCreate, type PeerRecord } from '../../src/authorize/peer.js';
import { PeerStore, peerKeyName } from '../../src/authorize/store.js';
import { formatKey, PublicKey, publicKeyOf } from '../../src/handshake/keys.js';
import { tai64nFromUnixMs } from '../../src/handshake/tai64n.js';
import { generatePrivateKey } from '../../harness/noise/keys.js';
import { startRedis, type TestRedis } from '../support/redis.js';
import { wgjit } from '../support/wgjit.js';

const NOW = new Date('2030-01-01T00:00:00.000Z');
const newKey = () => formatKey(publicKeyOf(generatePrivateKey()));
const PSK = formatKey(new Uint8Array(32).fill(5));

function record(fields: Record<string, unknown>): PeerRecord {
  const r = validateCreate({ publicKey: newKey(), allowedIPs: ['10.0.0.2/32'], ...fields }, NOW);
  if (!r.ok) throw new Error(r.message);
  return r.value;
}

describe('wgjit store migrate', () => {
  let redis: TestRedis;
  let raw: Redis;
  let store: PeerStore;
  const hex = (unixMs: number) => Buffer.from(tai64nFromUnixMs(unixMs)).toString('hex');

  /** The old layout, as earlier releases wrote it: JSON per peer, one index, one timestamp hash. */
  async function writeOldLayout(records: PeerRecord[], timestamps: Record<string, string>): Promise<void> {
    for (const r of records) {
      await raw.set(`wgjit:peer:${r.publicKey}`, JSON.stringify(r).replace(/\//g, '\\/')); // as Redis's cjson spelled "/"
      await raw.zadd('wgjit:peers', 0, r.publicKey);
    }
    if (Object.keys(timestamps).length > 0) await raw.hset('wgjit:timestamps', timestamps);
  }

  const oldKeys = async () => (await raw.keys('wgjit:*')).filter((k) => !k.includes('{')).sort();

  beforeAll(async () => {
    redis = await startRedis();
    raw = new Redis(redis.url);
    store = PeerStore.connect(redis.url);
    expect(await store.whenReady()).toBe(true);
  });

  afterAll(async () => {
    raw?.disconnect();
    await store?.close();
    await redis?.stop();
  });

  beforeEach(async () => {
    await raw.flushall();
  });

  it('moves every record and timestamp, keeps what the new layout already has, removes the old keys; a second run has nothing to do', async () => {
    const plain = record({});
    const full = record({ allowedIPs: ['10.1.0.0/16', 'fd00:1::/64'], presharedKey: PSK, persistentKeepalive: 25, expiresAt: '2031-01-01T00:00:00Z', disabled: true });
    const recreated = record({ allowedIPs: ['10.0.0.9/32'] });
    const deleted = newKey();
    await writeOldLayout([plain, full, recreated], { [plain.publicKey]: hex(5_000_000), [deleted]: hex(7_000_000) });
    await raw.zadd('wgjit:peers', 0, newKey()); // an index entry whose record was gone: nothing to carry
    // Created in the new layout meanwhile (by this release's API): it stays as it is.
    const newer = { ...recreated, allowedIPs: ['10.0.0.10/32'], updatedAt: '2030-06-01T00:00:00.000Z' };
    expect((await store.create(newer)).ok).toBe(true);
    expect(await store.legacyLayout()).toMatch(/wgjit store migrate/);

    const dry = await wgjit(['store', 'migrate', '--redis', redis.url, '--dry-run']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/^would migrate: 3 records \(none written\), 2 timestamps$/m);
    expect(await store.get(plain.publicKey)).toBeNull(); // nothing written
    expect(await oldKeys()).toHaveLength(5);

    const run = await wgjit(['store', 'migrate', '--redis', redis.url]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toBe('migrated: 3 records (2 written, 1 already there), 2 timestamps\nthe old layout is removed\n');
    expect(run.stderr).toMatch(/^records: 3 of 4$/m); // the index counted the entry without a record
    expect(await store.get(plain.publicKey)).toEqual(plain);
    expect(await store.get(full.publicKey)).toEqual(full);
    expect(await store.get(recreated.publicKey)).toEqual(newer);
    // Timestamps: with the record, and as a tombstone for the peer deleted before.
    expect(await store.advanceTimestamp(PublicKey.parse(plain.publicKey)!, tai64nFromUnixMs(5_000_000))).toBe(false);
    expect(await store.advanceTimestamp(PublicKey.parse(deleted)!, tai64nFromUnixMs(6_000_000))).toBe(false);
    expect(await raw.getBuffer(peerKeyName('wgjit:', deleted))).toEqual(Buffer.from(tai64nFromUnixMs(7_000_000)));
    expect(await store.get(deleted)).toBeNull();
    const page = await store.list();
    expect(page.ok && page.items.map((r) => r.publicKey).sort()).toEqual([plain, full, recreated].map((r) => r.publicKey).sort());
    expect(await oldKeys()).toEqual([]);
    expect(await store.legacyLayout()).toBeNull();

    const again = await wgjit(['store', 'migrate', '--redis', redis.url]);
    expect(again.code).toBe(0);
    expect(again.stdout).toBe('migrated: 0 records (0 written, 0 already there), 0 timestamps\nno old layout found: nothing to do\n');
  });

  it('a record it cannot read keeps the whole old layout and is named; once it is fixed, a second run finishes', async () => {
    const good = record({});
    const bad = newKey();
    await writeOldLayout([good], {});
    await raw.set(`wgjit:peer:${bad}`, '{"publicKey":"not this one","allowedIPs":[]}');
    await raw.zadd('wgjit:peers', 0, bad);

    const run = await wgjit(['store', 'migrate', '--redis', redis.url]);
    expect(run.code).toBe(1);
    expect(run.stdout).toContain(`not migrated (the old layout is kept; fix or delete these, then run again):\n  wgjit:peer:${bad}: not a peer record of the old layout`);
    expect(await store.get(good.publicKey)).toEqual(good); // written: the new layout is complete for what could be read
    expect(await oldKeys()).toEqual(['wgjit:peer:' + bad, 'wgjit:peer:' + good.publicKey, 'wgjit:peers'].sort());

    await raw.del(`wgjit:peer:${bad}`);
    const again = await wgjit(['store', 'migrate', '--redis', redis.url]);
    expect(again.code, again.stdout).toBe(0);
    expect(again.stdout).toContain('1 records (0 written, 1 already there)');
    expect(await oldKeys()).toEqual([]);
  });

  it('wgjit api refuses to start on a store still in the old layout, naming the command that fixes it', async () => {
    await writeOldLayout([record({})], {});
    const run = await wgjit(['api', '--redis', redis.url, '--api-token', 'migrate-test-token', '--api-listen', '127.0.0.1:0']);
    expect(run.code).toBe(1);
    expect(run.stderr.trimEnd().split('\n').at(-1)).toMatch(/^wgjit: the store holds the layout of an earlier wgjit \(wgjit:peers\); run `wgjit store migrate` with the same --redis first$/);
  });

  it('usage: an unknown subcommand and a missing --redis are one-line errors', async () => {
    const unknown = await wgjit(['store', 'shrink']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toBe('wgjit: unknown store command "shrink" (migrate, status, confirm-reset; see wgjit store --help)\n');
    const noRedis = await wgjit(['store', 'migrate']);
    expect(noRedis.code).toBe(2);
    expect(noRedis.stderr).toMatch(/^wgjit: .*redis.*\n$/);
  });
});
