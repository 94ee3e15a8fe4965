/**
 * src/net/address.ts: the one parser and formatter of IP addresses, and the
 * one interface-name rule (src/net/ifname.ts).
 */
import { isIPv4, isIPv6 } from 'node:net';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { formatAddress, formatIPv6, ipv4At, ipv6At, isIPv6At, parseAddress } from '../../src/net/address.js';
import { IFNAME_RULE, isValidIfname, MAX_IFNAME_LENGTH } from '../../src/net/ifname.js';

const nearlyAddress = fc.oneof(
  fc.stringMatching(/^[0-9./:xa-fA-F%]{0,24}$/),
  fc.ipV4(),
  fc.ipV6(),
  fc.ipV6().map((a) => a.toUpperCase()),
  fc.tuple(fc.ipV6(), fc.ipV4()).map(([a, b]) => `${a.slice(0, a.lastIndexOf(':') + 1)}${b}`),
);

describe('parseAddress', () => {
  it('takes what node:net takes (IPv6 less zone ids), read anywhere in a longer text', () => {
    fc.assert(
      fc.property(nearlyAddress, fc.string({ maxLength: 4 }), (a, pad) => {
        const [from, to, text] = [pad.length, pad.length + a.length, `${pad}${a}${pad}`];
        expect(ipv4At(text, from, to)).toBe(isIPv4(a));
        expect(isIPv6At(text, from, to)).toBe(isIPv6(a) && !a.includes('%'));
      }),
      { numRuns: 5_000 },
    );
  });

  it('gives the bytes node:net would send, and formatting them back is the canonical text', () => {
    fc.assert(
      fc.property(fc.ipV6(), (a) => {
        const r = parseAddress(a);
        if (!r.ok) throw new Error(r.message);
        const canonical = new URL(`http://[${a}]/`).hostname.slice(1, -1); // WHATWG's RFC 5952 serializer
        const back = parseAddress(formatAddress(r.address));
        expect(back.ok && Buffer.from(back.address.bytes).equals(Buffer.from(r.address.bytes))).toBe(true);
        expect(formatIPv6(r.address.bytes, 0, false)).toBe(canonical);
      }),
      { numRuns: 2_000 },
    );
  });

  it('writes in place at an offset, leaving the rest alone', () => {
    const out = new Uint8Array(20).fill(0xee);
    expect(ipv6At('x[fd00::1]', 2, 9, out, 2)).toBe(true);
    expect(Buffer.from(out).toString('hex')).toBe(`eeee${'fd00'}${'00'.repeat(13)}01eeee`);
  });

  it('says why, as the CIDR messages do', () => {
    const message = (text: string) => {
      const r = parseAddress(text);
      return r.ok ? '' : r.message;
    };
    expect(message('10.0.0')).toMatch(/four numbers/);
    expect(message('10.0.0.01')).toMatch(/bad part '01'/);
    expect(message('10.0.0.256')).toMatch(/256 is more than 255/);
    expect(message('fe80::1%eth0')).toMatch(/zone ids/);
    expect(message('1::2::3')).toMatch(/only once/);
    expect(message('::1.2.3')).toMatch(/embedded IPv4/);
  });

  it('formats IPv4 as a dotted quad and IPv6 per RFC 5952', () => {
    expect(formatAddress({ family: 4, bytes: Uint8Array.of(192, 0, 2, 1) })).toBe('192.0.2.1');
    expect(formatAddress({ family: 6, bytes: Uint8Array.of(0x20, 1, 0xd, 0xb8, ...Array(11).fill(0), 1) })).toBe('2001:db8::1');
    const mapped = Uint8Array.of(...Array(10).fill(0), 0xff, 0xff, 192, 0, 2, 1);
    expect(formatIPv6(mapped)).toBe('::ffff:192.0.2.1');
    expect(formatIPv6(mapped, 0, false)).toBe('::ffff:c000:201');
  });
});

describe('isValidIfname', () => {
  it.each(['wg0', 'eth0', 'veth-a.1', 'a_b', 'x'.repeat(MAX_IFNAME_LENGTH)])('takes %s', (name) => {
    expect(isValidIfname(name)).toBe(true);
  });
  it.each(['', '.', '..', 'x'.repeat(MAX_IFNAME_LENGTH + 1), 'wg0/../x', '../etc/x', 'a b', 'a:b', 'wg@0', 'wg\n0', 'wg\0'])('refuses %j', (name) => {
    expect(isValidIfname(name)).toBe(false);
  });
  it('refuses what is not a string, and spells its rule', () => {
    for (const v of [undefined, null, 0, ['wg0']]) expect(isValidIfname(v)).toBe(false);
    expect(IFNAME_RULE).toBe('1-15 of A-Z a-z 0-9 _ . -');
  });
});
