/**
 * Verified initiations per second on one core (this process's main thread),
 * side by side with the raw X25519 rate of the same backend, in one run:
 *
 *   raw X25519     the responder's DH (libsodium) timed inside the addon, no
 *                  JavaScript between DHs: the bound a verify cannot beat
 *   returning key  native.ts's verify() called from JavaScript once per
 *                  initiation with a claimed-static callback, as the pipeline
 *                  calls it, for keys whose ss is cached: 1 DH (es)
 *   new key        the same for keys the responder has no ss for, the flood
 *                  of unknown keys: 2 DHs (es, ss)
 *   efficiency     verified/s × DHs per initiation ÷ raw DH/s
 *   hashing + AEAD the rest of one initiation's crypto (mac1, 3 HASH, 8 HMAC,
 *                  2 AEAD opens), timed inside the addon: with the DHs, it
 *                  leaves the JavaScript crossing and the ss cache as the
 *                  remainder of a verify
 *
 * and the same for the TypeScript reference on node:crypto, whose raw rate
 * is its own dh() (the peer's key imported on every call, as in its verify).
 *
 * Initiations are made before timing, all distinct. Returning keys: 256
 * keys, 4 initiations each, verified once before timing. New keys: one key
 * per initiation, MAX_SS_CACHE + 1024 of them, verified in the same cyclic
 * order for the whole run: each key comes back only after more than
 * MAX_SS_CACHE others, so the least-recently-used ss cache has always
 * evicted it (every verify is a miss that also evicts, as in a flood).
 * Rounds run every row in turn for SLICE_MS each, so the noise of a shared
 * machine falls on all of them alike; rates are per second of the process's
 * CPU time (bench/measure.ts), medians over rounds, and an efficiency is the
 * median over rounds of the ratio within each round.
 *
 *   npx tsx bench/throughput.ts [--seconds 24]
 */
import { parseArgs } from 'node:util';
import { getCrypto } from '../harness/noise/crypto.js';
import { createInitiation } from '../harness/noise/initiator.js';
import { generatePrivateKey } from '../harness/noise/keys.js';
import { publicKeyOf, type PublicKey } from '../src/handshake/keys.js';
import { createNativeResponder } from '../src/handshake/native.js';
import { createResponder } from '../harness/noise/responder.js';
import { MAX_SS_CACHE, type Responder } from '../src/handshake/verify.js';
import { inAddon, loop, median, quantile, takeTurns, type Measure } from './measure.js';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '24' } } });
const SECONDS = Number(values.seconds);
if (!(SECONDS > 0)) throw new Error('--seconds must be a positive number');

/* Targets from the issue "Admission under attack", item 7. */
const TARGET_PER_SECOND = 20_000;
const TARGET_EFFICIENCY = 0.7;
const RETURNING_KEYS = 256;
const INITIATIONS_PER_RETURNING_KEY = 4;
const NEW_KEYS = MAX_SS_CACHE + 1024;
/** Each row's turn in a round: short, so that the rows of one round see the same machine. */
const SLICE_MS = 100;
const MIN_ROUNDS = 3;

const responderKey = generatePrivateKey();
const responderPublicKey = publicKeyOf(responderKey);
function initiation(initiatorPrivateKey: Uint8Array): Uint8Array {
  return createInitiation({ initiatorPrivateKey, responderPublicKey }).message;
}

interface Row {
  group: 'native' | 'reference';
  label: string;
  kind: 'raw' | 'verify' | 'part';
  /** DHs per initiation of a verify row. */
  dhs: number;
  measure: Measure;
}

/** Verifies of `pool` in cyclic order, one call per initiation, as the pipeline makes them. */
function verifier(responder: Responder, pool: Uint8Array[]): Measure {
  let next = 0;
  // The pipeline starts a store lookup here; nothing here, so the row is the responder's own cost.
  const onClaimedStatic = (_claimedKey: PublicKey) => {};
  const one = () => {
    const m = pool[next]!;
    next = (next + 1) % pool.length;
    if (!responder.verify(m, onClaimedStatic).ok) throw new Error('benchmark initiation rejected');
  };
  for (let i = 0; i < pool.length; i++) one(); // warm: caches as described above, and the JIT
  return loop(one);
}

/** The reference's dh(), called from JavaScript on distinct peers. */
function rawReference(peers: Uint8Array[]): Measure {
  const dhKey = getCrypto('node').dhKey(responderKey);
  let next = 0;
  return loop(() => {
    if (dhKey.dh(peers[next++ % peers.length]!) === null) throw new Error('low-order peer');
  });
}

process.stderr.write(`making ${RETURNING_KEYS * INITIATIONS_PER_RETURNING_KEY} returning-key and ${NEW_KEYS} new-key initiations…\n`);
const returningKeys = Array.from({ length: RETURNING_KEYS }, () => generatePrivateKey());
const returning = Array.from({ length: RETURNING_KEYS * INITIATIONS_PER_RETURNING_KEY }, (_, i) => initiation(returningKeys[i % RETURNING_KEYS]!));
const fresh = Array.from({ length: NEW_KEYS }, () => initiation(generatePrivateKey()));
const peers = Array.from({ length: 64 }, () => getCrypto('node').dhKey(generatePrivateKey()).publicKey);

process.stderr.write('warming up (one pass over each pool)…\n');
const native = createNativeResponder(responderKey);
const reference = createResponder(responderKey, { crypto: 'node' });
const rows: Row[] = [
  { group: 'native', label: 'raw X25519 (in the addon)', kind: 'raw', dhs: 0, measure: inAddon('x25519:libsodium') },
  { group: 'native', label: 'verified, returning key', kind: 'verify', dhs: 1, measure: verifier(native, returning) },
  { group: 'native', label: 'verified, new key', kind: 'verify', dhs: 2, measure: verifier(native, fresh) },
  { group: 'native', label: 'hashing + AEAD of one initiation (in the addon)', kind: 'part', dhs: 0, measure: inAddon('symmetric:libb2+libsodium') },
  { group: 'reference', label: 'raw X25519 (its dh(), from JS)', kind: 'raw', dhs: 0, measure: rawReference(peers) },
  { group: 'reference', label: 'verified, returning key', kind: 'verify', dhs: 1, measure: verifier(reference, returning) },
  { group: 'reference', label: 'verified, new key', kind: 'verify', dhs: 2, measure: verifier(reference, fresh) },
];

const ROUNDS = Math.max(MIN_ROUNDS, Math.round((SECONDS * 1000) / (SLICE_MS * rows.length)));
const turns = takeTurns(
  rows.map((r) => r.measure),
  ROUNDS,
  SLICE_MS,
);
const rates = new Map(turns.rates.map((r, i) => [rows[i]!, r]));
native.close();

const raw = (group: Row['group']) => rates.get(rows.find((r) => r.group === group && r.kind === 'raw')!)!;
const efficiency = (row: Row) => median(rates.get(row)!.map((rate, round) => (rate * row.dhs) / raw(row.group)[round]!));
const int = (x: number) => Math.round(x).toLocaleString('en-US');
const pct = (x: number) => `${Math.round(x * 100)}%`;
const GROUP_TITLE = { native: 'native: addon on libsodium + libb2 (the daemon\'s)', reference: 'reference: TypeScript on node:crypto' };

console.log(`\nverify throughput on one core: medians of ${ROUNDS} rounds, ${SLICE_MS} ms per row per round`);
console.log(`(per second of this process's CPU time; it had ${pct(turns.cpuShare)} of the wall time)\n`);
console.log('| row | DH per initiation | per second | µs each | p25–p75 per second | efficiency |');
console.log('|---|--:|--:|--:|--:|--:|');
for (const group of ['native', 'reference'] as const) {
  console.log(`| **${GROUP_TITLE[group]}** | | | | | |`);
  for (const row of rows.filter((r) => r.group === group)) {
    const m = median(rates.get(row)!);
    const spread = `${int(quantile(rates.get(row)!, 0.25))}–${int(quantile(rates.get(row)!, 0.75))}`;
    const verify = row.kind === 'verify';
    console.log(`| ${row.label} | ${verify ? row.dhs : '—'} | ${int(m)} | ${(1e6 / m).toFixed(1)} | ${spread} | ${verify ? pct(efficiency(row)) : '—'} |`);
  }
}

console.log(`\nefficiency = verified/s × DH per initiation ÷ raw DH/s, within each round`);
console.log(`targets (native, one core): ≥ ${int(TARGET_PER_SECOND)} verified/s; efficiency ≥ ${pct(TARGET_EFFICIENCY)}`);
for (const row of rows.filter((r) => r.group === 'native' && r.kind === 'verify')) {
  const m = median(rates.get(row)!);
  const bound = median(raw('native')) / row.dhs;
  const rate = m >= TARGET_PER_SECOND ? 'pass' : `miss (the DHs alone allow ${int(bound)}/s)`;
  const eff = efficiency(row) >= TARGET_EFFICIENCY ? 'pass' : 'miss';
  console.log(`  ${row.label.padEnd(24)} ${int(m).padStart(7)}/s ${rate}; efficiency ${pct(efficiency(row))} ${eff}`);
}
