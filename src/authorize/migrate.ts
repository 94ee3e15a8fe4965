/**
 * `wgjit store migrate`: from the single-node layout of earlier releases
 * (one JSON string per peer under `<prefix>peer:<key>`, one sorted-set index
 * `<prefix>peers`, one timestamp hash `<prefix>timestamps`) to today's
 * (store.ts; docs/store-schema.md), in place, on the same Redis. From
 * there, Redis's own `redis-cli --cluster import` moves the keys to a
 * Cluster: the hash tags keep each group in one slot.
 *
 * Idempotent and resumable: a peer already in the new layout is left as
 * it is (a record created since through the API wins over the old one);
 * timestamps are merged as the admission path merges them (the greater
 * wins). Nothing of the old layout is deleted until every old record has
 * been read, written and read back equal; a record that cannot be read
 * stops the cleanup (the old keys stay, the run says which) so nothing is
 * lost to a bad value.
 */
import { Cluster } from 'ioredis';
import { decodeLegacyRecord, type PeerRecord } from './peer.js';
import { PublicKey } from '../handshake/keys.js';
import { encodeRecord } from './record-codec.js';
import { PeerStore } from './store.js';

/** Keys read from the old index per round: one ZRANGEBYLEX, one MGET, one HMGET. */
export const MIGRATE_BATCH = 1000;
/** Timestamp hash fields read per HSCAN round (a hint to Redis). */
const HSCAN_COUNT = 1000;

export interface MigrationProgress {
  phase: 'records' | 'timestamps' | 'cleanup';
  done: number;
  total: number;
}

export interface MigrationReport {
  /** Records of the old layout found. */
  records: number;
  /** Of those, written now (the rest were there already). */
  written: number;
  /** Timestamps of the old layout found (peers that exist and peers deleted since). */
  timestamps: number;
  /** Old keys that are not records: `<key>: why`. Non-empty means the old layout was kept. */
  unreadable: string[];
  /** Whether the old layout's keys were deleted. */
  cleanedUp: boolean;
  dryRun: boolean;
}

export interface MigrateOptions {
  dryRun?: boolean;
  onProgress?: (p: MigrationProgress) => void;
}

const TS_HEX = /^[0-9a-f]{24}$/;

export async function migrateLegacyLayout(store: PeerStore, opts: MigrateOptions = {}): Promise<MigrationReport> {
  // The old layout existed only on a single Redis: its scripts spanned slots.
  if (store.redis instanceof Cluster) throw new Error('the layout of earlier releases never ran on a Cluster: migrate on the single Redis it lived on, then move the keys (docs/store-schema.md)');
  const redis = store.redis;
  const { prefix } = store;
  const legacyIndex = `${prefix}peers`;
  const legacyTimestamps = `${prefix}timestamps`;
  const legacyKey = (publicKey: string) => `${prefix}peer:${publicKey}`;
  const dryRun = opts.dryRun ?? false;
  const report: MigrationReport = { records: 0, written: 0, timestamps: 0, unreadable: [], cleanedUp: false, dryRun };

  // Records, in index order.
  const total = await redis.zcard(legacyIndex);
  const migrated: string[] = [];
  let after = '-';
  for (;;) {
    const keys = await redis.zrangebylex(legacyIndex, after, '+', 'LIMIT', 0, MIGRATE_BATCH);
    if (keys.length === 0) break;
    after = `(${keys[keys.length - 1]}`;
    const values = await redis.mget(keys.map(legacyKey));
    const records: PeerRecord[] = [];
    keys.forEach((key, i) => {
      const text = values[i];
      if (text === null || text === undefined) return; // an index entry without a record: nothing to carry
      const stored = decodeLegacyRecord(text);
      if (stored === null || stored.record.publicKey !== key) report.unreadable.push(`${legacyKey(key)}: not a peer record of the old layout`);
      else records.push(stored.record);
    });
    report.records += records.length;
    if (!dryRun) {
      // A create of the record as it was (its times kept); one that exists now stays as it is.
      const written = (await Promise.all(records.map((r) => store.create(r)))).map((c) => c.ok);
      report.written += written.filter(Boolean).length;
      // Read back: every record must now be in the new layout as it was in the old.
      const back = await Promise.all(records.map((r) => store.get(r.publicKey)));
      records.forEach((r, i) => {
        const now = back[i];
        if (now === null || now === undefined) report.unreadable.push(`${legacyKey(r.publicKey)}: not found in the new layout after writing it`);
        else if (!written[i]) return; // there before: the newer record stays
        else if (!encodeRecord(now).equals(encodeRecord(r))) report.unreadable.push(`${legacyKey(r.publicKey)}: read back different`);
      });
    }
    migrated.push(...records.map((r) => r.publicKey));
    opts.onProgress?.({ phase: 'records', done: migrated.length, total });
  }

  // Timestamps, of peers that exist and of peers deleted since.
  const tsTotal = await redis.hlen(legacyTimestamps);
  let cursor = '0';
  do {
    const [next, flat] = await redis.hscan(legacyTimestamps, cursor, 'COUNT', HSCAN_COUNT);
    cursor = next;
    const writes: Promise<boolean>[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const [key, hex] = [flat[i]!, flat[i + 1]!];
      const publicKey = PublicKey.parse(key);
      if (publicKey === null || publicKey.toString() !== key || !TS_HEX.test(hex)) {
        report.unreadable.push(`${legacyTimestamps} field ${JSON.stringify(key.slice(0, 60))}: not a key and a TAI64N timestamp`);
        continue;
      }
      report.timestamps++;
      if (!dryRun) writes.push(store.advanceTimestamp(publicKey, Buffer.from(hex, 'hex')));
    }
    await Promise.all(writes);
    opts.onProgress?.({ phase: 'timestamps', done: report.timestamps, total: tsTotal });
  } while (cursor !== '0');

  if (dryRun || report.unreadable.length > 0) return report;

  // Every record is in the new layout: the old one goes.
  for (let i = 0; i < migrated.length; i += MIGRATE_BATCH) {
    await redis.unlink(...migrated.slice(i, i + MIGRATE_BATCH).map(legacyKey));
    opts.onProgress?.({ phase: 'cleanup', done: Math.min(i + MIGRATE_BATCH, migrated.length), total: migrated.length });
  }
  await redis.unlink(legacyIndex, legacyTimestamps);
  report.cleanedUp = true;
  return report;
}
