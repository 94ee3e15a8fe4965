/**
 * What a write refuses beyond the form of its fields (src/authorize/peer.ts):
 * keys no client can hold, allowed IPs in reserved ranges or over a
 * gateway's own addresses, dates that do not exist; and the CIDR tests they
 * rest on (src/net/cidr.ts, src/net/reserved.ts).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { cidr } from '../../harness/cidr.js';
import { generatePrivateKey } from '../../harness/noise/keys.js';
import { applyPatch, decodeLegacyRecord, gatewayConflict, MAX_NAME_LENGTH, publicView, validateCreate, validatePatch, type GatewaySelf } from '../../src/authorize/peer.js';
import { formatKey, publicKeyOf } from '../../src/handshake/keys.js';
import { parseAddress, type IpAddress } from '../../src/net/address.js';
import { cidrContains, cidrsOverlap } from '../../src/net/cidr.js';
import { RESERVED_RANGES, reservedRangeProblem } from '../../src/net/reserved.js';

const NOW = new Date('2030-01-01T00:00:00.000Z');
const key = () => formatKey(publicKeyOf(generatePrivateKey()));
const PK = key();

function address(text: string): IpAddress {
  const r = parseAddress(text);
  if (!r.ok) throw new Error(r.message);
  return r.address;
}

function createError(input: Record<string, unknown>, selves: GatewaySelf[] = []): string {
  const r = validateCreate({ publicKey: PK, allowedIPs: ['10.0.0.2/32'], ...input }, NOW, selves);
  if (r.ok) throw new Error(`expected a refusal of ${JSON.stringify(input)}`);
  return r.message;
}

function patchError(input: Record<string, unknown>, selves: GatewaySelf[] = []): string {
  const r = validatePatch(input, selves);
  if (r.ok) throw new Error(`expected a refusal of ${JSON.stringify(input)}`);
  return r.message;
}

describe('CIDR containment and overlap', () => {
  it.each([
    ['10.0.0.0/8', '10.255.0.1', true],
    ['10.0.0.0/8', '11.0.0.1', false],
    ['10.0.0.1/32', '10.0.0.1', true],
    ['10.0.0.1/32', '10.0.0.2', false],
    ['10.0.0.0/23', '10.0.1.255', true],
    ['10.0.0.0/23', '10.0.2.0', false],
    ['0.0.0.0/0', '203.0.113.9', true],
    ['fd00::/64', 'fd00::1', true],
    ['fd00::/64', 'fd00:0:0:1::1', false],
    ['fc00::/7', 'fdff::1', true],
    ['fd00::/64', '10.0.0.1', false],
    ['::/0', '10.0.0.1', false],
  ])('%s contains %s: %s', (net, addr, expected) => {
    expect(cidrContains(cidr(net), address(addr).bytes)).toBe(expected);
  });

  it('overlap is containment either way, never across families', () => {
    expect(cidrsOverlap(cidr('10.0.0.0/8'), cidr('10.1.0.0/16'))).toBe(true);
    expect(cidrsOverlap(cidr('10.1.0.0/16'), cidr('10.0.0.0/8'))).toBe(true);
    expect(cidrsOverlap(cidr('10.1.0.0/16'), cidr('10.2.0.0/16'))).toBe(false);
    expect(cidrsOverlap(cidr('0.0.0.0/0'), cidr('::/0'))).toBe(false);
  });

  it('a network contains an address exactly when their /32 or /128 overlaps it (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 4, maxLength: 4 }), fc.uint8Array({ minLength: 4, maxLength: 4 }), fc.integer({ min: 0, max: 32 }), (net, addr, prefix) => {
        const n = net.map((b, i) => (i * 8 >= prefix ? 0 : i * 8 + 8 <= prefix ? b : b & ((0xff << (8 - (prefix - i * 8))) & 0xff)));
        const c = cidr(`${n.join('.')}/${prefix}`);
        const host = cidr(`${addr.join('.')}/32`);
        expect(cidrContains(c, addr)).toBe(cidrsOverlap(c, host));
        // Containment by arithmetic on the 32-bit numbers.
        const num = (b: Uint8Array) => ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
        const expected = prefix === 0 || num(n) >>> (32 - prefix) === num(addr) >>> (32 - prefix);
        expect(cidrContains(c, addr)).toBe(expected);
      }),
    );
  });
});

describe('reserved ranges', () => {
  it.each([
    ['127.0.0.1/32', 'is loopback (127.0.0.0/8)'],
    ['127.0.0.0/8', 'is loopback (127.0.0.0/8)'],
    ['127.128.0.0/9', 'is loopback (127.0.0.0/8)'],
    ['126.0.0.0/7', 'overlaps loopback (127.0.0.0/8)'],
    ['::1/128', 'is loopback (::1/128)'],
    ['224.0.0.251/32', 'is multicast (224.0.0.0/4)'],
    ['239.255.255.250/32', 'is multicast (224.0.0.0/4)'],
    ['192.0.0.0/2', 'overlaps multicast (224.0.0.0/4)'],
    ['ff02::1/128', 'is multicast (ff00::/8)'],
    ['169.254.169.254/32', 'is link-local (169.254.0.0/16)'],
    ['169.0.0.0/8', 'overlaps link-local (169.254.0.0/16)'],
    ['fe80::1/128', 'is link-local (fe80::/10)'],
    ['febf::/16', 'is link-local (fe80::/10)'],
    ['0.0.0.0/32', 'is the unspecified address (0.0.0.0/32)'],
    ['0.0.0.0/8', 'overlaps the unspecified address (0.0.0.0/32)'],
    ['::/128', 'is the unspecified address (::/128)'],
    ['::/96', 'overlaps the unspecified address (::/128)'],
  ])('%s %s', (text, problem) => {
    expect(reservedRangeProblem(cidr(text))).toBe(problem);
  });

  it.each(['0.0.0.0/0', '::/0', '10.0.0.0/8', '192.168.1.7/32', '100.64.0.0/10', '126.255.255.255/32', '128.0.0.0/32', '223.255.255.255/32', '240.0.0.0/32', '169.253.255.255/32', '169.255.0.0/16', 'fd00::/8', '2001:db8::/32', 'fec0::/10', 'fe7f::/16', '::2/128', '::ffff:10.0.0.1/128'])(
    '%s is no reserved range',
    (text) => {
      expect(reservedRangeProblem(cidr(text))).toBeNull();
    },
  );

  it('every range refuses its first and last address, and the default routes stay allowed', () => {
    for (const r of RESERVED_RANGES) {
      const bits = r.cidr.bytes.length * 8;
      const last = Uint8Array.from(r.cidr.bytes, (b, i) => b | (0xff >> Math.min(8, Math.max(0, r.cidr.prefix - i * 8))));
      expect(reservedRangeProblem(cidr(`${r.cidr.text.split('/')[0]}/${bits}`))).toContain(r.what);
      expect(cidrContains(r.cidr, last)).toBe(true);
    }
  });
});

describe('keys no client can hold', () => {
  it.each([
    ['AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=', /^publicKey: AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= is all zeros/],
    ['AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=', /^publicKey: .* is a low-order Curve25519 point \(u = 1, order 4\)/],
    ['X5yVvKNQjCSx0LFVnIPvWwREXMRYHI6G2CJO3dCfEVc=', /is a low-order Curve25519 point \(order 8\)/],
    // base64url in, wg's spelling in the message
    ['4Ot6fDtBuK4WVuP68Z_EatoJjeucMrH9hmIFFl9JuAA=', /^publicKey: 4Ot6fDtBuK4WVuP68Z\/EatoJjeucMrH9hmIFFl9JuAA= is a low-order Curve25519 point \(order 8\)/],
    ['7f///////////////////////////////////////38=', /\(u = p, which is 0\)/],
    ['7f////////////////////////////////////////8=', /\(u = p, which is 0, top bit set\)/],
  ])('%s', (publicKey, re) => {
    expect(createError({ publicKey })).toMatch(re);
  });
});

describe('allowed IPs', () => {
  it('refuses a reserved range in a create and a PATCH, naming the entry', () => {
    expect(createError({ allowedIPs: ['10.0.0.2/32', '127.0.0.1/32'] })).toBe('allowedIPs[1]: 127.0.0.1/32 is loopback (127.0.0.0/8)');
    expect(patchError({ allowedIPs: ['fe80::1'] })).toBe('allowedIPs[0]: fe80::1/128 is link-local (fe80::/10)');
    expect(patchError({ allowedIPs: ['10.0.0.2/32', '224.0.0.0/3'] })).toBe('allowedIPs[1]: 224.0.0.0/3 overlaps multicast (224.0.0.0/4)');
  });

  it('keeps the default routes as they were', () => {
    expect(validateCreate({ publicKey: PK, allowedIPs: ['0.0.0.0/0', '::/0'] }, NOW).ok).toBe(true);
    expect(validatePatch({ allowedIPs: ['0.0.0.0/0'] }).ok).toBe(true);
  });

  it('a record of an earlier release keeps what it held (the migration refuses nothing new)', () => {
    const legacy = { publicKey: PK, allowedIPs: ['127.0.0.1/32'], disabled: false, createdAt: NOW.toISOString(), updatedAt: NOW.toISOString() };
    expect(decodeLegacyRecord(JSON.stringify(legacy))?.record.allowedIPs).toEqual(['127.0.0.1/32']);
  });
});

describe("a gateway's own key and addresses", () => {
  const g1: GatewaySelf = { gateway: 'g1', interface: 'wg0', publicKey: key(), addresses: [address('10.0.0.1'), address('fd00::1')] };
  const g2: GatewaySelf = { gateway: 'g2', interface: 'wg1', publicKey: key(), addresses: [address('10.9.0.1')] };
  const fleet = [g1, g2];

  it("refuses a gateway's public key as a peer's", () => {
    expect(createError({ publicKey: g2.publicKey }, fleet)).toBe(`publicKey: ${g2.publicKey} is the public key of gateway g2's interface wg1: a gateway cannot be its own peer`);
    expect(validateCreate({ publicKey: g2.publicKey, allowedIPs: ['10.0.0.2/32'] }, NOW, [g1]).ok).toBe(true);
  });

  it("refuses an allowed IP that contains a gateway's address, in a create and a PATCH", () => {
    expect(createError({ allowedIPs: ['10.0.0.2/32', '10.0.0.1/32'] }, fleet)).toBe("allowedIPs[1]: 10.0.0.1/32 contains 10.0.0.1, an address of gateway g1's interface wg0");
    expect(createError({ allowedIPs: ['10.0.0.0/24'] }, fleet)).toBe("allowedIPs[0]: 10.0.0.0/24 contains 10.0.0.1, an address of gateway g1's interface wg0");
    expect(patchError({ allowedIPs: ['fd00::/64'] }, fleet)).toBe("allowedIPs[0]: fd00::/64 contains fd00::1, an address of gateway g1's interface wg0");
    expect(patchError({ allowedIPs: ['10.9.0.0/16'] }, fleet)).toMatch(/an address of gateway g2's interface wg1$/);
  });

  it('takes the addresses beside them, and the default routes', () => {
    expect(validateCreate({ publicKey: PK, allowedIPs: ['10.0.0.2/32', '10.0.0.0/32', 'fd00::2/128', '10.9.1.0/24'] }, NOW, fleet).ok).toBe(true);
    expect(validatePatch({ allowedIPs: ['0.0.0.0/0', '::/0'] }, fleet).ok).toBe(true);
  });

  it('gatewayConflict: the same rules on values already checked (what the API runs once the store lists the gateways)', () => {
    expect(gatewayConflict(g1.publicKey, [cidr('10.5.0.0/16')], fleet)).toEqual({ ok: false, field: 'publicKey', message: `publicKey: ${g1.publicKey} is the public key of gateway g1's interface wg0: a gateway cannot be its own peer` });
    expect(gatewayConflict(null, [cidr('10.5.0.0/16'), cidr('10.9.0.1/32')], fleet)).toEqual({ ok: false, field: 'allowedIPs[1]', message: "allowedIPs[1]: 10.9.0.1/32 contains 10.9.0.1, an address of gateway g2's interface wg1" });
    expect(gatewayConflict(PK, [cidr('0.0.0.0/0'), cidr('10.5.0.0/16')], fleet)).toBeNull();
    expect(gatewayConflict(g1.publicKey, [cidr('10.0.0.0/8')], [])).toBeNull();
  });

  it('a gateway whose key is unknown refuses no key', () => {
    expect(validateCreate({ publicKey: PK, allowedIPs: ['10.0.0.2/32'] }, NOW, [{ ...g1, publicKey: null }]).ok).toBe(true);
  });
});

describe('expiresAt: dates that exist', () => {
  it.each([
    ['2030-02-30', 'expiresAt: 2030-02-30 is not a date (2030-02 has 28 days)'],
    ['2030-02-30T00:00:00Z', 'expiresAt: 2030-02-30 is not a date (2030-02 has 28 days)'],
    ['2030-02-29T12:00:00+02:00', 'expiresAt: 2030-02-29 is not a date (2030-02 has 28 days)'],
    ['2100-02-29T00:00:00Z', 'expiresAt: 2100-02-29 is not a date (2100-02 has 28 days)'],
    ['2030-04-31T00:00Z', 'expiresAt: 2030-04-31 is not a date (2030-04 has 30 days)'],
    ['2030-00-10T00:00:00Z', 'expiresAt: 2030-00-10 is not a date (month 0 is not 1 to 12)'],
    ['2030-01-00T00:00:00Z', 'expiresAt: 2030-01-00 is not a date (2030-01 has 31 days)'],
    ['2030-01-32T00:00:00Z', 'expiresAt: 2030-01-32 is not a date (2030-01 has 31 days)'],
    ['2030-01-01T24:00:00Z', 'expiresAt: 24:00:00 is not a time of day'],
    ['2030-01-01T23:60Z', 'expiresAt: 23:60 is not a time of day'],
    ['2030-01-01T00:00:60Z', 'expiresAt: 00:00:60 is not a time of day'],
    ['2030-01-01T00:00:00+24:00', 'expiresAt: +24:00 is not a time zone offset'],
    ['2030-01-01T00:00:00-01:60', 'expiresAt: -01:60 is not a time zone offset'],
  ])('refuses %s', (expiresAt, message) => {
    expect(createError({ expiresAt })).toBe(message);
    expect(patchError({ expiresAt })).toBe(message);
  });

  it.each([
    ['2032-02-29T00:00:00Z', '2032-02-29T00:00:00.000Z'],
    ['2000-02-29T00:00:00Z', '2000-02-29T00:00:00.000Z'],
    ['2030-12-31T23:59:59.999Z', '2030-12-31T23:59:59.999Z'],
    ['2030-03-01T01:00:00+02:00', '2030-02-28T23:00:00.000Z'],
    // A date alone is the start of that day in UTC.
    ['2030-01-01', '2030-01-01T00:00:00.000Z'],
    ['2032-02-29', '2032-02-29T00:00:00.000Z'],
  ])('takes %s as %s', (expiresAt, stored) => {
    const r = validateCreate({ publicKey: PK, allowedIPs: ['10.0.0.2/32'], expiresAt }, NOW);
    expect(r.ok && r.value.expiresAt).toBe(stored);
  });

  it('every day of every month of a leap and a common year round-trips; the day after the last does not', () => {
    for (const year of [2030, 2032]) {
      for (let month = 1; month <= 12; month++) {
        const days = new Date(Date.UTC(year, month, 0)).getUTCDate();
        const day = (d: number) => `${year}-${String(month).padStart(2, '0')}-${String(d).padStart(2, '0')}T00:00:00Z`;
        for (let d = 1; d <= days; d++) expect(validatePatch({ expiresAt: day(d) })).toEqual({ ok: true, value: { expiresAt: day(d).replace('Z', '.000Z') } });
        expect(patchError({ expiresAt: day(days + 1) })).toMatch(/is not a date/);
      }
    }
  });
});

describe('name: a label of up to MAX_NAME_LENGTH printable characters', () => {
  it('takes letters of any script, spaces and punctuation, counted in characters', () => {
    for (const name of ['laptop', "Zoë's phone (work)", '東京-01', 'x'.repeat(MAX_NAME_LENGTH), '\u{1F511}'.repeat(MAX_NAME_LENGTH)]) {
      const r = validateCreate({ publicKey: PK, allowedIPs: ['10.0.0.2/32'], name }, NOW);
      expect(r.ok && publicView(r.value).name).toBe(name);
      expect(validatePatch({ name })).toEqual({ ok: true, value: { name } });
    }
  });

  it.each([
    ['', 'name: must not be empty (null removes the name)'],
    ['x'.repeat(MAX_NAME_LENGTH + 1), `name: at most ${MAX_NAME_LENGTH} characters, got ${MAX_NAME_LENGTH + 1}`],
    ['a\nb', 'name: character 2 (U+000A) is not printable'],
    ['tab\there', 'name: character 4 (U+0009) is not printable'],
    ['\u{1F511}\u0000', 'name: character 2 (U+0000) is not printable'],
    ['bidi\u202e', 'name: character 5 (U+202E) is not printable'],
    ['lone \ud800', 'name: character 6 (U+D800) is not printable'],
    [42, `name: must be a text of 1 to ${MAX_NAME_LENGTH} printable characters`],
  ])('refuses %j', (name, message) => {
    expect(createError({ name })).toBe(message);
    expect(patchError({ name })).toBe(message);
  });

  it('a PATCH with null removes it; a record without one has no name field', () => {
    expect(validatePatch({ name: null })).toEqual({ ok: true, value: { name: null } });
    const r = validateCreate({ publicKey: PK, allowedIPs: ['10.0.0.2/32'], name: 'a' }, NOW);
    if (!r.ok) throw new Error(r.message);
    const cleared = applyPatch(r.value, { name: null }, NOW);
    expect('name' in cleared).toBe(false);
    expect('name' in publicView(cleared)).toBe(false);
  });
});
