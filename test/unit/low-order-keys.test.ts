/**
 * The keys no client can hold (src/handshake/low-order.ts), checked against
 * the curve rather than against the list itself: the small-order
 * u-coordinates are derived here from Ed25519's torsion subgroup (the same
 * curve, birationally: u = (1 + y) / (1 - y)) and the twist's point of
 * order 4, and every listed encoding is shown to make @noble/curves' X25519
 * come out all zeros (noble refuses that result with an error) for random
 * clamped scalars, while random keys and near misses do not.
 */
import { ED25519_TORSION_SUBGROUP, x25519 } from '@noble/curves/ed25519.js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatKey, publicKeyOf } from '../../src/handshake/keys.js';
import { LOW_ORDER_KEYS, unusableKeyProblem } from '../../src/handshake/low-order.js';
import { generatePrivateKey } from '../../harness/noise/keys.js';

const P = 2n ** 255n - 19n;
const mod = (n: bigint) => ((n % P) + P) % P;
function power(n: bigint, e: bigint): bigint {
  let [r, base] = [1n, mod(n)];
  for (; e > 0n; e >>= 1n, base = (base * base) % P) if (e & 1n) r = (r * base) % P;
  return r;
}
const inverse = (n: bigint) => power(n, P - 2n);
/** Curve25519's A. */
const A = 486662n;
const fromLE = (bytes: Uint8Array) => bytes.reduceRight((n, b) => (n << 8n) | BigInt(b), 0n);
function toLE(n: bigint): Uint8Array {
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++, n >>= 8n) out[i] = Number(n & 0xffn);
  return out;
}

/** What X25519 reads a key as: the top bit dropped (RFC 7748, 5), then modulo p. */
const uOf = (key: Uint8Array) => mod(fromLE(key) & (2n ** 255n - 1n));

/** The u-coordinates of small order, from the curve: Ed25519's 8 torsion points, and the twist's points of order 4. */
function smallOrderU(): Set<bigint> {
  const out = new Set<bigint>();
  for (const hex of ED25519_TORSION_SUBGROUP) {
    const y = fromLE(Buffer.from(hex, 'hex')) & (2n ** 255n - 1n);
    // y = 1 is the neutral point, which X25519's ladder writes as u = 0.
    out.add(y === 1n ? 0n : mod((1n + y) * inverse(1n - y)));
  }
  // u = -1: v² = u³ + Au² + u = A - 2 has no root (Euler's criterion), so the point is on the twist, where it has order 4; X25519 takes twist points too.
  expect(power(A - 2n, (P - 1n) / 2n)).toBe(P - 1n);
  out.add(P - 1n);
  return out;
}

/** Whether X25519 of `key` with `scalar` is all zeros (noble throws on exactly that). */
function sharesZero(scalar: Uint8Array, key: Uint8Array): boolean {
  try {
    x25519.getSharedSecret(scalar, key);
    return false;
  } catch (err) {
    expect((err as Error).message).toMatch(/invalid private or public key/);
    return true;
  }
}

describe('low-order public keys', () => {
  it('lists exactly every 32-byte encoding of the small-order u-coordinates', () => {
    const derived = smallOrderU();
    expect(derived.size).toBe(5); // 0, 1, p - 1 and the two of order 8
    // Every encoding below 2^255 of each (u and u + p while that is below 2^255), top bit clear and set.
    const expected = new Set<string>();
    for (const u of derived) {
      for (let n = u; n < 2n ** 255n; n += P) {
        expected.add(formatKey(toLE(n)));
        expected.add(formatKey(toLE(n + 2n ** 255n)));
      }
    }
    const listed = new Set(LOW_ORDER_KEYS.map(({ key }) => formatKey(key)));
    expect(listed.size).toBe(LOW_ORDER_KEYS.length);
    expect([...listed].sort()).toEqual([...expected].sort());
    expect(listed.size).toBe(14);
    for (const { key } of LOW_ORDER_KEYS) expect(derived.has(uOf(key))).toBe(true);
  });

  it('every listed key makes X25519 all zeros with any scalar', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (scalar) => {
        for (const { key } of LOW_ORDER_KEYS) expect(sharesZero(scalar, key)).toBe(true);
      }),
      { numRuns: 20 },
    );
  });

  it('u + p of the larger ones fits in 32 bytes but is not listed: X25519 drops the top bit first, which leaves u - 19', () => {
    const scalar = generatePrivateKey();
    for (const u of smallOrderU()) {
      if (u + P < 2n ** 255n) continue; // 0 and 1: u + p is below 2^255, listed
      const plusP = toLE(u + P);
      expect(uOf(plusP)).toBe(u - 19n);
      expect(unusableKeyProblem(formatKey(plusP))).toBeNull();
      expect(sharesZero(scalar, plusP)).toBe(false);
    }
  });

  it('every listed key is refused with the reason; the all-zero key says so', () => {
    for (const { key, what } of LOW_ORDER_KEYS) {
      const problem = unusableKeyProblem(formatKey(key));
      expect(problem).not.toBeNull();
      if (key.every((b) => b === 0)) expect(problem).toBe('is all zeros, which no client key can be');
      else expect(problem).toContain(`is a low-order Curve25519 point (${what})`);
    }
  });

  it('takes real keys, and the neighbours of the listed ones', () => {
    const scalar = generatePrivateKey();
    for (let i = 0; i < 20; i++) {
      const key = publicKeyOf(generatePrivateKey());
      expect(unusableKeyProblem(formatKey(key))).toBeNull();
      expect(sharesZero(scalar, key)).toBe(false);
    }
    for (const { key } of LOW_ORDER_KEYS) {
      for (const delta of [1n, 2n]) {
        const near = toLE((fromLE(key) + delta) % 2n ** 256n);
        if (LOW_ORDER_KEYS.some((l) => formatKey(l.key) === formatKey(near))) continue; // 0 + 1 is 1
        expect(unusableKeyProblem(formatKey(near))).toBeNull();
        expect(sharesZero(scalar, near)).toBe(false);
      }
    }
  });
});
