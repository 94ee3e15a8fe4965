import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { formatIPv6 } from '../../src/net/address.js';
import { hostBitsZero, MAX_CIDR_TEXT_LENGTH, parseCidr } from '../../src/net/cidr.js';

function canonicalCidr(input: unknown): string | null {
  const r = parseCidr(input);
  return r.ok ? r.cidr.text : null;
}

function valueOf(bytes: Uint8Array): bigint {
  let value = 0n;
  for (const b of bytes) value = (value << 8n) | BigInt(b);
  return value;
}

function bytesOf(value: bigint, size: number): Uint8Array {
  const out = new Uint8Array(size);
  for (let i = size - 1; i >= 0; i--, value >>= 8n) out[i] = Number(value & 0xffn);
  return out;
}

function message(input: unknown): string {
  const r = parseCidr(input);
  if (r.ok) throw new Error(`expected ${String(input)} to be rejected`);
  return r.message;
}

describe('parseCidr: IPv4', () => {
  it.each([
    ['10.0.0.1/32', '10.0.0.1/32'],
    ['10.0.0.1', '10.0.0.1/32'],
    ['10.0.0.0/24', '10.0.0.0/24'],
    ['0.0.0.0/0', '0.0.0.0/0'],
    ['255.255.255.255', '255.255.255.255/32'],
    [' 192.168.1.0/24 ', '192.168.1.0/24'],
  ])('%s → %s', (input, want) => {
    expect(canonicalCidr(input)).toBe(want);
  });

  it('rejects host bits and suggests both readings', () => {
    expect(message('10.0.0.1/24')).toBe('10.0.0.1/24 has host bits set; did you mean 10.0.0.0/24 (the network) or 10.0.0.1/32 (one host)?');
  });

  it.each([
    ['10.0.0.1/33', /prefix length 33 is more than 32/],
    ['10.0.0.256', /256 is more than 255/],
    ['10.0.0', /four numbers/],
    ['10.0.0.01', /bad part '01'/],
    ['10.0.0.1/', /prefix length '' is not a number/],
    ['10.0.0.1/-1', /prefix length '-1'/],
    ['10.0.0.1/08', /prefix length '08'/],
    ['10.0.0.1/8/8', /more than one '\/'/],
    ['', /empty/],
    ['a.b.c.d', /bad part 'a'/],
  ])('rejects %s', (input, re) => {
    expect(message(input)).toMatch(re);
  });

  it('rejects non-strings and overlong text without throwing', () => {
    for (const v of [undefined, null, 42, {}, ['10.0.0.1/32']]) expect(parseCidr(v).ok).toBe(false);
    expect(message('1'.repeat(MAX_CIDR_TEXT_LENGTH + 1))).toMatch(/too long/);
  });
});

describe('parseCidr: IPv6', () => {
  it.each([
    ['fd00::/64', 'fd00::/64'],
    ['FD00:0:0:0::/64', 'fd00::/64'],
    ['fd00::1', 'fd00::1/128'],
    ['::/0', '::/0'],
    ['::1', '::1/128'],
    ['2001:db8:0:0:1:0:0:1/128', '2001:db8::1:0:0:1/128'], // first of two equal runs
    ['2001:0db8:0000:0000:0000:ff00:0042:8329', '2001:db8::ff00:42:8329/128'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1/128'], // a single zero group is not compressed
    ['::ffff:192.0.2.1', '::ffff:c000:201/128'],
    ['::192.0.2.1', '::c000:201/128'],
    ['1:2:3:4:5:6:192.0.2.1', '1:2:3:4:5:6:c000:201/128'],
    ['fe80::/10', 'fe80::/10'],
    ['1:2:3:4:5:6:7::', '1:2:3:4:5:6:7:0/128'],
  ])('%s → %s', (input, want) => {
    expect(canonicalCidr(input)).toBe(want);
  });

  it.each([
    ['fe80::1%eth0', /zone ids/],
    ['fd00::1/64', /has host bits set; did you mean fd00::\/64 \(the network\) or fd00::1\/128/],
    ['fd00::/129', /more than 128/],
    ['1::2::3', /only once/],
    ['1:2:3:4:5:6:7:8:9', /expected 8 groups/],
    ['1:2:3:4:5:6:7', /expected 8 groups/],
    ['1:2:3:4:5:6:7:8::', /at least one group/],
    ['12345::', /bad group '12345'/],
    ['g::', /bad group 'g'/],
    [':1:2:3:4:5:6:7', /bad group ''/],
    ['::1.2.3', /embedded IPv4/],
    ['1:2:3:4:5:6:7:1.2.3.4', /expected 8 groups/],
  ])('rejects %s', (input, re) => {
    expect(message(input)).toMatch(re);
  });
});

describe('parseCidr: properties', () => {
  const v6 = fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 8, maxLength: 8 });

  it('canonical IPv6 text parses back to the same value and is a fixed point', () => {
    fc.assert(
      fc.property(v6, fc.integer({ min: 0, max: 128 }), (groups, prefix) => {
        let value = 0n;
        for (const g of groups) value = (value << 16n) | BigInt(g);
        const host = BigInt(128 - prefix);
        const network = (value >> host) << host;
        const text = `${formatIPv6(bytesOf(network, 16), 0, false)}/${prefix}`;
        const r = parseCidr(text);
        expect(r.ok && valueOf(r.cidr.bytes) === network && r.cidr.prefix === prefix && r.cidr.text === text).toBe(true);
        // The uncompressed spelling canonicalizes to the same text.
        const full = [7, 6, 5, 4, 3, 2, 1, 0].map((i) => ((network >> BigInt(i * 16)) & 0xffffn).toString(16).padStart(4, '0')).join(':');
        expect(canonicalCidr(`${full}/${prefix}`)).toBe(text);
      }),
    );
  });

  it('never throws on arbitrary strings', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 80 }), (s) => {
        parseCidr(s);
      }),
    );
    fc.assert(
      fc.property(fc.stringMatching(/^[0-9a-f:.\/]{0,50}$/), (s) => {
        const r = parseCidr(s);
        if (r.ok) expect(parseCidr(r.cidr.text)).toEqual(r);
      }),
    );
  });
});

describe('parseCidr: the bytes agree with the text', () => {
  it('an IPv4 network parses to its four bytes and prefix, host bits zero', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 4, maxLength: 4 }), fc.integer({ min: 0, max: 32 }), (raw, prefix) => {
        const host = BigInt(32 - prefix);
        const network = (valueOf(raw) >> host) << host;
        const bytes = bytesOf(network, 4);
        const r = parseCidr(`${bytes.join('.')}/${prefix}`);
        expect(r.ok && r.cidr.family === 4 && r.cidr.prefix === prefix && Buffer.from(r.cidr.bytes).equals(Buffer.from(bytes))).toBe(true);
        expect(hostBitsZero(bytes, prefix)).toBe(true);
        // Any host bit set is refused, and seen by hostBitsZero.
        if (prefix < 32) {
          const withHost = bytes.slice();
          withHost[3] = withHost[3]! | 1;
          expect(hostBitsZero(withHost, prefix)).toBe(false);
          expect(parseCidr(`${withHost.join('.')}/${prefix}`).ok).toBe(false);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
