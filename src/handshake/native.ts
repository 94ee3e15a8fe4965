/**
 * The reference responder (harness/noise/responder.ts) computed in the
 * addon (addon/noise_responder.cc, on libsodium and libb2): one call into
 * C++ per initiation. Same interface,
 * same checks in the same order, same rejection names; the unit tests hold
 * both to identical results on every input they try.
 *
 * Arguments are checked here so that C++ only ever sees a Uint8Array of the
 * right length; attacker-controlled input never throws. The result crosses
 * as a string (the initiator's key) or a number (a rejection) and is made
 * into an object here: a JavaScript literal costs far less than an object
 * built through N-API.
 */
import { requireAddon } from '../native-addon.js';
import { INDEX_SIZE, KEY_SIZE, MESSAGE_INITIATION_SIZE, TIMESTAMP_SIZE } from './messages.js';
import { PublicKey } from './keys.js';
import { MAX_SS_CACHE, type Responder, type VerifyRejection, type VerifyResult } from './verify.js';

/** The addon reads the cache size as a uint32; nothing near this is sensible anyway. */
export const MAX_SS_CACHE_SIZE = 2 ** 31 - 1;

export interface NativeResponderOptions {
  /** Entries in the ss cache; MAX_SS_CACHE unless set (0 disables it). */
  ssCacheSize?: number;
}

export interface NativeResponder extends Responder {
  /** X25519 with the responder's key (null: low-order peer); for benchmarks and tests. */
  dh(peerPublicKey: Uint8Array): Uint8Array | null;
  /** Wipes the private key and the ss cache now rather than at garbage collection. */
  close(): void;
}

/* The native class's shape (addon/noise_responder.h). */
interface NativeNoiseResponder {
  readonly publicKey: Buffer;
  /**
   * null when verified, the timestamp, sender index and initiator's key in
   * `out`; or the index of a rejection. `onClaimed` is called once the
   * claimed key is in `out`.
   */
  verify(message: Uint8Array, onClaimed: (() => void) | undefined, out: Uint8Array): null | number;
  dh(peer: Uint8Array): Buffer | null;
  close(): void;
}
interface NativeNoiseResponderClass {
  new (privateKey: Uint8Array, ssCacheSize: number): NativeNoiseResponder;
  readonly rejections: readonly VerifyRejection[];
}
interface NoiseAddon {
  NoiseResponder?: NativeNoiseResponderClass;
}

/* verify()'s out buffer: the timestamp, the sender index (little-endian), the initiator's key. */
const OUT_SENDER_INDEX = TIMESTAMP_SIZE;
const OUT_KEY = OUT_SENDER_INDEX + INDEX_SIZE;
const OUT_SIZE = OUT_KEY + KEY_SIZE;

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
  const cls = nativeClass();
  const native = new cls(privateKey, checkCacheSize(opts.ssCacheSize ?? MAX_SS_CACHE));
  const publicKey = PublicKey.fromBytes(native.publicKey);
  const rejections = cls.rejections;
  const out = new Uint8Array(OUT_SIZE);
  const outView = new DataView(out.buffer);

  function verify(message: Uint8Array, onClaimedStatic?: (claimedKey: PublicKey) => void): VerifyResult {
    if (!(message instanceof Uint8Array) || message.length !== MESSAGE_INITIATION_SIZE) return { ok: false, reason: 'length' };
    // The claimed key, once made for the callback, is the verified one too.
    let claimed: PublicKey | null = null;
    const onClaimed =
      typeof onClaimedStatic === 'function'
        ? () => {
            claimed = PublicKey.fromBytes(out, OUT_KEY);
            onClaimedStatic(claimed);
          }
        : undefined;
    const result = native.verify(message, onClaimed, out);
    if (result !== null) return { ok: false, reason: rejections[result]! };
    return {
      ok: true,
      initiatorKey: claimed ?? PublicKey.fromBytes(out, OUT_KEY),
      timestamp: out.slice(0, OUT_SENDER_INDEX),
      senderIndex: outView.getUint32(OUT_SENDER_INDEX, true),
    };
  }

  function dh(peerPublicKey: Uint8Array): Uint8Array | null {
    if (!(peerPublicKey instanceof Uint8Array) || peerPublicKey.length !== KEY_SIZE) return null;
    return native.dh(peerPublicKey);
  }

  return { publicKey, verify, dh, close: () => native.close() };
}
