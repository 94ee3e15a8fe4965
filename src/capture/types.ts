import type { IpEndpoint } from '../net/address.js';

/** One handshake initiation as the XDP program captured it. */
export interface CaptureEvent {
  /** Interface the frame arrived on. */
  ifindex: number;
  family: 4 | 6;
  /** The client: source address (bytes of `family`) and port of the datagram. */
  src: IpEndpoint;
  /** The gateway address and port it was sent to. */
  dst: IpEndpoint;
  /** bpf_ktime_get_ns() at capture: CLOCK_MONOTONIC nanoseconds. */
  arrivalNs: bigint;
  /** The whole 148-byte initiation message, a copy owned by the event. */
  message: Uint8Array;
}
