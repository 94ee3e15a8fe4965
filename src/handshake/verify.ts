/**
 * What verifying an initiation answers, whichever responder computes it:
 * the addon's (native.ts, what the daemon runs) or the reference one in
 * TypeScript (harness/noise/responder.ts), which the tests hold to the same
 * results.
 */
import type { PublicKey } from './keys.js';

/**
 * ss = DH(S_priv, S_pub_initiator) depends only on the initiator's key, so
 * it is cached as the kernel keeps it per peer. Bounded because an attacker
 * can present any number of fresh static keys; 4096 entries × ~100 bytes.
 */
export const MAX_SS_CACHE = 4096;

export type VerifyRejection = 'length' | 'type' | 'reserved' | 'mac1' | 'low_order' | 'static_decrypt' | 'timestamp_decrypt';
export type VerifyResult =
  | { ok: true; initiatorKey: PublicKey; timestamp: Uint8Array /* 12-byte TAI64N */; senderIndex: number }
  | { ok: false; reason: VerifyRejection };

export interface Responder {
  readonly publicKey: PublicKey;
  /**
   * `onClaimedStatic` is called with the static key the message claims as
   * soon as it decrypts, before ss and the timestamp prove it: a caller may
   * start read-only work with it (a store lookup) but must act only on an
   * ok result.
   */
  verify(message: Uint8Array, onClaimedStatic?: (claimedKey: PublicKey) => void): VerifyResult;
}
