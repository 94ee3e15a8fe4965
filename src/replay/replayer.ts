/**
 * Re-injects a captured initiation into this host's stack, so the WireGuard
 * device answers the client's first initiation instead of its retry five
 * seconds later. The packet keeps the client's address and port: the device
 * learns the endpoint from it.
 */
import { rawSend } from '../capture/addon.js';
import type { CaptureEvent } from '../capture/types.js';
import { buildDatagram } from './datagram.js';

/** Sends `packet` to `dstAddress`: its 4 or 16 network-order bytes. */
export type RawSend = (family: 4 | 6, packet: Uint8Array, dstAddress: Uint8Array) => void;

export class Replayer {
  readonly #send: RawSend;
  #closed = false;

  /** `send` defaults to the addon's raw-socket sender. */
  constructor(send: RawSend = rawSend) {
    this.#send = send;
  }

  /** Throws if the packet cannot be built or sent (the caller counts it). */
  replay(event: CaptureEvent): void {
    if (this.#closed) throw new Error('replayer is closed');
    const { family, packet } = buildDatagram(event);
    this.#send(family, packet, event.dst.address.bytes);
  }

  /**
   * The raw sockets are shared by the process and stay open (one per
   * family); closing only stops this replayer.
   */
  close(): void {
    this.#closed = true;
  }
}
