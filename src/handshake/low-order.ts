/**
 * Public keys no client can hold. A Curve25519 point of small order makes
 * every Diffie-Hellman with it come out all zeros, whatever the other key
 * (the responder refuses that result, as WireGuard does), so a peer record
 * with such a key can never complete a handshake: it is refused where
 * records are written, with the reason.
 *
 * X25519 reads a key as a u-coordinate: the top bit of the last byte is
 * ignored (RFC 7748, 5), and the rest is taken modulo p = 2^255 - 19. The
 * small-order u values are 0 (order 2, and the point at infinity's
 * encoding), 1 (order 4), p - 1 (order 4, on the twist) and the two of
 * order 8; of these only 0 and 1 have a second encoding below 2^255, p and
 * p + 1. Each of the 7 with the top bit clear or set: 14 keys.
 * test/unit/low-order-keys.test.ts derives the list from the curve and
 * checks every entry against @noble/curves.
 */
import { KEY_LENGTH } from './keys.js';

/** The 7 encodings below 2^255, little-endian hex, as the curve's order names them. */
const SMALL_ORDER_U: ReadonlyArray<[hex: string, order: string]> = [
  ['0000000000000000000000000000000000000000000000000000000000000000', 'u = 0, order 2'],
  ['0100000000000000000000000000000000000000000000000000000000000000', 'u = 1, order 4'],
  ['e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800', 'order 8'],
  ['5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157', 'order 8'],
  ['ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', 'u = p - 1, order 4'],
  ['edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', 'u = p, which is 0'],
  ['eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', 'u = p + 1, which is 1'],
];

/** Every 32-byte key X25519 reads as a small-order point, top bit clear and set, with what it is. */
export const LOW_ORDER_KEYS: ReadonlyArray<{ key: Uint8Array; what: string }> = SMALL_ORDER_U.flatMap(([hex, order]) => {
  const clear = new Uint8Array(Buffer.from(hex, 'hex'));
  const set = clear.slice();
  set[KEY_LENGTH - 1]! |= 0x80;
  return [
    { key: clear, what: order },
    { key: set, what: `${order}, top bit set` },
  ];
});

/** Keyed by wg's spelling, so a check of a key already in base64 (the API, an import) makes no bytes. */
const BY_SPELLING = new Map(LOW_ORDER_KEYS.map(({ key, what }) => [Buffer.from(key).toString('base64'), what]));

const ALL_ZERO = Buffer.alloc(KEY_LENGTH).toString('base64');

/**
 * Why no client can hold the key spelled `key` (wg's standard base64), in
 * a few words for an error message; null for a key that may be a client's.
 */
export function unusableKeyProblem(key: string): string | null {
  if (key === ALL_ZERO) return 'is all zeros, which no client key can be';
  const order = BY_SPELLING.get(key);
  if (order === undefined) return null;
  return `is a low-order Curve25519 point (${order}): every Diffie-Hellman with it gives zero, so no handshake can complete`;
}
