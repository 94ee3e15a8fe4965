import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { formatKey, keyProblem, publicKeyOf } from '../../src/handshake/keys.js';
import { generatePrivateKey } from '../../harness/noise/keys.js';
import {
  admission,
  applyPatch,
  decodeLegacyRecord,
  MAX_ALLOWED_IPS,
  MAX_PERSISTENT_KEEPALIVE,
  publicView,
  validateCreate,
  validatePatch,
  type PeerRecord,
} from '../../src/authorize/peer.js';
import { decodeRecord, encodeRecord } from '../../src/authorize/record-codec.js';

const NOW = new Date('2030-01-01T00:00:00.000Z');
const key = () => formatKey(publicKeyOf(generatePrivateKey()));
const PK = key();
const PSK = formatKey(new Uint8Array(32).fill(7));

function created(input: Record<string, unknown>): PeerRecord {
  const r = validateCreate(input, NOW);
  if (!r.ok) throw new Error(r.message);
  return r.value;
}

function createError(input: unknown): string {
  const r = validateCreate(input, NOW);
  if (r.ok) throw new Error('expected a rejection');
  return r.message;
}

function patchError(input: unknown): string {
  const r = validatePatch(input);
  if (r.ok) throw new Error('expected a rejection');
  return r.message;
}

describe('keyProblem', () => {
  it.each<[unknown, string]>([
    [5, 'not a string'],
    ['', 'empty'],
    ['not a key!', 'not base64'],
    [Buffer.alloc(31, 1).toString('base64'), 'base64 of 31 bytes, not 32'],
    [Buffer.alloc(33, 1).toString('base64'), 'base64 of 33 bytes, not 32'],
    [Buffer.alloc(33, 1).toString('base64url'), 'base64 of 33 bytes, not 32'],
    [PK.slice(0, 42) + 'B=', 'not the canonical spelling of 32 bytes'],
  ])('%j: %s', (text, problem) => {
    expect(keyProblem(text)).toBe(problem);
  });

  it('says what a key looks like, never echoing a bad preshared key', () => {
    const bad = Buffer.alloc(33, 5).toString('base64');
    const message = createError({ publicKey: PK, allowedIPs: ['10.0.0.1/32'], presharedKey: bad });
    expect(message).toBe("presharedKey: not a WireGuard key (base64 of 33 bytes, not 32); expected base64 of 32 bytes: 44 characters ending in '=', as `wg genpsk` prints");
  });
});

describe('validateCreate', () => {
  it('builds a canonical record stamped with now', () => {
    const urlKey = Buffer.from(PK, 'base64').toString('base64url');
    const r = created({ publicKey: urlKey, allowedIPs: ['10.0.0.2', 'FD00::2'], presharedKey: PSK, persistentKeepalive: 25, expiresAt: '2030-02-01T01:00:00+01:00' });
    expect(r).toEqual({
      publicKey: PK,
      allowedIPs: ['10.0.0.2/32', 'fd00::2/128'],
      presharedKey: PSK,
      persistentKeepalive: 25,
      expiresAt: '2030-02-01T00:00:00.000Z',
      disabled: false,
      createdAt: NOW.toISOString(),
      updatedAt: NOW.toISOString(),
    });
  });

  it('keepalive 0 means off and is stored as absent', () => {
    expect(created({ publicKey: PK, allowedIPs: ['10.0.0.2/32'], persistentKeepalive: 0 })).not.toHaveProperty('persistentKeepalive');
  });

  it.each<[unknown, RegExp]>([
    [null, /^body: must be a JSON object/],
    [[], /^body: must be a JSON object/],
    [{ allowedIPs: ['10.0.0.1/32'] }, /^publicKey: not a WireGuard public key/],
    [{ publicKey: 'abc', allowedIPs: ['10.0.0.1/32'] }, /^publicKey: not a WireGuard public key/],
    [{ publicKey: PK }, /^allowedIPs: is required/],
    [{ publicKey: PK, allowedIPs: [] }, /^allowedIPs: must hold at least one/],
    [{ publicKey: PK, allowedIPs: '10.0.0.1/32' }, /^allowedIPs: must be a list/],
    [{ publicKey: PK, allowedIPs: ['10.0.0.1/32', '10.0.0.1/24'] }, /^allowedIPs\[1\]: 10.0.0.1\/24 has host bits set/],
    [{ publicKey: PK, allowedIPs: ['10.0.0.1', '10.0.0.1/32'] }, /^allowedIPs\[1\]: 10.0.0.1\/32 is listed twice/],
    [{ publicKey: PK, allowedIPs: ['10.0.0.1/32'], presharedKey: 'short' }, /^presharedKey: not a WireGuard key/],
    [{ publicKey: PK, allowedIPs: ['10.0.0.1/32'], persistentKeepalive: MAX_PERSISTENT_KEEPALIVE + 1 }, /^persistentKeepalive: must be a whole number/],
    [{ publicKey: PK, allowedIPs: ['10.0.0.1/32'], persistentKeepalive: 2.5 }, /^persistentKeepalive/],
    [{ publicKey: PK, allowedIPs: ['10.0.0.1/32'], persistentKeepalive: '25' }, /^persistentKeepalive/],
    [{ publicKey: PK, allowedIPs: ['10.0.0.1/32'], expiresAt: '2030-1-1' }, /^expiresAt: must be an ISO 8601 time with a zone/],
    [{ publicKey: PK, allowedIPs: ['10.0.0.1/32'], expiresAt: '2030-01-01T00:00:00' }, /^expiresAt: must be an ISO 8601/],
    [{ publicKey: PK, allowedIPs: ['10.0.0.1/32'], expiresAt: '2030-13-45T00:00:00Z' }, /^expiresAt: 2030-13-45 is not a date \(month 13 is not 1 to 12\)$/],
    [{ publicKey: PK, allowedIPs: ['10.0.0.1/32'], disabled: 'yes' }, /^disabled: must be true or false/],
    [{ publicKey: PK, allowedIPs: ['10.0.0.1/32'], colour: 'blue' }, /^colour: unknown field/],
    [{ publicKey: PK, allowedIPs: ['10.0.0.1/32'], createdAt: NOW.toISOString() }, /^createdAt: unknown field/],
  ])('rejects %j', (input, re) => {
    expect(createError(input)).toMatch(re);
  });

  it('caps allowedIPs at MAX_ALLOWED_IPS', () => {
    const ips = (n: number) => Array.from({ length: n }, (_, i) => `10.${i >> 8}.${i & 255}.0/24`);
    expect(validateCreate({ publicKey: PK, allowedIPs: ips(MAX_ALLOWED_IPS) }, NOW).ok).toBe(true);
    expect(createError({ publicKey: PK, allowedIPs: ips(MAX_ALLOWED_IPS + 1) })).toMatch(`at most ${MAX_ALLOWED_IPS}`);
  });

  it('never echoes a malformed preshared key', () => {
    const secret = 'c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXN!';
    expect(createError({ publicKey: PK, allowedIPs: ['10.0.0.1/32'], presharedKey: secret })).not.toContain(secret);
  });

  it('never throws on arbitrary input', () => {
    fc.assert(
      fc.property(fc.anything(), (v) => {
        validateCreate(v, NOW);
        validatePatch(v);
      }),
    );
  });
});

describe('validatePatch and applyPatch', () => {
  const base = created({ publicKey: PK, allowedIPs: ['10.0.0.2/32'], presharedKey: PSK, persistentKeepalive: 25, expiresAt: '2031-01-01T00:00:00Z' });
  const later = new Date('2030-06-01T00:00:00.000Z');

  it('null clears, values replace, updatedAt moves, createdAt stays', () => {
    const p = validatePatch({ presharedKey: null, persistentKeepalive: 0, expiresAt: null, allowedIPs: ['fd00::/64'], disabled: true });
    expect(p).toEqual({ ok: true, value: { presharedKey: null, persistentKeepalive: null, expiresAt: null, allowedIPs: ['fd00::/64'], disabled: true } });
    if (!p.ok) return;
    expect(applyPatch(base, p.value, later)).toEqual({
      publicKey: PK,
      allowedIPs: ['fd00::/64'],
      disabled: true,
      createdAt: NOW.toISOString(),
      updatedAt: later.toISOString(),
    });
  });

  it.each<[unknown, RegExp]>([
    [{}, /^body: nothing to change/],
    [{ publicKey: PK }, /^publicKey: cannot be changed/],
    [{ allowedIPs: ['10.0.0.1/8'] }, /^allowedIPs\[0\]: 10.0.0.1\/8 has host bits set/],
    [{ allowedIPs: null }, /^allowedIPs: must be a list/],
    [{ disabled: null }, /^disabled: must be true or false/],
    [{ expiresAt: 'tomorrow' }, /^expiresAt: must be an ISO 8601/],
    [{ updatedAt: 'x' }, /^updatedAt: unknown field/],
  ])('rejects %j', (input, re) => {
    expect(patchError(input)).toMatch(re);
  });
});

describe('publicView', () => {
  it('drops the PSK and says whether there is one', () => {
    const withPsk = created({ publicKey: PK, allowedIPs: ['10.0.0.2/32'], presharedKey: PSK });
    const view = publicView(withPsk);
    expect(view).not.toHaveProperty('presharedKey');
    expect(JSON.stringify(view)).not.toContain(PSK);
    expect(view.hasPresharedKey).toBe(true);
    expect(publicView(created({ publicKey: PK, allowedIPs: ['10.0.0.2/32'] })).hasPresharedKey).toBe(false);
  });
});

describe('admission', () => {
  const rec = created({ publicKey: PK, allowedIPs: ['10.0.0.2/32'], expiresAt: '2030-01-01T00:00:10Z' });
  const stored = (r: PeerRecord) => decodeRecord(r.publicKey, encodeRecord(r));

  it('unknown, disabled, expired (inclusive), allowed', () => {
    expect(admission(null, NOW)).toEqual({ allowed: false, reason: 'unknown' });
    expect(admission(stored({ ...rec, disabled: true }), NOW)).toEqual({ allowed: false, reason: 'disabled' });
    expect(admission(stored(rec), new Date('2030-01-01T00:00:10Z'))).toEqual({ allowed: false, reason: 'expired' });
    expect(admission(stored(rec), new Date('2030-01-01T00:00:09.999Z'))).toEqual({ allowed: true, grant: stored(rec)!.grant });
    const { expiresAt: _, ...forever } = rec;
    expect(admission(stored(forever), new Date('2999-01-01T00:00:00Z')).allowed).toBe(true);
  });

  it('disabled wins over expired', () => {
    expect(admission(stored({ ...rec, disabled: true }), new Date('2031-01-01T00:00:00Z'))).toEqual({ allowed: false, reason: 'disabled' });
  });
});

describe('decodeLegacyRecord (the JSON of the single-node layout, for the migration)', () => {
  const rec = created({ publicKey: PK, allowedIPs: ['10.0.0.2/32'], presharedKey: PSK, persistentKeepalive: 25 });

  it('round-trips what the store writes, including Redis cjson escaping of "/"', () => {
    expect(decodeLegacyRecord(JSON.stringify(rec))?.record).toEqual(rec);
    expect(decodeLegacyRecord(JSON.stringify(rec).replace(/\//g, '\\/'))?.record).toEqual(rec);
  });

  it('hands the device the record\'s values, parsed: CIDR bytes, the preshared key\'s bytes, the version', () => {
    const { grant } = decodeLegacyRecord(JSON.stringify({ ...rec, allowedIPs: ['10.0.0.2/32', 'fd00::/64'] }))!;
    expect(grant.allowedIPs.map((c) => [c.family, [...c.bytes], c.prefix, c.text])).toEqual([
      [4, [10, 0, 0, 2], 32, '10.0.0.2/32'],
      [6, [0xfd, ...new Array(15).fill(0)], 64, 'fd00::/64'],
    ]);
    expect(grant.presharedKey).toEqual(new Uint8Array(32).fill(7));
    expect(grant.persistentKeepalive).toBe(25);
    expect(grant.version).toBe(rec.updatedAt);
  });

  it('refuses values that are not our records', () => {
    for (const text of ['', 'null', '[]', '{}', '{"publicKey":"x"}', JSON.stringify({ ...rec, allowedIPs: ['10.0.0.1/8'] }), JSON.stringify({ ...rec, disabled: 'no' })]) {
      expect(decodeLegacyRecord(text)).toBeNull();
    }
  });
});

it('a fresh key differs from the fixture (sanity for generated keys)', () => {
  expect(key()).not.toBe(PK);
});
