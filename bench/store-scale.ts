/**
 * The peer store at fleet scale, in one run, every part real (redis-server,
 * redis-sentinel, `bin/wgjit api` and `bin/wgjit peer import`; run `make`
 * first):
 *
 *   npx tsx bench/store-scale.ts [--import 1000000] [--import-rounds 3] [--peers 10000000] [--small 10000] [--failovers 3]
 *
 * 1. Import: `wgjit peer import` of --import records from one JSON-lines
 *    file, through `wgjit api` (POST /v1/peers/batch) into an empty
 *    redis-server; before it, in the same round, the same records' values
 *    written by a raw pipelined SET (ioredis, 1,000 a pipeline: what a
 *    client can write with no checks, no index and no events) into the
 *    same, emptied, server. --import-rounds rounds (the machine is shared:
 *    the ratio of the median round is the result). Every imported record
 *    is then read back through the API (GET /v1/peers, every page) and
 *    compared.
 * 2. Memory: `INFO memory` used_memory before and after, per peer: the raw
 *    values, the import, and the store grown to --peers (the records past
 *    the import are written as the store lays them out, by pipelined raw
 *    commands: the store's own create would take an hour for ten million;
 *    a sample is read back through PeerStore.get). Each of those peers also
 *    has a timestamp, as one that connected once does.
 * 3. Admission lookup (PeerStore.authorize: one GET and the decode, what
 *    an admission asks the store) at --small records and at --peers
 *    records, on two servers, one lookup at a time, alternating between
 *    them lookup by lookup (the same client, the same concurrency, the
 *    same moments of the machine); p50 and p99 of each round, medians over
 *    the rounds.
 * 4. Sentinel failover (--failovers times): one primary, one replica, three
 *    sentinels (down-after 1 s); admissions (authorize, then the
 *    timestamp kept) every 10 ms through redis+sentinel:// while the
 *    primary is SIGKILLed. From the kill: Sentinel's promotion
 *    (`+switch-master` from a sentinel) and the first admission after it.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync, createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { validateCreate, type PeerRecord } from '../src/authorize/peer.js';
import { encodeRecord } from '../src/authorize/record-codec.js';
import { GROUP_CHARS, indexKeyName, PeerStore, peerKeyName } from '../src/authorize/store.js';
import { PublicKey } from '../src/handshake/keys.js';
import { tai64nFromUnixMs } from '../src/handshake/tai64n.js';
import { freePort, startRedis, startSentinelSet, type TestRedis } from '../test/support/redis.js';
import { median, quantile } from './measure.js';

const { values: args } = parseArgs({
  options: {
    import: { type: 'string', default: '1000000' },
    peers: { type: 'string', default: '10000000' },
    small: { type: 'string', default: '10000' },
    failovers: { type: 'string', default: '3' },
    'import-rounds': { type: 'string', default: '3' },
  },
});
const IMPORT = Number(args.import);
const PEERS = Number(args.peers);
const SMALL = Number(args.small);
const FAILOVERS = Number(args.failovers);
const IMPORT_ROUNDS = Number(args['import-rounds']);
if (![IMPORT, PEERS, SMALL, FAILOVERS, IMPORT_ROUNDS].every((n) => Number.isInteger(n) && n >= 0) || IMPORT < 1 || PEERS < IMPORT || SMALL < 1 || IMPORT_ROUNDS < 1) {
  console.error('usage: bench/store-scale.ts [--import N] [--import-rounds R] [--peers M >= N] [--small K] [--failovers F]');
  process.exit(2);
}

const CLI = resolve('bin/wgjit');
const TOKEN = randomBytes(24).toString('base64url');
/** Commands in one raw pipeline. */
const PIPELINE = 1000;
/** Lookup rounds per store size, taking turns. */
const ROUNDS = 5;
const LOOKUPS_PER_ROUND = 20_000;
/** Keys of the big store kept for lookups (all ten million would take a gigabyte of strings). */
const LOOKUP_SAMPLE = 100_000;
/** Records of the grown store read back through PeerStore.get. */
const READ_BACK_SAMPLE = 1000;
const ADMISSION_EVERY_MS = 10;
/** What docs/operations.md recommends for stores past a few hundred thousand peers (one listpack per group index). */
const ZSET_LISTPACK_ENTRIES = 4096;

const log = (line: string) => process.stderr.write(`  ${line}\n`);
const secondsSince = (t: bigint) => Number(process.hrtime.bigint() - t) / 1e9;
const fmt = (n: number, digits = 0) => n.toLocaleString('en', { minimumFractionDigits: digits, maximumFractionDigits: digits });

async function usedMemory(redis: Redis): Promise<number> {
  const m = /^used_memory:(\d+)/m.exec(await redis.info('memory'));
  if (m === null) throw new Error('INFO memory has no used_memory');
  return Number(m[1]);
}

/** Record i as an operator's file has it: one IPv4 /32 and one IPv6 /128; a preshared key on a quarter, keepalive on a tenth, an expiry on a tenth. */
function recordInput(i: number, key: Buffer): Record<string, unknown> {
  const r: Record<string, unknown> = {
    publicKey: key.toString('base64'),
    allowedIPs: [`10.${(i >>> 16) & 0xff}.${(i >>> 8) & 0xff}.${i & 0xff}/32`, `fd00:${(i >>> 16).toString(16)}::${(i & 0xffff).toString(16)}/128`],
  };
  if (i % 4 === 0) r['presharedKey'] = randomBytes(32).toString('base64');
  if (i % 10 === 1) r['persistentKeepalive'] = 25;
  if (i % 10 === 2) r['expiresAt'] = '2031-01-01T00:00:00.000Z';
  return r;
}

/** Keys for records from..to, from one random buffer. */
function keysFor(count: number): Buffer[] {
  const all = randomBytes(32 * count);
  return Array.from({ length: count }, (_, j) => all.subarray(32 * j, 32 * j + 32));
}

function validated(input: Record<string, unknown>, now: Date): PeerRecord {
  const v = validateCreate(input, now);
  if (!v.ok) throw new Error(`bench record refused: ${v.message}`);
  return v.value;
}

/** One command in RESP, Redis's wire protocol. */
function resp(...parts: Array<string | Buffer>): Buffer {
  const out: Buffer[] = [Buffer.from(`*${parts.length}\r\n`)];
  for (const p of parts) {
    const b = typeof p === 'string' ? Buffer.from(p) : p;
    out.push(Buffer.from(`$${b.length}\r\n`), b, CRLF);
  }
  return Buffer.concat(out);
}
const CRLF = Buffer.from('\r\n');

/**
 * Writes records as the store lays them out (value = 12-byte timestamp +
 * packed record; the key in its group's index): what create writes,
 * without its script and event. Through `redis-cli --pipe`, Redis's own
 * mass-insertion tool (a client library's per-command cost would make ten
 * million records take most of an hour).
 */
async function rawFill(port: number, from: number, to: number, now: Date, stamp: Buffer, sample: string[], onProgress: (done: number) => void): Promise<PeerRecord[]> {
  const readBack: PeerRecord[] = [];
  const everyNth = Math.max(1, Math.floor((to - from) / READ_BACK_SAMPLE));
  const sampleEvery = Math.max(1, Math.floor((to - from) / (LOOKUP_SAMPLE - sample.length || 1)));
  const pipe = spawn('redis-cli', ['-p', String(port), '--pipe'], { stdio: ['pipe', 'pipe', 'inherit'] });
  let report = '';
  pipe.stdout.on('data', (c: Buffer) => (report += c.toString()));
  for (let start = from; start < to; start += PIPELINE) {
    const end = Math.min(to, start + PIPELINE);
    const keys = keysFor(end - start);
    const commands: Buffer[] = [];
    for (let i = start; i < end; i++) {
      const record = validated(recordInput(i, keys[i - start]!), now);
      const pk = record.publicKey;
      commands.push(resp('SET', peerKeyName('wgjit:', pk), Buffer.concat([stamp, encodeRecord(record)])));
      commands.push(resp('ZADD', indexKeyName('wgjit:', pk.slice(0, GROUP_CHARS)), '0', pk));
      if ((i - from) % everyNth === 0) readBack.push(record);
      if ((i - from) % sampleEvery === 0 && sample.length < LOOKUP_SAMPLE) sample.push(pk);
    }
    if (!pipe.stdin.write(Buffer.concat(commands))) await once(pipe.stdin, 'drain');
    if (Math.floor(end / 1_000_000) !== Math.floor(start / 1_000_000) && end < to) onProgress(end);
  }
  pipe.stdin.end();
  const [code] = (await once(pipe, 'exit')) as [number];
  const errors = /errors: (\d+), replies: (\d+)/.exec(report);
  if (code !== 0 || errors === null || errors[1] !== '0' || Number(errors[2]) !== 2 * (to - from)) throw new Error(`redis-cli --pipe: ${report.trim()}`);
  onProgress(to);
  return readBack;
}

async function run(cmd: string, argv: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = spawn(cmd, argv, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const [code] = (await once(child, 'exit')) as [number];
  return { code, stdout, stderr };
}

async function startApi(redisUrl: string, tokenFile: string): Promise<{ url: string; stop(): Promise<void> }> {
  const port = await freePort();
  const child = spawn(CLI, ['api', '--redis', redisUrl, '--api-listen', `127.0.0.1:${port}`, '--api-token-file', tokenFile, '--log-level', 'warn'], { stdio: ['ignore', 'ignore', 'pipe'] });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`${url}/healthz`)).ok) break;
    } catch {
      // not listening yet
    }
    if (i > 200 || child.exitCode !== null) throw new Error('wgjit api did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    stop: async () => {
      child.kill('SIGTERM');
      if (child.exitCode === null) await once(child, 'exit');
    },
  };
}

/** Every record through GET /v1/peers, page by page: the keys seen, each once. */
async function listAll(apiUrl: string): Promise<Map<string, unknown>> {
  const seen = new Map<string, unknown>();
  let cursor: string | null = null;
  do {
    const q: string = cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`;
    const r = await fetch(`${apiUrl}/v1/peers?limit=1000${q}`, { headers: { authorization: `Bearer ${TOKEN}` } });
    if (!r.ok) throw new Error(`GET /v1/peers: ${r.status}`);
    const page = (await r.json()) as { items: Array<{ publicKey: string }>; nextCursor: string | null };
    for (const item of page.items) {
      if (seen.has(item.publicKey)) throw new Error(`listed twice: ${item.publicKey}`);
      seen.set(item.publicKey, item);
    }
    cursor = page.nextCursor;
  } while (cursor !== null);
  return seen;
}

interface Section {
  title: string;
  header: string[];
  rows: string[][];
}
const sections: Section[] = [];
const checks: Array<{ what: string; value: string; target: string; met: boolean }> = [];

// ---------------------------------------------------------------------------

const dir = mkdtempSync(join(tmpdir(), 'wgjit-store-scale-'));
const tokenFile = join(dir, 'token');
writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
const servers: TestRedis[] = [];
const clients: Redis[] = [];
const stores: PeerStore[] = [];
try {
  const now = new Date();
  const stamp = Buffer.from(tai64nFromUnixMs(now.getTime()));
  const big = await startRedis();
  servers.push(big);
  const bigRaw = new Redis(big.url);
  clients.push(bigRaw);
  await bigRaw.config('SET', 'zset-max-listpack-entries', String(ZSET_LISTPACK_ENTRIES));
  const version = /^redis_version:(\S+)/m.exec(await bigRaw.info('server'))?.[1];

  // 1. The file, and the same records' values for the raw SET.
  log(`writing ${fmt(IMPORT)} records to a JSON-lines file`);
  const file = join(dir, 'peers.jsonl');
  const out = createWriteStream(file);
  const values: Array<[string, Buffer]> = [];
  const inputs = new Map<string, PeerRecord>();
  for (let start = 0; start < IMPORT; start += PIPELINE) {
    const keys = keysFor(Math.min(PIPELINE, IMPORT - start));
    let chunk = '';
    keys.forEach((key, j) => {
      const input = recordInput(start + j, key);
      const record = validated(input, now);
      inputs.set(record.publicKey, record);
      values.push([peerKeyName('wgjit:', record.publicKey), Buffer.concat([Buffer.alloc(12), encodeRecord(record)])]);
      chunk += `${JSON.stringify(input)}\n`;
    });
    if (!out.write(chunk)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');

  // Rounds of a raw pipelined SET of the same values, then the import through
  // the API, each into the emptied server: the machine's moments shared.
  const rawSet = async (): Promise<number> => {
    const t0 = process.hrtime.bigint();
    for (let start = 0; start < values.length; start += PIPELINE) {
      const p = bigRaw.pipeline();
      for (const [k, v] of values.slice(start, start + PIPELINE)) p.set(k, v);
      await p.exec();
    }
    return secondsSince(t0);
  };
  const rounds: Array<{ raw: number; imported: number }> = [];
  let rawBytes = 0;
  let empty = 0;
  const api = await startApi(big.url, tokenFile);
  try {
    for (let round = 1; round <= IMPORT_ROUNDS; round++) {
      await bigRaw.flushall();
      empty = await usedMemory(bigRaw);
      const raw = await rawSet();
      rawBytes = (await usedMemory(bigRaw)) - empty;
      await bigRaw.flushall();
      empty = await usedMemory(bigRaw);
      const t0 = process.hrtime.bigint();
      const imported = await run(CLI, ['peer', 'import', file], { WGJIT_API: api.url, WGJIT_API_TOKEN_FILE: tokenFile });
      const seconds = secondsSince(t0);
      if (imported.code !== 0) throw new Error(`wgjit peer import exited ${imported.code}: ${imported.stderr.slice(-500)}`);
      rounds.push({ raw, imported: seconds });
      log(`round ${round}: raw SET ${fmt(IMPORT / raw)} records/s; ${imported.stdout.trim()} in ${seconds.toFixed(1)} s (${fmt(IMPORT / seconds)} records/s)`);
    }
    log('reading every record back through GET /v1/peers');
    const listed = await listAll(api.url);
    let same = listed.size === inputs.size;
    for (const [key, want] of inputs) {
      const got = listed.get(key) as Record<string, unknown> | undefined;
      if (
        got === undefined ||
        JSON.stringify(got['allowedIPs']) !== JSON.stringify(want.allowedIPs) ||
        got['hasPresharedKey'] !== (want.presharedKey !== undefined) ||
        got['persistentKeepalive'] !== want.persistentKeepalive ||
        got['expiresAt'] !== want.expiresAt ||
        got['disabled'] !== want.disabled
      ) {
        same = false;
        break;
      }
    }
    checks.push({ what: `every imported record read back through the API (${fmt(listed.size)} listed)`, value: same ? 'all equal' : 'MISMATCH', target: 'all equal', met: same });
  } finally {
    await api.stop();
  }
  values.length = 0;
  const importBytes = (await usedMemory(bigRaw)) - empty;
  // Lookups on the large store ask imported keys too, in their share.
  const sample: string[] = [];
  const importedShare = Math.ceil((LOOKUP_SAMPLE * IMPORT) / PEERS);
  for (const key of inputs.keys()) if (sample.length < importedShare) sample.push(key);
  inputs.clear();
  const ratios = rounds.map((r) => r.raw / r.imported);
  const pct = (x: number) => `${(x * 100).toFixed(0)}%`;
  sections.push({
    title: `Import of ${fmt(IMPORT)} records (one JSON-lines file) into an empty redis-server, ${IMPORT_ROUNDS} rounds: each a raw pipelined SET of the same values (ioredis, 1,000 a pipeline), then \`wgjit peer import FILE\` → \`wgjit api\` → store`,
    header: ['round', 'raw SET s', 'raw records/s', 'import s', 'import records/s', 'import / raw'],
    rows: [
      ...rounds.map((r, i) => [String(i + 1), r.raw.toFixed(1), fmt(IMPORT / r.raw), r.imported.toFixed(1), fmt(IMPORT / r.imported), pct(ratios[i]!)]),
      ['median', median(rounds.map((r) => r.raw)).toFixed(1), fmt(IMPORT / median(rounds.map((r) => r.raw))), median(rounds.map((r) => r.imported)).toFixed(1), fmt(IMPORT / median(rounds.map((r) => r.imported))), pct(median(ratios))],
    ],
  });
  checks.push({ what: `import rate / raw SET rate (median of ${IMPORT_ROUNDS} rounds)`, value: pct(median(ratios)), target: '≥ 50%', met: median(ratios) >= 0.5 });

  // 2. Grow the store to PEERS.
  log(`growing the store to ${fmt(PEERS)} peers`);
  let t = process.hrtime.bigint();
  const readBack = await rawFill(big.port, IMPORT, PEERS, now, stamp, sample, (n) => log(`${fmt(n)} peers`));
  const fillSeconds = secondsSince(t);
  const bigBytes = (await usedMemory(bigRaw)) - empty;
  const bigStore = PeerStore.connect(big.url);
  stores.push(bigStore);
  await bigStore.whenReady();
  let readBackOk = true;
  for (const r of readBack) {
    const got = await bigStore.get(r.publicKey);
    if (JSON.stringify(got) !== JSON.stringify(r)) readBackOk = false;
  }
  checks.push({ what: `records of the grown store read back through PeerStore.get (${fmt(readBack.length)} sampled)`, value: readBackOk ? 'all equal' : 'MISMATCH', target: 'all equal', met: readBackOk });
  const encodings = new Map<string, number>();
  for (const g of ['AA', 'zz', '+/', 'Qk']) {
    const enc = String(await bigRaw.object('ENCODING', indexKeyName('wgjit:', g)));
    encodings.set(enc, (encodings.get(enc) ?? 0) + 1);
  }
  sections.push({
    title: `Redis memory (INFO memory used_memory), Redis ${version}, zset-max-listpack-entries ${ZSET_LISTPACK_ENTRIES}`,
    header: ['what', 'peers', 'bytes per peer'],
    rows: [
      ['raw SET: the values alone, no index', fmt(IMPORT), (rawBytes / IMPORT).toFixed(1)],
      ['the store after the import (no timestamps yet)', fmt(IMPORT), (importBytes / IMPORT).toFixed(1)],
      [`the store grown (group indexes: ${[...encodings.keys()].join(', ')}; filled in ${fillSeconds.toFixed(0)} s)`, fmt(PEERS), (bigBytes / PEERS).toFixed(1)],
    ],
  });
  checks.push({ what: `bytes per peer at ${fmt(PEERS)}`, value: (bigBytes / PEERS).toFixed(1), target: '≤ 300', met: bigBytes / PEERS <= 300 });

  // 3. Lookups at SMALL and at PEERS.
  const small = await startRedis();
  servers.push(small);
  const smallRaw = new Redis(small.url);
  clients.push(smallRaw);
  const smallSample: string[] = [];
  await rawFill(small.port, 0, SMALL, now, stamp, smallSample, () => {});
  const smallStore = PeerStore.connect(small.url);
  stores.push(smallStore);
  await smallStore.whenReady();
  // Each round alternates the two stores lookup by lookup, so a pause of
  // the machine falls on both alike.
  const smallKeys = smallSample.map((k) => PublicKey.parse(k)!);
  const bigKeys = sample.map((k) => PublicKey.parse(k)!);
  const lookup = async (store: PeerStore, keys: PublicKey[], into: number[]) => {
    const key = keys[Math.floor(Math.random() * keys.length)]!;
    const t0 = process.hrtime.bigint();
    const a = await store.authorize(key, now);
    into.push(Number(process.hrtime.bigint() - t0) / 1e3);
    if (!a.allowed && a.reason !== 'expired') throw new Error(`lookup refused: ${a.reason}`);
  };
  const smallRounds: Array<{ p50: number; p99: number }> = [];
  const bigRounds: Array<{ p50: number; p99: number }> = [];
  for (let r = 0; r < ROUNDS; r++) {
    const smallLat: number[] = [];
    const bigLat: number[] = [];
    for (let i = 0; i < LOOKUPS_PER_ROUND; i++) {
      await lookup(smallStore, smallKeys, smallLat);
      await lookup(bigStore, bigKeys, bigLat);
    }
    smallRounds.push({ p50: quantile(smallLat, 0.5), p99: quantile(smallLat, 0.99) });
    bigRounds.push({ p50: quantile(bigLat, 0.5), p99: quantile(bigLat, 0.99) });
  }
  const row = (label: string, n: number, rounds: Array<{ p50: number; p99: number }>) => [
    label,
    fmt(n),
    median(rounds.map((x) => x.p50)).toFixed(1),
    median(rounds.map((x) => x.p99)).toFixed(1),
    rounds.map((x) => x.p99.toFixed(0)).join(' '),
  ];
  sections.push({
    title: `Admission lookup (PeerStore.authorize), one at a time, ${ROUNDS} rounds of ${fmt(LOOKUPS_PER_ROUND)} lookups on each store, alternating lookup by lookup; µs, medians over the rounds`,
    header: ['store', 'records', 'p50', 'p99', 'p99 per round'],
    rows: [row('small', SMALL, smallRounds), row('large', PEERS, bigRounds)],
  });
  const p99Ratio = median(bigRounds.map((x) => x.p99)) / median(smallRounds.map((x) => x.p99));
  checks.push({ what: `lookup p99 at ${fmt(PEERS)} / at ${fmt(SMALL)}`, value: `${p99Ratio.toFixed(2)}×`, target: '≤ 1.2×', met: p99Ratio <= 1.2 });
  for (const s of stores.splice(0)) await s.close();
  for (const c of clients.splice(0)) c.disconnect();
  for (const s of servers.splice(0)) await s.stop();

  // 4. Sentinel failovers.
  const failovers: Array<{ promotion: number; admission: number }> = [];
  for (let f = 0; f < FAILOVERS; f++) {
    const set = await startSentinelSet();
    const url = `redis+sentinel://${set.sentinels.map((s) => `${s.host}:${s.port}`).join(',')}/${set.masterName}`;
    const store = PeerStore.connect(url);
    const watcher = new Redis({ host: set.sentinels[0]!.host, port: set.sentinels[0]!.port });
    try {
      await store.whenReady();
      const record = validated(recordInput(f, randomBytes(32)), new Date());
      await store.create(record);
      const key = PublicKey.parse(record.publicKey)!;
      await watcher.subscribe('+switch-master');
      let switchedAt = 0;
      watcher.on('message', () => (switchedAt ||= performance.now()));
      let killedAt = 0;
      let admittedAfter = 0;
      let stop = false;
      const admissions = (async () => {
        while (!stop) {
          const started = performance.now();
          try {
            const a = await store.authorize(key, new Date());
            if (a.allowed && (await store.advanceTimestamp(key, tai64nFromUnixMs(Date.now())))) {
              if (killedAt > 0 && admittedAfter === 0 && started > killedAt) admittedAfter = performance.now();
            }
          } catch {
            // the store is unavailable: the admission fails closed
          }
          await new Promise((r) => setTimeout(r, Math.max(0, ADMISSION_EVERY_MS - (performance.now() - started))));
        }
      })();
      await new Promise((r) => setTimeout(r, 500));
      const primary = await set.currentPrimary();
      await set.killPrimary();
      // Stamped once the signal is sent: an admission started earlier (while
      // killPrimary asked a sentinel which node to kill) may still be answered
      // by the old primary, and is no admission after its death.
      killedAt = performance.now();
      await set.waitForNewPrimary(primary);
      for (let i = 0; i < 300 && (admittedAfter === 0 || switchedAt === 0); i++) await new Promise((r) => setTimeout(r, 100));
      stop = true;
      await admissions;
      if (admittedAfter === 0 || switchedAt === 0) throw new Error('no admission or no +switch-master within 30 s of the promotion');
      failovers.push({ promotion: switchedAt - killedAt, admission: admittedAfter - killedAt });
      log(`failover ${f + 1}: promoted after ${fmt(switchedAt - killedAt)} ms, first admission after ${fmt(admittedAfter - killedAt)} ms`);
    } finally {
      watcher.disconnect();
      await store.close();
      await set.stop();
    }
  }
  if (failovers.length > 0) {
    sections.push({
      title: 'Sentinel failover (1 primary, 1 replica, 3 sentinels, down-after 1 s): ms from SIGKILL of the primary',
      header: ['run', 'Sentinel promotes (+switch-master)', 'first admission after the kill', 'admission − promotion'],
      rows: [
        ...failovers.map((x, i) => [String(i + 1), fmt(x.promotion), fmt(x.admission), fmt(x.admission - x.promotion)]),
        ['median', fmt(median(failovers.map((x) => x.promotion))), fmt(median(failovers.map((x) => x.admission))), fmt(median(failovers.map((x) => x.admission - x.promotion)))],
      ],
    });
    const gap = median(failovers.map((x) => x.admission - x.promotion));
    checks.push({ what: 'first admission after the promotion (median)', value: `${fmt(gap)} ms`, target: '≤ 1,000 ms', met: gap <= 1000 });
  }

  console.log(`\nbench/store-scale.ts --import ${IMPORT} --peers ${PEERS} --small ${SMALL} --failovers ${FAILOVERS}`);
  for (const s of sections) {
    console.log(`\n${s.title}\n`);
    console.log(`| ${s.header.join(' | ')} |`);
    console.log(`|${s.header.map((_, i) => (i === 0 ? '---' : '--:')).join('|')}|`);
    for (const r of s.rows) console.log(`| ${r.join(' | ')} |`);
  }
  console.log('\nTargets\n');
  console.log('| what | measured | target | |');
  console.log('|---|--:|--:|---|');
  for (const c of checks) console.log(`| ${c.what} | ${c.value} | ${c.target} | ${c.met ? 'met' : 'MISSED'} |`);
} finally {
  for (const s of stores) await s.close();
  for (const c of clients) c.disconnect();
  for (const s of servers) await s.stop();
  rmSync(dir, { recursive: true, force: true });
}
