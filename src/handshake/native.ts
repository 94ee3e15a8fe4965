/**
 * The responder of responder.ts computed in the addon (addon/noise_responder.cc)
 * on the OpenSSL 3 that node exports: one call into C++ per initiation instead
 * of ~20 node:crypto objects, which is most of a verify's cost. Same interface,
 * same checks in the same order, same rejection names; the unit tests hold
 * both to identical results on every input they try.
 *
 * Arguments are checked here so that C++ only ever sees a Uint8Array of the
 * right length; attacker-controlled input never throws.
 */
import { requireAddon } from '../native-addon.js';
import { KEY_SIZE, MESSAGE_INITIATION_SIZE } from './messages.js';
import { formatKey } from './keys.js';
import { MAX_SS_CACHE, type Responder, type VerifyResult } from './responder.js';

/** The addon reads the cache size as a uint32; nothing near this is sensible anyway. */
export const MAX_SS_CACHE_SIZE = 2 ** 31 - 1;

export interface NativeResponderOptions {
  /** Entries in the ss cache; MAX_SS_CACHE unless set (0 disables it). */
  ssCacheSize?: number;
}

export interface NativeResponder extends Responder {
  /** X25519 with the responder's key (null: low-order peer); for benchmarks and tests. */
  dh(peerPublicKey: Uint8Array): Uint8Array | null;
  /** Frees the OpenSSL objects and wipes the ss cache now rather than at garbage collection. */
  close(): void;
}

/* The native class's shape (addon/noise_responder.h). */
interface NativeNoiseResponder {
  readonly publicKey: Buffer;
  verify(message: Uint8Array, onClaimed?: (claimedKey: string) => void): VerifyResult;
  dh(peer: Uint8Array): Buffer | null;
  close(): void;
}
interface NoiseAddon {
  NoiseResponder?: new (privateKey: Uint8Array, ssCacheSize: number) => NativeNoiseResponder;
}

function nativeClass(): NonNullable<NoiseAddon['NoiseResponder']> {
  const cls = (requireAddon() as NoiseAddon).NoiseResponder;
  if (typeof cls !== 'function') throw new Error('native addon has no NoiseResponder: rebuild with make');
  return cls;
}

function checkCacheSize(size: unknown): number {
  if (typeof size !== 'number' || !Number.isInteger(size) || size < 0 || size > MAX_SS_CACHE_SIZE) {
    throw new RangeError(`ssCacheSize must be an integer in 0..${MAX_SS_CACHE_SIZE}, got ${String(size)}`);
  }
  return size;
}

export function createNativeResponder(privateKey: Uint8Array, opts: NativeResponderOptions = {}): NativeResponder {
  if (!(privateKey instanceof Uint8Array) || privateKey.length !== KEY_SIZE) throw new RangeError('X25519 private key must be 32 bytes');
  const native = new (nativeClass())(privateKey, checkCacheSize(opts.ssCacheSize ?? MAX_SS_CACHE));
  const publicKey = formatKey(native.publicKey);

  function verify(message: Uint8Array, onClaimedStatic?: (claimedKey: string) => void): VerifyResult {
    if (!(message instanceof Uint8Array) || message.length !== MESSAGE_INITIATION_SIZE) return { ok: false, reason: 'length' };
    return typeof onClaimedStatic === 'function' ? native.verify(message, onClaimedStatic) : native.verify(message);
  }

  function dh(peerPublicKey: Uint8Array): Uint8Array | null {
    if (!(peerPublicKey instanceof Uint8Array) || peerPublicKey.length !== KEY_SIZE) return null;
    return native.dh(peerPublicKey);
  }

  return { publicKey, verify, dh, close: () => native.close() };
}
