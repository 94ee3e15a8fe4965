import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { applyPatch, MAX_ALLOWED_IPS, MAX_NAME_LENGTH, nameProblem, validateCreate, type PeerRecord } from '../../src/authorize/peer.js';
import { decodeRecord, encodeRecord, MAX_RECORD_BYTES } from '../../src/authorize/record-codec.js';
import { formatKey } from '../../src/handshake/keys.js';

const NOW = new Date('2030-01-01T00:00:00.123Z');
const PK = formatKey(new Uint8Array(32).fill(9));
const PSK = formatKey(new Uint8Array(32).fill(7));

function created(input: Record<string, unknown>, now = NOW): PeerRecord {
  const r = validateCreate({ publicKey: PK, ...input }, now);
  if (!r.ok) throw new Error(r.message);
  return r.value;
}

const v4 = fc.tuple(fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 4, maxLength: 4 }), fc.integer({ min: 0, max: 32 })).map(([b, p]) => {
  const bytes = Uint8Array.from(b);
  for (let i = 0; i < 4; i++) bytes[i]! &= p >= (i + 1) * 8 ? 0xff : (0xff << (8 - Math.max(0, p - i * 8))) & 0xff;
  return `${[...bytes].join('.')}/${p}`;
});
const v6 = fc.tuple(fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 8, maxLength: 8 }), fc.integer({ min: 0, max: 128 })).map(([g, p]) => {
  const groups = g.map((x, i) => {
    const keep = Math.min(16, Math.max(0, p - i * 16));
    return keep === 0 ? 0 : x & ((0xffff << (16 - keep)) & 0xffff);
  });
  return `${groups.map((x) => x.toString(16)).join(':')}/${p}`;
});
const recordInput = fc.record(
  {
    allowedIPs: fc.uniqueArray(fc.oneof(v4, v6), { minLength: 1, maxLength: 8 }),
    presharedKey: fc.uint8Array({ minLength: 32, maxLength: 32 }).map(formatKey),
    persistentKeepalive: fc.integer({ min: 0, max: 65535 }),
    expiresAt: fc.date({ min: new Date('1900-01-01T00:00:00Z'), max: new Date('9999-12-31T23:59:59Z'), noInvalidDate: true }).map((d) => d.toISOString()),
    disabled: fc.boolean(),
    name: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 64 }).filter((n) => nameProblem(n) === null),
  },
  { requiredKeys: ['allowedIPs'] },
);

describe('record codec', () => {
  it('gives back every record validateCreate makes, with the device values parsed', () => {
    fc.assert(
      fc.property(recordInput, fc.date({ min: new Date('1971-01-01Z'), max: new Date('2200-01-01Z'), noInvalidDate: true }), (input, now) => {
        const v = validateCreate({ publicKey: PK, ...input }, now);
        fc.pre(v.ok); // the generators can repeat one CIDR in two spellings
        if (!v.ok) return;
        const stored = decodeRecord(PK, encodeRecord(v.value));
        expect(stored?.record).toEqual(v.value);
        expect(stored?.grant.version).toBe(v.value.updatedAt);
        expect(stored?.grant.allowedIPs.map((c) => c.text)).toEqual(v.value.allowedIPs);
        expect(stored?.grant.presharedKey === undefined ? undefined : formatKey(stored.grant.presharedKey)).toBe(v.value.presharedKey);
        expect(stored?.grant.persistentKeepalive).toBe(v.value.persistentKeepalive);
      }),
    );
  });

  it('keeps a provider record in 38 bytes: one IPv4 and one IPv6 host', () => {
    const bytes = encodeRecord(created({ allowedIPs: ['10.1.2.3/32', 'fd00::1:2/128'] }));
    expect(bytes.length).toBe(16 + 5 + 17);
    expect(encodeRecord(created({ allowedIPs: ['10.0.0.0/8'], presharedKey: PSK, persistentKeepalive: 25, expiresAt: '2031-01-01T00:00:00Z' })).length).toBe(16 + 2 + 7 + 32 + 2);
  });

  it('follows a patch: what applyPatch makes round-trips, cleared fields stay cleared', () => {
    const before = created({ allowedIPs: ['10.0.0.1/32'], presharedKey: PSK, persistentKeepalive: 25, expiresAt: '2031-01-01T00:00:00Z' });
    const after = applyPatch(before, { presharedKey: null, persistentKeepalive: null, expiresAt: null, disabled: true, allowedIPs: ['::/0'] }, new Date('2030-06-01Z'));
    expect(decodeRecord(PK, encodeRecord(after))?.record).toEqual(after);
  });

  it('the largest record fits its bound', () => {
    const ips = Array.from({ length: MAX_ALLOWED_IPS }, (_, i) => `fd00::${i.toString(16)}/128`);
    // The name: MAX_NAME_LENGTH characters of 4 bytes of UTF-8 each.
    const name = '\u{1F511}'.repeat(MAX_NAME_LENGTH);
    const bytes = encodeRecord(created({ allowedIPs: ips, presharedKey: PSK, persistentKeepalive: 1, expiresAt: '2031-01-01T00:00:00Z', name }));
    expect(bytes.length).toBe(MAX_RECORD_BYTES);
    expect(decodeRecord(PK, bytes)?.record.name).toBe(name);
    expect(decodeRecord(PK, bytes)?.record.allowedIPs).toHaveLength(MAX_ALLOWED_IPS);
  });

  it('refuses any value that is not exactly a record it wrote', () => {
    // 16 bytes of header, 2 of keepalive, then 10.0.0.0/23 (a tag and 3 bytes) and fd00::/64.
    const good = encodeRecord(created({ allowedIPs: ['10.0.0.0/23', 'fd00::/64'], persistentKeepalive: 25 }));
    expect(decodeRecord(PK, good)).not.toBeNull();
    const bad = (mutate: (b: Buffer) => Buffer) => decodeRecord(PK, mutate(Buffer.from(good)));
    expect(bad((b) => ((b[0] = 2), b))).toBeNull(); // another format version
    expect(bad((b) => ((b[1]! |= 0x20), b))).toBeNull(); // a flag this version does not know
    expect(bad((b) => (b.writeUInt16BE(0, 16), b))).toBeNull(); // keepalive 0 is "off", never stored
    expect(bad((b) => b.subarray(0, 18))).toBeNull(); // no allowed IPs
    expect(bad((b) => b.subarray(0, b.length - 1))).toBeNull(); // a CIDR cut short
    expect(bad((b) => ((b[18] = 162), b))).toBeNull(); // IPv6 prefix past 128
    expect(bad((b) => ((b[21]! |= 1), b))).toBeNull(); // a host bit under /23
    expect(bad((b) => Buffer.concat([b, b.subarray(18, 22)]))).toBeNull(); // the same CIDR twice
    expect(bad((b) => Buffer.concat([b, Buffer.alloc(MAX_RECORD_BYTES)]))).toBeNull(); // oversized
    expect(decodeRecord(PK, Buffer.from('{"publicKey":"x"}'))).toBeNull(); // JSON of the old layout
  });

  it('never throws on arbitrary bytes, and what it accepts encodes back to the same bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 120 }), (bytes) => {
        const head = Uint8Array.from([1, bytes[0] ?? 0, 0, 0, 0, 0x50, 0, 0, 0, 0, 0, 0, 0x50, 0, 0, 0]);
        for (const value of [bytes, Buffer.concat([head, bytes])]) {
          const stored = decodeRecord(PK, value);
          if (stored !== null) expect(encodeRecord(stored.record).equals(Buffer.from(value))).toBe(true);
        }
      }),
      { numRuns: 5000 },
    );
  });

  describe('name (flag 16, added after the first release of format 1)', () => {
    // Written by the release before names (encodeRecord of validateCreate with every other field, on 2030-01-01T00:00:00.123Z).
    const BEFORE_NAMES =
      '010f0001b8dac5b47b0001b8dac5b47b00190001c03276e0000707070707070707070707070707070707070707070707070707070707070707200a080002a1fd000000000000000000000000000002';
    const full = { allowedIPs: ['10.8.0.2/32', 'fd00::2/128'], persistentKeepalive: 25, expiresAt: '2031-01-01T00:00:00Z', presharedKey: PSK, disabled: true };

    it('decodes a record of the release before names, and writes a record without a name byte for byte as it did', () => {
      const old = decodeRecord(PK, Buffer.from(BEFORE_NAMES, 'hex'));
      expect(old?.record).toEqual(created(full));
      expect(old?.record.name).toBeUndefined();
      expect(encodeRecord(created(full)).toString('hex')).toBe(BEFORE_NAMES);
    });

    it('packs a name after the preshared key as its UTF-8 length less one, then the bytes, and reads it back', () => {
      const named = created({ ...full, name: 'laptop é' });
      const bytes = encodeRecord(named);
      expect(bytes[1]).toBe(0x0f | 16);
      const at = BEFORE_NAMES.length / 2 - 5 - 17; // where the allowed IPs started before
      expect(bytes[at]).toBe(Buffer.byteLength('laptop é') - 1);
      expect(bytes.subarray(at + 1, at + 1 + 9).toString('utf8')).toBe('laptop é');
      expect(bytes.length).toBe(BEFORE_NAMES.length / 2 + 1 + 9);
      expect(decodeRecord(PK, bytes)?.record).toEqual(named);
      // A patch sets and clears it.
      const renamed = applyPatch(named, { name: 'phone' }, new Date('2030-02-01Z'));
      expect(decodeRecord(PK, encodeRecord(renamed))?.record.name).toBe('phone');
      const cleared = applyPatch(named, { name: null }, new Date('2030-02-01Z'));
      expect(decodeRecord(PK, encodeRecord(cleared))?.record).toEqual(cleared);
      expect('name' in cleared).toBe(false);
    });

    it('refuses a stored name that is not one a write takes: bad UTF-8, a control character, cut short', () => {
      const bytes = encodeRecord(created({ allowedIPs: ['10.8.0.2/32'], name: 'ab' }));
      const at = 16;
      expect(decodeRecord(PK, bytes)?.record.name).toBe('ab');
      const bad = (mutate: (b: Buffer) => Buffer) => decodeRecord(PK, mutate(Buffer.from(bytes)));
      expect(bad((b) => ((b[at + 1] = 0xff), b))).toBeNull(); // not UTF-8
      expect(bad((b) => ((b[at + 1] = 0x0a), b))).toBeNull(); // a newline
      expect(bad((b) => ((b[at] = 200), b))).toBeNull(); // longer than the value
    });
  });
});
