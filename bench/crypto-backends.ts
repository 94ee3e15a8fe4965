/**
 * The measurement that chose the responder's crypto (docs/decisions.md):
 * each candidate timed inside the bench addon (harness/addon/crypto_bench.h),
 * with no JavaScript between operations, on one core, in one run (rates per
 * second of CPU time: bench/measure.ts).
 *
 *   X25519        libsodium's crypto_scalarmult (the responder's); node's
 *                 OpenSSL 3 as the responder used it before (EVP_PKEY_fromdata
 *                 of the peer's key, then derive); the same with one peer key
 *                 refilled per DH (the cheapest public OpenSSL path found)
 *   hashing+AEAD  the rest of one initiation (mac1, 3 HASH, 8 HMAC, 2 AEAD
 *                 opens): libb2 + libsodium (the responder's), OpenSSL EVP
 *
 * Then what each combination leaves for a verify: the crypto of one
 * initiation for a returning key (1 DH) and a new key (2 DHs).
 *
 *   npx tsx bench/crypto-backends.ts [--seconds 10]
 */
import { parseArgs } from 'node:util';
import { inAddon, median, takeTurns } from './measure.js';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '10' } } });
const SECONDS = Number(values.seconds);
if (!(SECONDS > 0)) throw new Error('--seconds must be a positive number');
const SLICE_MS = 50;

const OPS = {
  sodium: 'x25519:libsodium',
  opensslImport: 'x25519:openssl-import',
  opensslReuse: 'x25519:openssl-reuse',
  symmetricChosen: 'symmetric:libb2+libsodium',
  symmetricOpenssl: 'symmetric:openssl',
} as const;
const names = Object.keys(OPS) as (keyof typeof OPS)[];
const rounds = Math.max(3, Math.round((SECONDS * 1000) / (SLICE_MS * names.length)));
const { rates, cpuShare } = takeTurns(
  names.map((n) => inAddon(OPS[n])),
  rounds,
  SLICE_MS,
);
/** Median µs per operation. */
const us = Object.fromEntries(names.map((n, i) => [n, 1e6 / median(rates[i]!)])) as Record<keyof typeof OPS, number>;

const f1 = (x: number) => x.toFixed(1);
const int = (x: number) => Math.round(x).toLocaleString('en-US');
console.log(`\ncrypto backends, timed in the addon on one core: medians of ${rounds} rounds`);
console.log(`(per second of this process's CPU time; it had ${Math.round(cpuShare * 100)}% of the wall time)\n`);
console.log('| operation | backend | µs | per second |');
console.log('|---|---|--:|--:|');
const primitives: [string, string, keyof typeof OPS][] = [
  ['X25519', 'libsodium crypto_scalarmult (chosen)', 'sodium'],
  ['X25519', 'OpenSSL EVP, peer key imported per DH (before)', 'opensslImport'],
  ['X25519', 'OpenSSL EVP, one peer key refilled per DH', 'opensslReuse'],
  ['hashing + AEAD of one initiation', 'libb2 + libsodium (chosen)', 'symmetricChosen'],
  ['hashing + AEAD of one initiation', 'OpenSSL EVP (before)', 'symmetricOpenssl'],
];
for (const [what, backend, op] of primitives) console.log(`| ${what} | ${backend} | ${f1(us[op])} | ${int(1e6 / us[op])} |`);

console.log('\n| crypto of one initiation | returning key (1 DH) µs | new key (2 DH) µs |');
console.log('|---|--:|--:|');
const combos: [string, keyof typeof OPS, keyof typeof OPS][] = [
  ['libsodium + libb2 (chosen)', 'sodium', 'symmetricChosen'],
  ['OpenSSL EVP, as before', 'opensslImport', 'symmetricOpenssl'],
  ['OpenSSL EVP, peer key refilled', 'opensslReuse', 'symmetricOpenssl'],
];
for (const [name, dh, rest] of combos) console.log(`| ${name} | ${f1(us[dh] + us[rest])} | ${f1(2 * us[dh] + us[rest])} |`);
