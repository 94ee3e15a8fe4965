/**
 * The ring-buffer record written by bpf/xdp_capture.bpf.c (struct
 * capture_record in bpf/capture_record.h), turned into a CaptureEvent.
 * Records come from the kernel but their contents come from the network:
 * a record that does not fit the layout is reported, never thrown.
 */
import { endianness } from 'node:os';
import { MESSAGE_INITIATION_SIZE } from '../handshake/messages.js';
import { IPV4_BYTES, IPV6_BYTES } from '../net/address.js';
import type { CaptureEvent } from './types.js';

/* Layout, mirrored from bpf/capture_record.h (offsets asserted there). */
export const RECORD_SIZE = 208;
export const RECORD_OFF_IFINDEX = 0;
export const RECORD_OFF_FAMILY = 4;
export const RECORD_OFF_SADDR = 8;
export const RECORD_OFF_DADDR = 24;
export const RECORD_OFF_SPORT = 40;
export const RECORD_OFF_DPORT = 42;
export const RECORD_OFF_ARRIVAL_NS = 48;
export const RECORD_OFF_MSG = 56;
export const RECORD_FAMILY_IPV4 = 4;
export const RECORD_FAMILY_IPV6 = 6;

/* ifindex and arrival_ns are in the kernel's (this host's) byte order. */
const HOST_LITTLE_ENDIAN = endianness() === 'LE';

export type RecordError = 'wrong_size' | 'bad_family';
export type RecordResult = { ok: true; event: CaptureEvent } | { ok: false; error: RecordError };

export function parseRecord(record: Uint8Array): RecordResult {
  if (record.length !== RECORD_SIZE) return { ok: false, error: 'wrong_size' };
  const view = new DataView(record.buffer, record.byteOffset, record.byteLength);
  const family = view.getUint8(RECORD_OFF_FAMILY);
  if (family !== RECORD_FAMILY_IPV4 && family !== RECORD_FAMILY_IPV6) return { ok: false, error: 'bad_family' };
  // The address fills the first 4 or 16 bytes of its 16-byte slot (bpf/capture_record.h).
  const size = family === RECORD_FAMILY_IPV4 ? IPV4_BYTES : IPV6_BYTES;
  return {
    ok: true,
    event: {
      ifindex: view.getUint32(RECORD_OFF_IFINDEX, HOST_LITTLE_ENDIAN),
      family,
      src: { address: { family, bytes: copy(record, RECORD_OFF_SADDR, size) }, port: view.getUint16(RECORD_OFF_SPORT, false) },
      dst: { address: { family, bytes: copy(record, RECORD_OFF_DADDR, size) }, port: view.getUint16(RECORD_OFF_DPORT, false) },
      arrivalNs: view.getBigUint64(RECORD_OFF_ARRIVAL_NS, HOST_LITTLE_ENDIAN),
      message: copy(record, RECORD_OFF_MSG, MESSAGE_INITIATION_SIZE),
    },
  };
}

/** A copy the event owns (Buffer#slice would alias the record). */
function copy(record: Uint8Array, at: number, size: number): Uint8Array {
  return new Uint8Array(record.subarray(at, at + size));
}

