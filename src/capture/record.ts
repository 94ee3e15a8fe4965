/**
 * The ring-buffer record written by bpf/xdp_capture.bpf.c (struct
 * capture_record in bpf/capture_record.h), turned into a CaptureEvent.
 * Records come from the kernel but their contents come from the network:
 * a record that does not fit the layout is reported, never thrown.
 */
import { endianness } from 'node:os';
import { MESSAGE_INITIATION_SIZE } from '../handshake/messages.js';
import type { CaptureEvent } from './types.js';
import { compressIPv6Groups } from '../net/ipv6.js';

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
export const RECORD_ADDR_SIZE = 16;
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
  const format = family === RECORD_FAMILY_IPV4 ? formatIPv4 : formatIPv6;
  const saddr = record.subarray(RECORD_OFF_SADDR, RECORD_OFF_SADDR + RECORD_ADDR_SIZE);
  const daddr = record.subarray(RECORD_OFF_DADDR, RECORD_OFF_DADDR + RECORD_ADDR_SIZE);
  return {
    ok: true,
    event: {
      ifindex: view.getUint32(RECORD_OFF_IFINDEX, HOST_LITTLE_ENDIAN),
      family,
      src: { address: format(saddr), port: view.getUint16(RECORD_OFF_SPORT, false) },
      dst: { address: format(daddr), port: view.getUint16(RECORD_OFF_DPORT, false) },
      arrivalNs: view.getBigUint64(RECORD_OFF_ARRIVAL_NS, HOST_LITTLE_ENDIAN),
      // A copy the event owns (Buffer#slice would alias the record).
      message: new Uint8Array(record.subarray(RECORD_OFF_MSG, RECORD_OFF_MSG + MESSAGE_INITIATION_SIZE)),
    },
  };
}

/** Dotted quad of the first 4 bytes. */
export function formatIPv4(addr: Uint8Array): string {
  return `${addr[0]}.${addr[1]}.${addr[2]}.${addr[3]}`;
}

/**
 * RFC 5952 text of 16 bytes: lowercase, no leading zeros, the longest run
 * (first on a tie) of two or more zero groups as "::", and IPv4-mapped
 * addresses as ::ffff:a.b.c.d — the same spelling Node's sockets report.
 */
export function formatIPv6(addr: Uint8Array): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((addr[i]! << 8) | addr[i + 1]!);
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return `::ffff:${formatIPv4(addr.subarray(12, 16))}`;
  }
  return compressIPv6Groups(groups);
}
