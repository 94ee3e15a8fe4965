/** One handshake initiation as the XDP program captured it. */
export interface CaptureEvent {
  /** Interface the frame arrived on. */
  ifindex: number;
  family: 4 | 6;
  /** The client: source address and port of the datagram. */
  src: { address: string; port: number };
  /** The gateway address and port it was sent to. */
  dst: { address: string; port: number };
  /** bpf_ktime_get_ns() at capture: CLOCK_MONOTONIC nanoseconds. */
  arrivalNs: bigint;
  /** The whole 148-byte initiation message, a copy owned by the event. */
  message: Uint8Array;
}
