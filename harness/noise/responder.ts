/**
 * The responder's side of Noise_IKpsk2 up to the timestamp: proves which
 * static key sent an initiation without any peer state. Replay and
 * rate checks (timestamp order, 20 ms) stay with the WireGuard device that
 * later receives the replayed message; this only answers "who sent it".
 */
import { timingSafeEqual } from 'node:crypto';
import { PublicKey, wipe } from '../../src/handshake/keys.js';
import { MAX_SS_CACHE, type Responder, type VerifyRejection, type VerifyResult } from '../../src/handshake/verify.js';
import { getCrypto, type CryptoBackend, type DhKey, type NoiseCrypto } from './crypto.js';
import { parseInitiation, type Initiation } from './initiation.js';
import {
  computeMac1,
  decryptAndHash,
  initialChainingKey,
  initialHash,
  mac1Key,
  mixDh,
  mixHash,
  mixKey,
  startState,
  wipeState,
  type SymmetricState,
} from './noise.js';

export interface ResponderOptions {
  crypto?: CryptoBackend;
  /** Entries in the ss cache; MAX_SS_CACHE unless set (0 disables it). */
  ssCacheSize?: number;
}

/** A least-recently-used map of ss results, wiping what it evicts. */
class SsCache {
  private readonly entries = new Map<string, Uint8Array | null>();
  constructor(private readonly capacity: number) {}

  get(key: string): Uint8Array | null | undefined {
    const value = this.entries.get(key);
    if (value === undefined) return undefined;
    this.entries.delete(key);
    this.entries.set(key, value);
    return value;
  }

  set(key: string, value: Uint8Array | null): void {
    if (this.capacity <= 0) return;
    this.entries.set(key, value);
    if (this.entries.size <= this.capacity) return;
    const [oldest, secret] = this.entries.entries().next().value as [string, Uint8Array | null];
    this.entries.delete(oldest);
    if (secret !== null) wipe(secret);
  }
}

function fail(reason: VerifyRejection): VerifyResult {
  return { ok: false, reason };
}

interface ResponderKeys {
  crypto: NoiseCrypto;
  dhKey: DhKey;
  ck0: Uint8Array;
  h0: Uint8Array;
  mac1Key: Uint8Array;
  ss: SsCache;
  ssCacheSize: number;
}

function mac1Valid(keys: ResponderKeys, message: Uint8Array, mac1: Uint8Array): boolean {
  const expected = computeMac1(keys.crypto, keys.mac1Key, message);
  return timingSafeEqual(expected, mac1);
}

/** ss for this initiator key: from the cache, else one DH (null: low order). */
function staticStatic(keys: ResponderKeys, initiatorKey: PublicKey): Uint8Array | null {
  const cached = keys.ss.get(initiatorKey.id);
  if (cached !== undefined) return cached;
  const ss = keys.dhKey.dh(initiatorKey.bytes);
  if (keys.ssCacheSize > 0) keys.ss.set(initiatorKey.id, ss);
  return ss;
}

/**
 * The message steps after mac1. `s` belongs to the caller, which wipes it;
 * `scratch` collects the other secrets made here for the same wipe.
 */
function consumeInitiation(
  keys: ResponderKeys,
  msg: Initiation,
  s: SymmetricState,
  scratch: Uint8Array[],
  onClaimedStatic?: (claimedKey: PublicKey) => void,
): VerifyResult {
  const c = keys.crypto;
  /* e */
  mixKey(c, s, msg.ephemeral);
  mixHash(c, s, msg.ephemeral);
  /* es */
  const es = keys.dhKey.dh(msg.ephemeral);
  if (es === null) return fail('low_order');
  scratch.push(es);
  mixDh(c, s, es);
  /* s */
  const initiatorStatic = decryptAndHash(c, s, msg.encryptedStatic);
  if (initiatorStatic === null) return fail('static_decrypt');
  const initiatorKey = PublicKey.fromBytes(initiatorStatic);
  onClaimedStatic?.(initiatorKey);
  /* ss */
  const ss = staticStatic(keys, initiatorKey);
  if (ss === null) return fail('low_order');
  if (keys.ssCacheSize <= 0) scratch.push(ss);
  mixDh(c, s, ss);
  /* {t} */
  const timestamp = decryptAndHash(c, s, msg.encryptedTimestamp);
  if (timestamp === null) return fail('timestamp_decrypt');
  return { ok: true, initiatorKey, timestamp: Uint8Array.from(timestamp), senderIndex: msg.senderIndex };
}

export function createResponder(privateKey: Uint8Array, opts: ResponderOptions = {}): Responder {
  const crypto = getCrypto(opts.crypto ?? 'node');
  const dhKey = crypto.dhKey(privateKey);
  const ssCacheSize = opts.ssCacheSize ?? MAX_SS_CACHE;
  const keys: ResponderKeys = {
    crypto,
    dhKey,
    ck0: initialChainingKey(crypto),
    h0: initialHash(crypto, dhKey.publicKey),
    mac1Key: mac1Key(crypto, dhKey.publicKey),
    ss: new SsCache(ssCacheSize),
    ssCacheSize,
  };

  function verify(message: Uint8Array, onClaimedStatic?: (claimedKey: PublicKey) => void): VerifyResult {
    const parsed = parseInitiation(message);
    if (!parsed.ok) return fail(parsed.reason);
    if (!mac1Valid(keys, message, parsed.value.mac1)) return fail('mac1');
    const s = startState(keys.ck0, keys.h0);
    const scratch: Uint8Array[] = [];
    try {
      return consumeInitiation(keys, parsed.value, s, scratch, onClaimedStatic);
    } finally {
      wipeState(s);
      wipe(...scratch);
    }
  }

  return { publicKey: PublicKey.fromBytes(dhKey.publicKey), verify };
}
