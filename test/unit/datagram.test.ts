import { describe, expect, it } from 'vitest';
import { buildDatagram } from '../../src/replay/datagram.js';
import { rawSend } from '../../src/capture/addon.js';
import { parseAddress as parseAddressResult, type IpAddress } from '../../src/net/address.js';
import type { CaptureEvent } from '../../src/capture/types.js';
import { MESSAGE_INITIATION_SIZE } from '../../src/handshake/messages.js';

/* The datagram's old parseAddress, now src/net/address.ts's parser: bytes of `family`, or a RangeError. */
function parseAddress(text: string, family: 4 | 6): Uint8Array {
  const r = parseAddressResult(text);
  if (!r.ok || r.address.family !== family) throw new RangeError(`not an IPv${family} address: ${text}`);
  return r.address.bytes;
}

/* Test input is written as people write addresses; no family check here, buildDatagram makes it. */
function ip(text: string): IpAddress {
  const r = parseAddressResult(text);
  if (!r.ok) throw new RangeError(r.message);
  return r.address;
}

/* An independent checksum: 32-bit accumulator over 16-bit words, folded. */
function sum16(chunks: Uint8Array[]): number {
  const all = Buffer.concat(chunks.map((c) => Buffer.from(c)));
  const padded = all.length % 2 ? Buffer.concat([all, Buffer.alloc(1)]) : all;
  let s = 0;
  for (let i = 0; i < padded.length; i += 2) s += padded.readUInt16BE(i);
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return s;
}

function message(seed: number): Uint8Array {
  const m = new Uint8Array(MESSAGE_INITIATION_SIZE);
  for (let i = 0; i < m.length; i++) m[i] = (i * 31 + seed) & 0xff;
  m[0] = 1;
  m[1] = m[2] = m[3] = 0;
  return m;
}

function event(family: 4 | 6, src: string, dst: string, sport: number, dport: number, seed = 3): CaptureEvent {
  return { ifindex: 1, family, src: { address: ip(src), port: sport }, dst: { address: ip(dst), port: dport }, arrivalNs: 0n, message: message(seed) };
}

describe('buildDatagram IPv4', () => {
  const e = event(4, '10.9.0.2', '10.9.0.1', 43210, 51820);
  const { family, packet } = buildDatagram(e);
  const b = Buffer.from(packet);

  it('has the right sizes and fields', () => {
    expect(family).toBe(4);
    expect(b.length).toBe(20 + 8 + 148);
    expect(b[0]).toBe(0x45);
    expect(b.readUInt16BE(2)).toBe(176);
    expect(b.readUInt16BE(6) & 0x4000).toBe(0x4000); // DF
    expect(b.readUInt16BE(6) & 0x3fff).toBe(0); // not a fragment
    expect(b[8]).toBe(64);
    expect(b[9]).toBe(17);
    expect([...b.subarray(12, 16)]).toEqual([10, 9, 0, 2]);
    expect([...b.subarray(16, 20)]).toEqual([10, 9, 0, 1]);
    expect(b.readUInt16BE(20)).toBe(43210);
    expect(b.readUInt16BE(22)).toBe(51820);
    expect(b.readUInt16BE(24)).toBe(156);
    expect(Buffer.from(b.subarray(28))).toEqual(Buffer.from(e.message));
  });

  it('has a valid IP header checksum', () => {
    expect(b.readUInt16BE(10)).not.toBe(0);
    expect(sum16([b.subarray(0, 20)])).toBe(0xffff);
  });

  it('has a valid UDP checksum over the pseudo-header', () => {
    const pseudo = Buffer.alloc(12);
    b.copy(pseudo, 0, 12, 20);
    pseudo[9] = 17;
    pseudo.writeUInt16BE(156, 10);
    expect(b.readUInt16BE(26)).not.toBe(0);
    expect(sum16([pseudo, b.subarray(20)])).toBe(0xffff);
  });

  it('changes the checksum when the source changes (it is not a constant)', () => {
    const other = Buffer.from(buildDatagram(event(4, '10.9.0.3', '10.9.0.1', 43210, 51820)).packet);
    expect(other.readUInt16BE(26)).not.toBe(b.readUInt16BE(26));
    expect(other.readUInt16BE(10)).not.toBe(b.readUInt16BE(10));
  });
});

describe('buildDatagram IPv6', () => {
  const e = event(6, 'fd00:9::2', 'fd00:9::1', 1024, 51820);
  const { family, packet } = buildDatagram(e);
  const b = Buffer.from(packet);

  it('has the right sizes and fields', () => {
    expect(family).toBe(6);
    expect(b.length).toBe(40 + 8 + 148);
    expect(b[0]! >> 4).toBe(6);
    expect(b.readUInt16BE(4)).toBe(156);
    expect(b[6]).toBe(17);
    expect(b[7]).toBe(64);
    expect(b.subarray(8, 24).toString('hex')).toBe('fd000009000000000000000000000002');
    expect(b.subarray(24, 40).toString('hex')).toBe('fd000009000000000000000000000001');
    expect(b.readUInt16BE(40)).toBe(1024);
    expect(b.readUInt16BE(42)).toBe(51820);
    expect(b.readUInt16BE(44)).toBe(156);
    expect(Buffer.from(b.subarray(48))).toEqual(Buffer.from(e.message));
  });

  it('has the mandatory UDP checksum, valid over the pseudo-header', () => {
    const pseudo = Buffer.alloc(40);
    b.copy(pseudo, 0, 8, 40);
    pseudo.writeUInt32BE(156, 32);
    pseudo[39] = 17;
    expect(b.readUInt16BE(46)).not.toBe(0);
    expect(sum16([pseudo, b.subarray(40)])).toBe(0xffff);
  });
});

describe('checksums over many inputs', () => {
  it('always verify', () => {
    for (let seed = 0; seed < 300; seed++) {
      const port = 1 + ((seed * 977) % 65535);
      for (const fam of [4, 6] as const) {
        const e = fam === 4 ? event(4, `10.1.${seed % 256}.7`, '10.1.0.1', port, 51820, seed) : event(6, `fd00::${seed.toString(16)}`, 'fd00::1', port, 51820, seed);
        const b = Buffer.from(buildDatagram(e).packet);
        const ipLen = fam === 4 ? 20 : 40;
        const pseudo = fam === 4 ? Buffer.alloc(12) : Buffer.alloc(40);
        if (fam === 4) {
          b.copy(pseudo, 0, 12, 20);
          pseudo[9] = 17;
          pseudo.writeUInt16BE(156, 10);
        } else {
          b.copy(pseudo, 0, 8, 40);
          pseudo.writeUInt32BE(156, 32);
          pseudo[39] = 17;
        }
        expect(b.readUInt16BE(ipLen + 6)).not.toBe(0);
        expect(sum16([pseudo, b.subarray(ipLen)])).toBe(0xffff);
      }
    }
  });
});

describe('a checksum that computes to zero', () => {
  it('is sent as 0xffff, which still verifies', () => {
    const e = event(4, '10.2.0.2', '10.2.0.1', 5000, 51820);
    e.message[146] = 0;
    e.message[147] = 0;
    const first = Buffer.from(buildDatagram(e).packet).readUInt16BE(26);
    // Adding the complement of the sum as one more word makes the sum 0xffff.
    e.message[146] = first >> 8;
    e.message[147] = first & 0xff;
    const b = Buffer.from(buildDatagram(e).packet);
    expect(b.readUInt16BE(26)).toBe(0xffff);
    const pseudo = Buffer.alloc(12);
    b.copy(pseudo, 0, 12, 20);
    pseudo[9] = 17;
    pseudo.writeUInt16BE(156, 10);
    expect(sum16([pseudo, b.subarray(20)])).toBe(0xffff);
  });
});

describe('bad input', () => {
  it('raw send takes the destination as the 4 or 16 bytes of its family, checked before the addon is called', () => {
    const packet = buildDatagram(event(4, '10.9.0.2', '10.9.0.1', 1, 2)).packet;
    expect(() => rawSend(4, packet, new Uint8Array(16))).toThrow(/4 bytes of an IPv4 address/);
    expect(() => rawSend(6, packet, new Uint8Array(4))).toThrow(/16 bytes of an IPv6 address/);
    expect(() => rawSend(4, packet, '10.9.0.1' as never)).toThrow(RangeError);
  });

  it('rejects an address of the other family', () => {
    expect(() => buildDatagram(event(4, 'fd00::2', '10.0.0.1', 1, 2))).toThrow(RangeError);
    expect(() => buildDatagram(event(6, '10.0.0.2', 'fd00::1', 1, 2))).toThrow(RangeError);
  });
});

describe('parseAddress', () => {
  const cases: Array<[string, string]> = [
    ['::', '00000000000000000000000000000000'],
    ['::1', '00000000000000000000000000000001'],
    ['fd00:a::2', 'fd00000a000000000000000000000002'],
    ['1:2:3:4:5:6:7:8', '00010002000300040005000600070008'],
    ['::ffff:192.0.2.1', '00000000000000000000ffffc0000201'],
    ['::192.0.2.1', '000000000000000000000000c0000201'],
    ['1::192.0.2.1', '000100000000000000000000c0000201'],
    ['1:2:3:4:5:6:192.0.2.1', '000100020003000400050006c0000201'],
    ['FE80::AbC', 'fe800000000000000000000000000abc'],
  ];
  it.each(cases)('%s', (text, hex) => {
    expect(Buffer.from(parseAddress(text, 6)).toString('hex')).toBe(hex);
  });
  it('rejects zone ids and junk', () => {
    expect(() => parseAddress('fe80::1%eth0', 6)).toThrow(RangeError);
    expect(() => parseAddress('1.2.3', 4)).toThrow(RangeError);
  });
});
