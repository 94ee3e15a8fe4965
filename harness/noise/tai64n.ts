import { tai64nFromUnixMs } from '../../src/handshake/tai64n.js';

/** The timestamp a client would put in an initiation now. */
export function tai64nNow(): Uint8Array {
  return tai64nFromUnixMs(Date.now());
}
