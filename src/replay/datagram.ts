/**
 * Rebuilds the IP packet a captured initiation arrived in, for re-injection
 * through a raw socket: original source address and port, fresh headers,
 * and checksums computed here. The captured frame's own UDP checksum cannot
 * be reused: on a veth it is only a partial (offload) checksum, and the
 * stack drops such packets when they come back in (TESTBED "checksum trap").
 */
import type { CaptureEvent } from '../capture/types.js';
import { bytesForFamily, type IpAddress } from '../net/address.js';

export const IPV4_HEADER_SIZE = 20;
export const IPV6_HEADER_SIZE = 40;
export const UDP_HEADER_SIZE = 8;
export const IPPROTO_UDP = 17;
export const DEFAULT_TTL = 64;
const IPV4_VERSION_IHL = 0x45; // version 4, 5 words: no options
const IPV4_FLAG_DF = 0x4000;
const IPV6_VERSION_WORD = 0x60000000; // version 6, traffic class 0, flow label 0
const MAX_IP_PAYLOAD = 0xffff;

export interface Datagram {
  family: 4 | 6;
  packet: Uint8Array;
}

/** The IPv4 or IPv6 packet carrying event.message from event.src to event.dst. */
export function buildDatagram(event: CaptureEvent): Datagram {
  const udpLength = UDP_HEADER_SIZE + event.message.length;
  const src = addressBytes(event.src.address, event.family);
  const dst = addressBytes(event.dst.address, event.family);
  checkPort(event.src.port);
  checkPort(event.dst.port);
  const ipHeaderSize = event.family === 4 ? IPV4_HEADER_SIZE : IPV6_HEADER_SIZE;
  if (udpLength + (event.family === 4 ? ipHeaderSize : 0) > MAX_IP_PAYLOAD) throw new RangeError('message too long for one datagram');

  const packet = new Uint8Array(ipHeaderSize + udpLength);
  const view = new DataView(packet.buffer);
  if (event.family === 4) {
    view.setUint8(0, IPV4_VERSION_IHL);
    view.setUint16(2, packet.length);
    view.setUint16(6, IPV4_FLAG_DF);
    view.setUint8(8, DEFAULT_TTL);
    view.setUint8(9, IPPROTO_UDP);
    packet.set(src, 12);
    packet.set(dst, 16);
    view.setUint16(10, finish(onesSum(packet.subarray(0, IPV4_HEADER_SIZE))));
  } else {
    view.setUint32(0, IPV6_VERSION_WORD);
    view.setUint16(4, udpLength);
    view.setUint8(6, IPPROTO_UDP);
    view.setUint8(7, DEFAULT_TTL);
    packet.set(src, 8);
    packet.set(dst, 24);
  }

  const udp = packet.subarray(ipHeaderSize);
  const udpView = new DataView(packet.buffer, ipHeaderSize);
  udpView.setUint16(0, event.src.port);
  udpView.setUint16(2, event.dst.port);
  udpView.setUint16(4, udpLength);
  udp.set(event.message, UDP_HEADER_SIZE);
  const pseudo = pseudoHeaderSum(src, dst, udpLength);
  // 0 means "no checksum" on the wire (and is forbidden for IPv6): send its
  // ones'-complement twin instead.
  udpView.setUint16(6, finish(pseudo + onesSum(udp)) || 0xffff);
  return { family: event.family, packet };
}

/** Sum of the 16-bit big-endian words (odd tail padded with zero), not yet folded. */
export function onesSum(bytes: Uint8Array): number {
  let sum = 0;
  const even = bytes.length & ~1;
  for (let i = 0; i < even; i += 2) sum += (bytes[i]! << 8) | bytes[i + 1]!;
  if (even !== bytes.length) sum += bytes[even]! << 8;
  return sum;
}

/** Folds the carries and complements: the checksum field's value. */
export function finish(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return ~sum & 0xffff;
}

/* RFC 768 (IPv4) and RFC 8200 §8.1 (IPv6) pseudo-headers sum to the same words. */
function pseudoHeaderSum(src: Uint8Array, dst: Uint8Array, udpLength: number): number {
  return onesSum(src) + onesSum(dst) + IPPROTO_UDP + udpLength;
}

function checkPort(port: number): void {
  if (!Number.isInteger(port) || port < 0 || port > 0xffff) throw new RangeError(`bad port ${port}`);
}

/** The address's bytes; throws if it is not of `family`. */
function addressBytes(address: IpAddress, family: 4 | 6): Uint8Array {
  if (address.family !== family || address.bytes.length !== bytesForFamily(family)) {
    throw new RangeError(`not an IPv${family} address (IPv${address.family}, ${address.bytes.length} bytes)`);
  }
  return address.bytes;
}
