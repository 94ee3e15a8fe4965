/**
 * What one peer costs the store in Redis memory, through the store's own
 * write path (src/authorize/store.ts), on a real redis-server started for
 * the run (persistence off, as it changes nothing in memory but adds disk
 * writes to the fill):
 *
 *   npx tsx bench/store-memory.ts [--peers 1000000] [--steps 3]
 *
 * The store is filled in --steps equal steps; after each, `INFO memory`'s
 * used_memory (what the data set and Redis's own structures take, not the
 * allocator's slack) is read, and the table shows bytes per peer from the
 * empty server, and per step (the marginal cost, which is what ten million
 * peers multiply). Each peer is written as an operator's import writes it:
 * one create, then one authentic initiation's timestamp kept for replay
 * protection (advanceTimestamp), since every peer that ever connected has
 * one. The records are a provider's: one IPv4 /32 and one IPv6 /128,
 * a preshared key on a quarter, a 25 s keepalive on a tenth, an expiry on a
 * tenth.
 *
 * The baseline in the same run is the floor any layout has to pay: the
 * same number of bare Redis strings holding only the 32-byte key, under a
 * key of the same length as the store's.
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { validateCreate } from '../src/authorize/peer.js';
import { PeerStore, peerKeyName } from '../src/authorize/store.js';
import { PublicKey } from '../src/handshake/keys.js';
import { startRedis } from '../test/support/redis.js';

const { values: args } = parseArgs({
  options: {
    peers: { type: 'string', default: '1000000' },
    steps: { type: 'string', default: '3' },
  },
});
const PEERS = Number(args.peers);
const STEPS = Number(args.steps);
if (!Number.isInteger(PEERS) || PEERS < STEPS || !Number.isInteger(STEPS) || STEPS < 1) {
  console.error('usage: bench/store-memory.ts [--peers N] [--steps K] (N >= K >= 1)');
  process.exit(2);
}
/** Writes in flight at once: auto-pipelined by the store's client, as an import sends them. */
const IN_FLIGHT = 2_000;

async function usedMemory(redis: Redis): Promise<number> {
  const info = await redis.info('memory');
  const m = /^used_memory:(\d+)/m.exec(info);
  if (m === null) throw new Error('INFO memory has no used_memory');
  return Number(m[1]);
}

function record(i: number): unknown {
  const key = PublicKey.fromBytes(randomBytes(32)).toString();
  const v4 = `10.${(i >>> 16) & 0xff}.${(i >>> 8) & 0xff}.${i & 0xff}/32`;
  const v6 = `fd00:${(i >>> 16).toString(16)}::${(i & 0xffff).toString(16)}/128`;
  const r: Record<string, unknown> = { publicKey: key, allowedIPs: [v4, v6] };
  if (i % 4 === 0) r['presharedKey'] = randomBytes(32).toString('base64');
  if (i % 10 === 1) r['persistentKeepalive'] = 25;
  if (i % 10 === 2) r['expiresAt'] = '2030-01-01T00:00:00.000Z';
  return r;
}

/** TAI64N of now, as an initiation carries it. */
function tai64nNow(): Uint8Array {
  const out = Buffer.alloc(12);
  const ms = Date.now();
  out.writeBigUInt64BE(0x400000000000000an + BigInt(Math.floor(ms / 1000)));
  out.writeUInt32BE((ms % 1000) * 1_000_000, 8);
  return out;
}

async function inBatches(from: number, to: number, write: (i: number) => Promise<unknown>): Promise<void> {
  for (let start = from; start < to; start += IN_FLIGHT) {
    const batch: Promise<unknown>[] = [];
    for (let i = start; i < Math.min(to, start + IN_FLIGHT); i++) batch.push(write(i));
    await Promise.all(batch);
  }
}

interface Row {
  layout: string;
  peers: number;
  perPeerFromEmpty: number;
  perPeerLastStep: number;
  seconds: number;
}

async function measure(layout: string, redis: Redis, write: (i: number) => Promise<unknown>): Promise<Row> {
  await redis.flushall();
  const empty = await usedMemory(redis);
  const started = process.hrtime.bigint();
  let before = empty;
  let lastStep = 0;
  const step = Math.floor(PEERS / STEPS);
  for (let s = 0; s < STEPS; s++) {
    const to = s === STEPS - 1 ? PEERS : (s + 1) * step;
    await inBatches(s * step, to, write);
    const after = await usedMemory(redis);
    lastStep = (after - before) / (to - s * step);
    before = after;
    process.stderr.write(`  ${layout}: ${to.toLocaleString('en')} peers, ${((after - empty) / to).toFixed(1)} B/peer\n`);
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return { layout, peers: PEERS, perPeerFromEmpty: (before - empty) / PEERS, perPeerLastStep: lastStep, seconds };
}

const server = await startRedis();
const redis = new Redis(server.url, { enableAutoPipelining: true });
const store = PeerStore.connect(server.url);
try {
  await store.whenReady();
  const now = new Date();
  const stamp = tai64nNow();
  const rows: Row[] = [];

  rows.push(
    await measure('baseline: a bare 32-byte value per peer', redis, (i) => {
      const key = randomBytes(32);
      return redis.set(peerKeyName('wgjit:', key.toString('base64')), key);
    }),
  );
  rows.push(
    await measure('wgjit store: record + timestamp', redis, async (i) => {
      const v = validateCreate(record(i), now);
      if (!v.ok) throw new Error(v.message);
      const created = await store.create(v.value);
      if (!created.ok) throw new Error(`create refused: ${created.reason}`);
      if (!(await store.advanceTimestamp(PublicKey.parse(v.value.publicKey)!, stamp))) throw new Error('timestamp not kept');
    }),
  );

  const info = await redis.info('server');
  console.log(`\nRedis ${/^redis_version:(\S+)/m.exec(info)?.[1]}, ${PEERS.toLocaleString('en')} peers, used_memory (INFO memory)\n`);
  console.log('| layout | bytes per peer (from empty) | bytes per peer (last step) | fill time, s |');
  console.log('|---|--:|--:|--:|');
  for (const r of rows) console.log(`| ${r.layout} | ${r.perPeerFromEmpty.toFixed(1)} | ${r.perPeerLastStep.toFixed(1)} | ${r.seconds.toFixed(1)} |`);
  const base = rows[0]!;
  const ours = rows[1]!;
  console.log(`\nwgjit over the floor: ${(ours.perPeerFromEmpty - base.perPeerFromEmpty).toFixed(1)} B/peer; ten million peers: ${((ours.perPeerLastStep * 10_000_000) / 2 ** 30).toFixed(2)} GiB`);
} finally {
  redis.disconnect();
  await store.close();
  await server.stop();
}
