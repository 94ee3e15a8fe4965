/**
 * Keys for tests that name their peers ('a', 'b', 'peer-7'): the same name
 * always gives the same PublicKey value, distinct names distinct keys, and
 * keyName() turns a key (or its base64, as a log line spells it) back into
 * the name, so assertions can keep saying 'a'.
 */
import { createHash } from 'node:crypto';
import { PublicKey } from '../../src/handshake/keys.js';

const names = new Map<string, string>();

export function testKey(name: string): PublicKey {
  const key = PublicKey.fromBytes(createHash('sha256').update(name).digest());
  names.set(key.id, name);
  return key;
}

/** The name testKey() made `key` from; a key it did not make is returned as it is spelled. */
export function keyName(key: PublicKey | unknown): string {
  const k = key instanceof PublicKey ? key : PublicKey.parse(key);
  if (k === null) return String(key);
  return names.get(k.id) ?? k.toString();
}
