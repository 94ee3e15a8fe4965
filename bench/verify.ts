/**
 * Cost of proving who sent an initiation (mac1, e, es, s, ss, timestamp),
 * per responder implementation, in one process and one run:
 *
 *   native   addon/noise_responder.cc on libsodium + libb2 (what the daemon uses)
 *   node     harness/noise/responder.ts on node:crypto (the reference)
 *   noble    the same on @noble/curves and @noble/hashes
 *
 * "ss cached" is a returning key (its static-static DH is cached, as for a
 * client that reconnects); "ss miss" is a key never seen (a cold client, two
 * DHs). Medians of ROUNDS rounds, each BATCH verifies. Per core rates
 * beside the raw DH rate: bench/throughput.ts.
 *
 *   npx tsx bench/verify.ts [--rounds 30] [--batch 200]
 */
import { parseArgs } from 'node:util';
import { createInitiation } from '../harness/noise/initiator.js';
import { generatePrivateKey } from '../harness/noise/keys.js';
import { publicKeyOf } from '../src/handshake/keys.js';
import { createNativeResponder } from '../src/handshake/native.js';
import { createResponder } from '../harness/noise/responder.js';
import type { Responder } from '../src/handshake/verify.js';
import { median } from './measure.js';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '30' }, batch: { type: 'string', default: '200' } } });
const ROUNDS = Number(values.rounds);
const BATCH = Number(values.batch);
if (!(ROUNDS > 0 && BATCH > 0)) throw new Error('--rounds and --batch must be positive numbers');

const responderKey = generatePrivateKey();
const responderPublicKey = publicKeyOf(responderKey);

function initiations(count: number, initiatorPrivateKey?: Uint8Array): Uint8Array[] {
  return Array.from({ length: count }, () => createInitiation({ initiatorPrivateKey: initiatorPrivateKey ?? generatePrivateKey(), responderPublicKey }).message);
}

/** µs per verify: median over rounds; `fresh` makes each round's messages. */
function measure(responder: Responder, fresh: () => Uint8Array[]): number {
  const perVerify: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const messages = fresh();
    const start = process.hrtime.bigint();
    for (const m of messages) if (!responder.verify(m).ok) throw new Error('benchmark initiation rejected');
    perVerify.push(Number(process.hrtime.bigint() - start) / 1e3 / messages.length);
  }
  return median(perVerify);
}

const backends: [string, () => Responder][] = [
  ['native', () => createNativeResponder(responderKey)],
  ['node', () => createResponder(responderKey, { crypto: 'node' })],
  ['noble', () => createResponder(responderKey, { crypto: 'noble' })],
];

process.stderr.write(`preparing ${ROUNDS} × ${BATCH} initiations per case…\n`);
const returning = initiations(BATCH, generatePrivateKey());
const coldRounds = Array.from({ length: ROUNDS }, () => initiations(BATCH));

const rows = backends.map(([name, make]) => {
  process.stderr.write(`measuring ${name}…\n`);
  const responder = make();
  responder.verify(returning[0]!); // warm the ss cache and the JIT
  const cached = measure(responder, () => returning);
  let next = 0;
  const miss = measure(make(), () => coldRounds[next++]!);
  return { name, cached, miss };
});

const node = rows.find((r) => r.name === 'node')!;
const fmt = (us: number) => us.toFixed(1).padStart(9);
const ratio = (us: number, base: number) => `${(base / us).toFixed(2)}×`.padStart(8);
console.log(`\nverify cost, µs per initiation (median of ${ROUNDS} rounds × ${BATCH})\n`);
console.log('backend   ss cached  vs node    ss miss  vs node');
for (const r of rows) console.log(`${r.name.padEnd(8)}${fmt(r.cached)}${ratio(r.cached, node.cached)}${fmt(r.miss)}${ratio(r.miss, node.miss)}`);
