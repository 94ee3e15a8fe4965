/**
 * The initiator's side of the WireGuard handshake, for tests, benchmarks
 * and the demo's synthetic clients: builds real initiations, checks the
 * device's response and derives transport keys so a client can send the
 * keepalive that confirms the session. Never used on the data path.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { aeadEncrypt, getCrypto, type CryptoBackend, type DhKey, type NoiseCrypto } from './crypto.js';
import { KEY_LENGTH, wipe } from '../../src/handshake/keys.js';
import { generatePrivateKey } from './keys.js';
import {
  HEADER_SIZE,
  INDEX_SIZE,
  INITIATION_OFF_EPHEMERAL,
  INITIATION_OFF_MAC1,
  INITIATION_OFF_SENDER,
  INITIATION_OFF_STATIC,
  INITIATION_OFF_TIMESTAMP,
  KEY_SIZE,
  MESSAGE_INITIATION_SIZE,
  MESSAGE_RESPONSE_SIZE,
  MESSAGE_TRANSPORT_MIN_SIZE,
  MESSAGE_TYPE_INITIATION,
  MESSAGE_TYPE_RESPONSE,
  MESSAGE_TYPE_TRANSPORT,
  ENCRYPTED_NOTHING_SIZE,
  MAC_SIZE,
  RESPONSE_OFF_EMPTY,
  RESPONSE_OFF_EPHEMERAL,
  RESPONSE_OFF_MAC1,
  RESPONSE_OFF_RECEIVER,
  RESPONSE_OFF_SENDER,
  TRANSPORT_OFF_COUNTER,
  TRANSPORT_OFF_RECEIVER,
} from '../../src/handshake/messages.js';
import {
  EMPTY,
  computeMac1,
  decryptAndHash,
  encryptAndHash,
  initialChainingKey,
  initialHash,
  kdf2,
  mac1Key,
  mixDh,
  mixHash,
  mixKey,
  mixKeyAndHash,
  startState,
  wipeState,
  type SymmetricState,
} from './noise.js';
import { tai64nNow } from './tai64n.js';

export interface InitiationOptions {
  initiatorPrivateKey: Uint8Array;
  responderPublicKey: Uint8Array;
  senderIndex?: number;
  timestamp?: Uint8Array;
  ephemeralPrivateKey?: Uint8Array;
  /** Attack: encrypt this key as the static, but do ss with initiatorPrivateKey. */
  claimedStaticKey?: Uint8Array;
  crypto?: CryptoBackend;
}

/** What the initiator keeps between its initiation and the response. */
export interface InitiatorState {
  readonly backend: CryptoBackend;
  readonly senderIndex: number;
  readonly staticKey: DhKey;
  readonly ephemeralKey: DhKey;
  readonly noise: SymmetricState;
}

/** Transport keys once a response is accepted. */
export interface Session {
  /** Our index: the device puts it in the receiver field of what it sends us. */
  localIndex: number;
  /** The device's index: goes in the receiver field of what we send. */
  remoteIndex: number;
  sendKey: Uint8Array;
  receiveKey: Uint8Array;
}

export type ConsumeResult = { ok: true; session: Session } | { ok: false; reason: string };

function randomIndex(): number {
  return randomBytes(INDEX_SIZE).readUInt32LE(0);
}

/** Recompute mac1 of a message in place (mac2 untouched), for tests that mutate fields. */
export function stampMac1(message: Uint8Array, receiverPublicKey: Uint8Array, backend: CryptoBackend = 'node'): Uint8Array {
  const c = getCrypto(backend);
  const offset = message[0] === MESSAGE_TYPE_RESPONSE ? RESPONSE_OFF_MAC1 : INITIATION_OFF_MAC1;
  message.set(computeMac1(c, mac1Key(c, receiverPublicKey), message, offset), offset);
  return message;
}

function writeHeader(message: Uint8Array, type: number): void {
  message.fill(0, 0, HEADER_SIZE);
  message[0] = type;
}

export function createInitiation(opts: InitiationOptions): { message: Uint8Array; senderIndex: number; state: InitiatorState } {
  const c = getCrypto(opts.crypto ?? 'node');
  const responderPublic = opts.responderPublicKey;
  const senderIndex = (opts.senderIndex ?? randomIndex()) >>> 0;
  const staticKey = c.dhKey(opts.initiatorPrivateKey);
  const ephemeralPrivate = opts.ephemeralPrivateKey ?? generatePrivateKey();
  const ephemeral = c.dhKey(ephemeralPrivate);
  if (opts.ephemeralPrivateKey === undefined) wipe(ephemeralPrivate);
  const s = startState(initialChainingKey(c), initialHash(c, responderPublic));
  const message = new Uint8Array(MESSAGE_INITIATION_SIZE);
  writeHeader(message, MESSAGE_TYPE_INITIATION);
  new DataView(message.buffer).setUint32(INITIATION_OFF_SENDER, senderIndex, true);

  /* e */
  message.set(ephemeral.publicKey, INITIATION_OFF_EPHEMERAL);
  mixKey(c, s, ephemeral.publicKey);
  mixHash(c, s, ephemeral.publicKey);
  /* es */
  const es = requireDh(ephemeral.dh(responderPublic));
  mixDh(c, s, es);
  wipe(es);
  /* s */
  message.set(encryptAndHash(c, s, opts.claimedStaticKey ?? staticKey.publicKey), INITIATION_OFF_STATIC);
  /* ss */
  const ss = requireDh(staticKey.dh(responderPublic));
  mixDh(c, s, ss);
  wipe(ss);
  /* {t} */
  message.set(encryptAndHash(c, s, opts.timestamp ?? tai64nNow()), INITIATION_OFF_TIMESTAMP);

  stampMac1(message, responderPublic, c.backend);
  const state: InitiatorState = {
    backend: c.backend,
    senderIndex,
    staticKey,
    ephemeralKey: ephemeral,
    noise: s,
  };
  return { message, senderIndex, state };
}

function requireDh(shared: Uint8Array | null): Uint8Array {
  if (shared === null) throw new Error('low-order public key');
  return shared;
}

function checkResponseFraming(c: NoiseCrypto, state: InitiatorState, response: Uint8Array): string | null {
  if (response.length !== MESSAGE_RESPONSE_SIZE) return 'length';
  if (response[0] !== MESSAGE_TYPE_RESPONSE || response[1] !== 0 || response[2] !== 0 || response[3] !== 0) return 'type';
  const view = new DataView(response.buffer, response.byteOffset, response.byteLength);
  if (view.getUint32(RESPONSE_OFF_RECEIVER, true) !== state.senderIndex) return 'receiver_index';
  const ourPublic = state.staticKey.publicKey;
  const mac1 = computeMac1(c, mac1Key(c, ourPublic), response, RESPONSE_OFF_MAC1);
  if (!timingSafeEqual(mac1, response.subarray(RESPONSE_OFF_MAC1, RESPONSE_OFF_MAC1 + MAC_SIZE))) return 'mac1';
  return null;
}

/**
 * The initiator's processing of the device's response (e, ee, se, psk, {}).
 * Consumes `state`: its chaining key is wiped whatever the outcome.
 */
export function consumeResponse(state: InitiatorState, response: Uint8Array, presharedKey?: Uint8Array): ConsumeResult {
  const c = getCrypto(state.backend);
  const s = state.noise;
  try {
    const framing = checkResponseFraming(c, state, response);
    if (framing !== null) return { ok: false, reason: framing };
    const responderEphemeral = response.subarray(RESPONSE_OFF_EPHEMERAL, RESPONSE_OFF_EPHEMERAL + KEY_SIZE);
    /* e */
    mixKey(c, s, responderEphemeral);
    mixHash(c, s, responderEphemeral);
    /* ee */
    const ee = state.ephemeralKey.dh(responderEphemeral);
    if (ee === null) return { ok: false, reason: 'low_order' };
    mixKey(c, s, ee);
    wipe(ee);
    /* se */
    const se = state.staticKey.dh(responderEphemeral);
    if (se === null) return { ok: false, reason: 'low_order' };
    mixKey(c, s, se);
    wipe(se);
    /* psk */
    mixKeyAndHash(c, s, presharedKey ?? new Uint8Array(KEY_LENGTH));
    /* {} */
    const empty = decryptAndHash(c, s, response.subarray(RESPONSE_OFF_EMPTY, RESPONSE_OFF_EMPTY + ENCRYPTED_NOTHING_SIZE));
    if (empty === null) return { ok: false, reason: 'empty_decrypt' };
    const [sendKey, receiveKey] = kdf2(c, s.ck, EMPTY);
    const remoteIndex = new DataView(response.buffer, response.byteOffset).getUint32(RESPONSE_OFF_SENDER, true);
    return { ok: true, session: { localIndex: state.senderIndex, remoteIndex, sendKey, receiveKey } };
  } finally {
    wipeState(s);
  }
}

/** A transport message with an empty payload: the keepalive that confirms a session. */
export function createKeepalive(session: Session, counter = 0n): Uint8Array {
  const message = new Uint8Array(MESSAGE_TRANSPORT_MIN_SIZE);
  writeHeader(message, MESSAGE_TYPE_TRANSPORT);
  const view = new DataView(message.buffer);
  view.setUint32(TRANSPORT_OFF_RECEIVER, session.remoteIndex, true);
  view.setBigUint64(TRANSPORT_OFF_COUNTER, counter, true);
  message.set(aeadEncrypt(session.sendKey, counter, EMPTY, EMPTY), MESSAGE_TRANSPORT_MIN_SIZE - ENCRYPTED_NOTHING_SIZE);
  return message;
}
