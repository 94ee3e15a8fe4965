import { describe, expect, it } from 'vitest';
import { parseRecord, RECORD_SIZE } from '../../src/capture/record.js';
import { formatAddress, formatIPv6, type IpEndpoint } from '../../src/net/address.js';
import { MESSAGE_INITIATION_SIZE } from '../../src/handshake/messages.js';

/* An endpoint as a person reads it. */
const text = (e: IpEndpoint) => ({ address: formatAddress(e.address), port: e.port });

/* Builds a record byte by byte from the layout in bpf/capture_record.h. */
function record(opts: { family: number; saddr: number[]; daddr: number[]; sport: number; dport: number; ifindex: number; ns: bigint }): Buffer {
  const b = Buffer.alloc(208);
  b.writeUInt32LE(opts.ifindex, 0);
  b[4] = opts.family;
  Buffer.from(opts.saddr).copy(b, 8);
  Buffer.from(opts.daddr).copy(b, 24);
  b.writeUInt16BE(opts.sport, 40);
  b.writeUInt16BE(opts.dport, 42);
  b.writeBigUInt64LE(opts.ns, 48);
  for (let i = 0; i < 148; i++) b[56 + i] = (i * 7 + 1) & 0xff;
  return b;
}

describe('parseRecord', () => {
  it('has the layout size of struct capture_record', () => {
    expect(RECORD_SIZE).toBe(208);
  });

  it('parses an IPv4 record', () => {
    const r = record({ family: 4, saddr: [10, 0, 0, 2], daddr: [192, 168, 1, 254], sport: 40000, dport: 51820, ifindex: 7, ns: 123456789012345n });
    const res = parseRecord(r);
    expect(res.ok).toBe(true);
    if (!res.ok) return;
    const e = res.event;
    expect(e.family).toBe(4);
    expect(e.ifindex).toBe(7);
    expect(text(e.src)).toEqual({ address: '10.0.0.2', port: 40000 });
    expect(text(e.dst)).toEqual({ address: '192.168.1.254', port: 51820 });
    expect(e.arrivalNs).toBe(123456789012345n);
    expect(e.message.length).toBe(MESSAGE_INITIATION_SIZE);
    expect(Buffer.from(e.message)).toEqual(r.subarray(56, 204));
  });

  it('copies the message: the event does not alias the record', () => {
    const r = record({ family: 4, saddr: [1, 2, 3, 4], daddr: [5, 6, 7, 8], sport: 1, dport: 2, ifindex: 1, ns: 1n });
    const res = parseRecord(r);
    if (!res.ok) throw new Error('expected ok');
    r.fill(0xee);
    expect(res.event.message[0]).toBe(1);
  });

  it('parses an IPv6 record with the canonical spelling', () => {
    const saddr = [0xfd, 0, 0, 0xa, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
    const daddr = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1];
    const r = record({ family: 6, saddr, daddr, sport: 65535, dport: 1, ifindex: 3, ns: 2n ** 63n });
    const res = parseRecord(r);
    if (!res.ok) throw new Error(res.error);
    expect(res.event.family).toBe(6);
    expect(text(res.event.src)).toEqual({ address: 'fd00:a::2', port: 65535 });
    expect(text(res.event.dst)).toEqual({ address: '2001:db8::1:0:0:1', port: 1 });
    expect(res.event.arrivalNs).toBe(2n ** 63n);
  });

  it('rejects wrong sizes and families without throwing', () => {
    const good = record({ family: 4, saddr: [1, 1, 1, 1], daddr: [2, 2, 2, 2], sport: 1, dport: 2, ifindex: 1, ns: 0n });
    expect(parseRecord(good.subarray(0, 207))).toEqual({ ok: false, error: 'wrong_size' });
    expect(parseRecord(Buffer.concat([good, Buffer.alloc(1)]))).toEqual({ ok: false, error: 'wrong_size' });
    expect(parseRecord(new Uint8Array(0))).toEqual({ ok: false, error: 'wrong_size' });
    const bad = Buffer.from(good);
    bad[4] = 5;
    expect(parseRecord(bad)).toEqual({ ok: false, error: 'bad_family' });
  });

  it('parses a record that sits at an offset inside a larger buffer', () => {
    const r = record({ family: 4, saddr: [9, 8, 7, 6], daddr: [1, 2, 3, 4], sport: 5, dport: 6, ifindex: 2, ns: 9n });
    const big = Buffer.alloc(300);
    r.copy(big, 13);
    const res = parseRecord(big.subarray(13, 13 + 208));
    if (!res.ok) throw new Error(res.error);
    expect(formatAddress(res.event.src.address)).toBe('9.8.7.6');
    expect(res.event.arrivalNs).toBe(9n);
  });
});

describe('formatIPv6', () => {
  const cases: Array<[string, number[]]> = [
    ['::', Array(16).fill(0)],
    ['::1', [...Array(15).fill(0), 1]],
    ['1::', [0, 1, ...Array(14).fill(0)]],
    ['::ffff:192.0.2.1', [...Array(10).fill(0), 0xff, 0xff, 192, 0, 2, 1]],
    // The first of two equally long zero runs is the one compressed.
    ['1:0:0:2::3', [0, 1, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 3]],
    // A single zero group is not compressed.
    ['1:0:2:3:4:5:6:7', [0, 1, 0, 0, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7]],
    ['fe80::abcd:ef', [0xfe, 0x80, ...Array(10).fill(0), 0xab, 0xcd, 0, 0xef]],
  ];
  it.each(cases)('%s', (text, bytes) => {
    expect(formatIPv6(Uint8Array.from(bytes))).toBe(text);
  });
});
