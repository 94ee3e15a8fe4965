import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { canonicalCidr, formatIPv6, MAX_CIDR_TEXT_LENGTH, parseCanonicalIPv4Cidr, parseCidr } from '../../src/net/cidr.js';

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
        const text = `${formatIPv6(network)}/${prefix}`;
        const r = parseCidr(text);
        expect(r.ok && r.cidr.address === network && r.cidr.text === text).toBe(true);
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

describe('parseCanonicalIPv4Cidr (the install fast path)', () => {
  it('agrees with parseCidr wherever it answers, and answers for every canonical IPv4 CIDR', () => {
    const octet = fc.oneof(fc.integer({ min: 0, max: 300 }).map(String), fc.constantFrom('00', '01', '010', '256', ''));
    const text = fc.tuple(octet, octet, octet, octet, fc.oneof(fc.integer({ min: 0, max: 40 }).map(String), fc.constantFrom('', '08', 'x'))).map(([a, b, c, d, p]) => `${a}.${b}.${c}.${d}/${p}`);
    fc.assert(
      fc.property(text, (t) => {
        const fast = parseCanonicalIPv4Cidr(t);
        const slow = parseCidr(t);
        if (fast !== null) {
          expect(slow.ok).toBe(true);
          if (slow.ok) expect({ address: BigInt(fast.address), prefix: fast.prefix, text: t }).toEqual({ address: slow.cidr.address, prefix: slow.cidr.prefix, text: slow.cidr.text });
        } else if (slow.ok && slow.cidr.family === 4) {
          expect(slow.cidr.text).not.toBe(t); // only non-canonical spellings fall through
        }
      }),
      { numRuns: 5000 },
    );
    expect(parseCanonicalIPv4Cidr('0.0.0.0/0')).toEqual({ address: 0, prefix: 0 });
    expect(parseCanonicalIPv4Cidr('255.255.255.255/32')).toEqual({ address: 0xffffffff, prefix: 32 });
    expect(parseCanonicalIPv4Cidr('128.0.0.0/1')).toEqual({ address: 0x80000000, prefix: 1 });
    expect(parseCanonicalIPv4Cidr('10.0.0.1/24')).toBeNull();
    expect(parseCanonicalIPv4Cidr('fd00::/8')).toBeNull();
  });
});
