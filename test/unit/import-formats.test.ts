/**
 * The import parsers (src/cli/import-formats.ts): the three formats as wg,
 * wg-quick and `wg show IF dump` write them, every bad line named by its
 * number, and hostile input: never a throw, bounded one-line messages, no
 * secret echoed.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_ALLOWED_IPS } from '../../src/authorize/peer.js';
import { formatKey } from '../../src/handshake/keys.js';
import { MAX_LINE_ERRORS, MAX_LINE_LENGTH, parsePeerFile, printable, sniffFormat, type ImportFormat, type PeerInput } from '../../src/cli/import-formats.js';

const key = (fill: number) => formatKey(new Uint8Array(32).fill(fill));
const [K1, K2, K3] = [key(1), key(2), key(3)];
const PSK = key(9);
const PRIVATE = key(7);
const NOW = new Date('2030-01-01T00:00:00Z');

/** The records of a good file, each with its JSON read back as the API would. */
function records(text: string, format: ImportFormat | 'auto' = 'auto') {
  const r = parsePeerFile(text, format, NOW);
  if (!r.ok) throw new Error(`expected records, got ${JSON.stringify(r.errors)}`);
  return { format: r.format, records: r.records.map(({ line, json }) => ({ line, body: JSON.parse(json) as PeerInput })), keys: r.records.map((x) => x.publicKey) };
}

function errors(text: string, format: ImportFormat | 'auto' = 'auto') {
  const r = parsePeerFile(text, format, NOW);
  if (r.ok) throw new Error('expected errors');
  return r.errors;
}

describe('wg config', () => {
  it('reads [Peer] blocks as wg does: case-insensitive keys, comments, whitespace anywhere, AllowedIPs lines adding up; skips [Interface] and Endpoint', () => {
    const text = [
      '# a wg-quick config',
      '[Interface]',
      `PrivateKey = ${PRIVATE}`,
      'Address = 10.8.0.1/24',
      'PostUp = iptables -A FORWARD -i %i -j ACCEPT # with a comment',
      'ListenPort = 51820',
      '',
      '[Peer]  # laptop',
      `PublicKey = ${K1}`,
      `presharedkey=${PSK}`,
      'AllowedIPs = 10.8.0.2/32, FD00::2/128',
      'allowedips = 10.9.0.0/16',
      'Endpoint = 192.0.2.1:51820',
      'PersistentKeepalive = 25',
      '',
      '[PEER]',
      `Public Key = ${K2}`, // wg drops whitespace inside too
      'AllowedIPs = 10.8.0.3',
      'PersistentKeepalive = off',
      '[peer]',
      `PublicKey = ${K3}\r`,
      'AllowedIPs = 10.8.0.4/32\r',
    ].join('\n');
    const r = records(text);
    expect(r.format).toBe('wg');
    expect(r.records).toEqual([
      { line: 8, body: { publicKey: K1, allowedIPs: ['10.8.0.2/32', 'fd00::2/128', '10.9.0.0/16'], presharedKey: PSK, persistentKeepalive: 25 } },
      { line: 16, body: { publicKey: K2, allowedIPs: ['10.8.0.3/32'] } },
      { line: 20, body: { publicKey: K3, allowedIPs: ['10.8.0.4/32'] } },
    ]);
  });

  it('takes a base64url key and a byte order mark', () => {
    const r = records(`\ufeff[Peer]\nPublicKey = ${Buffer.from(K1, 'base64').toString('base64url')}\nAllowedIPs = 10.0.0.2/32\n`);
    expect(r.records[0]!.body.publicKey).toBe(K1);
  });

  it.each<[string, string, number, RegExp]>([
    ['an unknown key', `[Peer]\nPublicKey = ${K1}\nAllowedIPs = 10.0.0.2/32\nMTU = 1420\n`, 4, /^unknown key 'MTU' in \[Peer\]/],
    ['no PublicKey', `[Interface]\nListenPort = 1\n\n[Peer]\nAllowedIPs = 10.0.0.2/32\n`, 4, /^\[Peer\] without PublicKey$/],
    ['no AllowedIPs', `[Peer]\nPublicKey = ${K1}\n`, 1, /^\[Peer\] without AllowedIPs; wgjit needs at least one CIDR$/],
    ['an empty AllowedIPs', `[Peer]\nPublicKey = ${K1}\nAllowedIPs =\n`, 1, /without AllowedIPs/],
    ['a bad CIDR, at its line', `[Peer]\nPublicKey = ${K1}\nAllowedIPs = 10.0.0.2/32\nAllowedIPs = 10.0.0.1/24\n`, 4, /^AllowedIPs: 10\.0\.0\.1\/24 has host bits set/],
    ['a CIDR twice', `[Peer]\nPublicKey = ${K1}\nAllowedIPs = 10.0.0.2/32\nAllowedIPs = 10.0.0.2\n`, 4, /10\.0\.0\.2\/32 is listed twice/],
    ['a bad public key', `[Peer]\nPublicKey = abc\nAllowedIPs = 10.0.0.2/32\n`, 2, /^PublicKey: not a WireGuard key \(base64 of 2 bytes, not 32\)$/],
    ['PublicKey twice', `[Peer]\nPublicKey = ${K1}\npublickey = ${K2}\nAllowedIPs = 10.0.0.2/32\n`, 3, /^publickey given twice in this \[Peer\]$/],
    ['a bad keepalive', `[Peer]\nPublicKey = ${K1}\nAllowedIPs = 10.0.0.2/32\nPersistentKeepalive = 65536\n`, 4, /^PersistentKeepalive: must be whole seconds from 0 to 65535, or off$/],
    ['a line without =', `[Peer]\nPublicKey = ${K1}\nAllowedIPs 10.0.0.2/32\n`, 3, /^expected Key = Value$/],
    ['a line before any section', `PublicKey = ${K1}\n[Peer]\nPublicKey = ${K2}\nAllowedIPs = 10.0.0.2/32\n`, 1, /^a line before any section/],
    ['an unknown section', `[Peer]\nPublicKey = ${K1}\nAllowedIPs = 10.0.0.2/32\n[Peers]\nPublicKey = ${K2}\n`, 4, /^unknown section '\[Peers\]'/],
    ['a key in two blocks', `[Peer]\nPublicKey = ${K1}\nAllowedIPs = 10.0.0.2/32\n\n[Peer]\nPublicKey = ${K1}\nAllowedIPs = 10.0.0.3/32\n`, 5, /^this public key is already given at line 1$/],
    ['too many CIDRs', `[Peer]\nPublicKey = ${K1}\n${Array.from({ length: MAX_ALLOWED_IPS + 1 }, (_, i) => `AllowedIPs = 10.0.${i >> 8}.${i & 255}/32`).join('\n')}\n`, 1, new RegExp(`^allowedIPs: at most ${MAX_ALLOWED_IPS} CIDRs`)],
  ])('names the line of %s', (_what, text, line, message) => {
    const errs = errors(text, 'wg');
    expect(errs).toHaveLength(1);
    expect(errs[0]).toEqual({ line, message: expect.stringMatching(message) });
  });

  it('a bad line spoils its block only once: no second message for the same [Peer]', () => {
    const errs = errors(`[Peer]\nPublicKey = nope\nAllowedIPs = 10.0.0.2/32\n[Peer]\nPublicKey = ${K2}\nAllowedIPs = 10.0.0.300/32\n`, 'wg');
    expect(errs.map((e) => e.line)).toEqual([2, 6]);
  });

  it('never echoes a preshared key, good or bad', () => {
    for (const psk of [PSK, Buffer.alloc(31, 0xa7).toString('base64'), 'c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA==']) {
      const text = `[Peer]\nPublicKey = ${K1}\nPresharedKey = ${psk}\nPresharedKey = ${psk}\nAllowedIPs = 10.0.0.2/32\n`;
      const errs = errors(text, 'wg');
      expect(errs.length).toBeGreaterThan(0);
      for (const e of errs) expect(e.message).not.toContain(psk);
    }
  });
});

describe('wg show IF dump', () => {
  const IFACE = `${PRIVATE}\t${K3}\t51820\toff`;
  const peer = (fields: Partial<Record<'pub' | 'psk' | 'endpoint' | 'ips' | 'hs' | 'rx' | 'tx' | 'ka', string>> = {}) =>
    [fields.pub ?? K1, fields.psk ?? '(none)', fields.endpoint ?? '(none)', fields.ips ?? '10.8.0.2/32', fields.hs ?? '0', fields.rx ?? '0', fields.tx ?? '0', fields.ka ?? 'off'].join('\t');

  it('skips the interface line and reads each peer line', () => {
    const text = [IFACE, peer({ psk: PSK, endpoint: '192.0.2.7:4242', ips: '10.8.0.2/32,fd00::2/128', hs: '1700000000', rx: '1024', tx: '2048', ka: '25' }), peer({ pub: K2, endpoint: '[2001:db8::1]:51820', ips: '10.8.0.3/32' }), ''].join('\n');
    const r = records(text);
    expect(r.format).toBe('dump');
    expect(r.records).toEqual([
      { line: 2, body: { publicKey: K1, presharedKey: PSK, allowedIPs: ['10.8.0.2/32', 'fd00::2/128'], persistentKeepalive: 25 } },
      { line: 3, body: { publicKey: K2, allowedIPs: ['10.8.0.3/32'] } },
    ]);
  });

  it('takes peer lines without the interface line (tail -n +2)', () => {
    expect(records(peer()).records).toEqual([{ line: 1, body: { publicKey: K1, allowedIPs: ['10.8.0.2/32'] } }]);
  });

  it.each<[string, string, number, RegExp]>([
    ['`wg show all dump`', `wg0\t${peer()}`, 1, /looks like `wg show all dump`/],
    ['a short line', `${IFACE}\n${K1}\t(none)\t(none)`, 2, /^3 tab-separated fields; a peer line of `wg show IF dump` has 8/],
    ['an interface line not first', `${peer()}\n${IFACE}`, 2, /^4 tab-separated fields/],
    ['(none) allowed ips', `${IFACE}\n${peer({ ips: '(none)' })}`, 2, /^no allowed IPs \(\(none\)\)/],
    ['a bad CIDR', `${IFACE}\n${peer({ ips: '10.8.0.2/32,10.8.0.1/24' })}`, 2, /^allowed ips \(field 4\): 10\.8\.0\.1\/24 has host bits set/],
    ['a bad public key', `${IFACE}\n${peer({ pub: 'xyz' })}`, 2, /^public key \(field 1\): not a WireGuard key/],
    ['a bad counter', `${IFACE}\n${peer({ rx: '-1' })}`, 2, /^field 6 \(received bytes\) is not a number$/],
    ['a bad keepalive', `${IFACE}\n${peer({ ka: 'sometimes' })}`, 2, /^persistent keepalive \(field 8\): must be/],
  ])('names the line of %s', (_what, text, line, message) => {
    const errs = errors(text, 'dump');
    expect(errs).toHaveLength(1);
    expect(errs[0]).toEqual({ line, message: expect.stringMatching(message) });
  });

  it('never echoes the preshared key field or the interface line (its first field is the private key)', () => {
    const badPsk = Buffer.alloc(33, 0x5a).toString('base64');
    const text = [IFACE, peer({ psk: badPsk }), peer({ pub: K2, psk: PSK, ips: 'junk' }), IFACE, `${PRIVATE}\t${PSK}`].join('\n');
    const errs = errors(text, 'dump');
    expect(errs.map((e) => e.line)).toEqual([2, 3, 4, 5]);
    for (const e of errs) for (const secret of [badPsk, PSK, PRIVATE]) expect(e.message).not.toContain(secret);
  });
});

describe('JSON lines', () => {
  it('one record a line, blank lines skipped, checked as POST /v1/peers checks', () => {
    const a = { publicKey: K1, allowedIPs: ['10.0.0.2/32'], presharedKey: PSK, persistentKeepalive: 0, expiresAt: '2031-01-01T00:00:00Z', disabled: true };
    const b = { publicKey: K2, allowedIPs: ['fd00::2'] };
    const r = records(`${JSON.stringify(a)}\n\n   \n${JSON.stringify(b)}\r\n`);
    expect(r.format).toBe('jsonl');
    expect(r.records).toEqual([
      { line: 1, body: a },
      { line: 4, body: b },
    ]);
  });

  it('sends a line as the file spells it, and keys the record by wg\'s spelling of its key', () => {
    const line = `  {"publicKey": "${Buffer.from(K1, 'base64').toString('base64url')}",   "allowedIPs": ["10.0.0.2/32"]}  `;
    const r = parsePeerFile(`${line}\n`, 'jsonl', NOW);
    expect(r.ok && r.records).toEqual([{ line: 1, publicKey: K1, json: line }]);
  });

  it.each<[string, string, RegExp]>([
    ['bad JSON', '{"publicKey": x}', /^not valid JSON$/],
    ['cut JSON', '{"publicKey": "a"', /^not valid JSON \(at character \d+\)$/],
    ['an array', '[1, 2]', /^not a JSON object/],
    ['a number', '42', /^not a JSON object/],
    ['an unknown field', `{"publicKey": "${K1}", "allowedIPs": ["10.0.0.2/32"], "endpoint": "1.2.3.4:5"}`, /^endpoint: unknown field$/],
    ['no allowedIPs', `{"publicKey": "${K1}"}`, /^allowedIPs: is required$/],
    ['a bad time', `{"publicKey": "${K1}", "allowedIPs": ["10.0.0.2/32"], "expiresAt": "tomorrow"}`, /^expiresAt: must be an ISO 8601 time/],
    ['a keepalive string', `{"publicKey": "${K1}", "allowedIPs": ["10.0.0.2/32"], "persistentKeepalive": "25"}`, /^persistentKeepalive: must be a whole number/],
  ])('names the line of %s', (_what, line, message) => {
    const text = `${JSON.stringify({ publicKey: K3, allowedIPs: ['10.0.0.9/32'] })}\n\n${line}\n`;
    const errs = errors(text, 'jsonl');
    expect(errs).toEqual([{ line: 3, message: expect.stringMatching(message) }]);
  });

  it('a line that does not parse never shows its text (it may hold a preshared key)', () => {
    const errs = errors(`{"publicKey": "${K1}", "presharedKey": "${PSK}" "allowedIPs": []}\n{"presharedKey": ${PSK}}\n`, 'jsonl');
    expect(errs).toHaveLength(2);
    for (const e of errs) expect(e.message).not.toContain(PSK.slice(0, 12));
  });

  it('a key in a field that quotes its bad value (a CIDR) is not shown, whatever the format', () => {
    const cases: Array<[ImportFormat, string]> = [
      ['wg', `[Peer]\nPublicKey = ${K1}\nAllowedIPs = ${PSK}\n`],
      ['dump', `${K1}\t(none)\t(none)\t${PSK}\t0\t0\t0\toff\n`],
      ['jsonl', `${JSON.stringify({ publicKey: K1, allowedIPs: [PSK] })}\n`],
    ];
    for (const [format, text] of cases) {
      const [e] = errors(text, format);
      expect(e!.message, format).toMatch(/^allowed ?ips.*\(not shown\)/i);
      expect(e!.message, format).not.toContain(PSK.slice(0, 20));
    }
  });

  it('a field name with control characters stays on one printable line', () => {
    const errs = errors(`{"publicKey": "${K1}", "allowedIPs": ["10.0.0.2/32"], "x\\n\\u001b[31my\\u2028": 1}\n`, 'jsonl');
    expect(errs[0]!.message).toBe('x\\u000a\\u001b[31my\\u2028: unknown field');
  });
});

describe('the file as a whole', () => {
  it('sniffs each format from its first line with content', () => {
    expect(sniffFormat('\n# comment\n  [Interface]\n')).toBe('wg');
    expect(sniffFormat('[peer]\n')).toBe('wg');
    expect(sniffFormat(`\n{"publicKey": 1}\n`)).toBe('jsonl');
    expect(sniffFormat(`${PRIVATE}\t${K1}\t51820\toff\n`)).toBe('dump');
    expect(sniffFormat(`${K1}\t(none)\t(none)\t10.0.0.2/32\t0\t0\t0\toff\n`)).toBe('dump');
    expect(sniffFormat(`${K1} 10.0.0.2/32\n`)).toBeNull();
    expect(sniffFormat('')).toBeNull();
  });

  it('auto that cannot tell asks for --format; an empty file has no records', () => {
    expect(errors('hello\n')).toEqual([{ line: 0, message: expect.stringMatching(/cannot tell the format .*give --format wg, dump or jsonl$/) }]);
    expect(errors('\n\n')).toEqual([{ line: 0, message: 'no peer records (the file is empty)' }]);
    expect(errors('# only a comment\n[Interface]\nListenPort = 1\n')).toEqual([{ line: 0, message: 'no peer records (read as wg)' }]);
  });

  it('a given format wins over sniffing', () => {
    expect(errors(`[Peer]\nPublicKey = ${K1}\nAllowedIPs = 10.0.0.2/32\n`, 'jsonl').map((e) => e.line)).toEqual([1, 2, 3]);
  });

  it(`refuses a line over ${MAX_LINE_LENGTH} characters without parsing it`, () => {
    const long = JSON.stringify({ publicKey: K1, allowedIPs: ['10.0.0.2/32'], pad: 'x'.repeat(MAX_LINE_LENGTH) });
    expect(errors(`${long}\n`, 'jsonl')).toEqual([{ line: 1, message: `line is ${long.length} characters long, at most ${MAX_LINE_LENGTH}` }]);
    expect(errors(`[Peer]\nPublicKey = ${K1}\nAllowedIPs = ${'1'.repeat(MAX_LINE_LENGTH)}\n`, 'wg').map((e) => e.line)).toEqual([3]);
  });

  it(`keeps the first ${MAX_LINE_ERRORS} bad lines and counts all`, () => {
    const r = parsePeerFile(Array.from({ length: 250 }, () => '{"publicKey": 1}').join('\n'), 'jsonl', NOW);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.count).toBe(250);
    expect(r.errors).toHaveLength(MAX_LINE_ERRORS);
    expect(r.errors[0]!.line).toBe(1);
  });

  it('printable escapes control characters and bounds the length', () => {
    expect(printable('a\tb\u0085c\u202ed')).toBe('a\\u0009b\\u0085c\\u202ed');
    expect(printable('x'.repeat(500), 10)).toBe(`${'x'.repeat(9)}…`);
  });
});

// ------------------------------------------------------------------ properties

interface Peer {
  publicKey: string;
  allowedIPs: string[];
  presharedKey?: string;
  persistentKeepalive?: number;
}

const keyArb = fc.uint8Array({ minLength: 32, maxLength: 32 }).map(formatKey);
const cidrArb = fc.oneof(
  fc.tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 })).map(([a, b, c]) => `10.${a}.${b}.${c}/32`),
  fc.integer({ min: 1, max: 0xffff }).map((n) => `fd00::${n.toString(16)}/128`),
);
const peersArb = fc.uniqueArray(
  fc.record(
    {
      publicKey: keyArb,
      allowedIPs: fc.uniqueArray(cidrArb, { minLength: 1, maxLength: 4 }),
      presharedKey: keyArb,
      persistentKeepalive: fc.integer({ min: 1, max: 65535 }),
    },
    { requiredKeys: ['publicKey', 'allowedIPs'] },
  ),
  { selector: (p) => p.publicKey, minLength: 1, maxLength: 8 },
);
const caseOf = (s: string, flips: boolean[]) => [...s].map((c, i) => (flips[i % flips.length] ? c.toUpperCase() : c.toLowerCase())).join('');

/** The file each format makes of `peers`, and the line of each record. */
function render(format: ImportFormat, peers: Peer[], flips: boolean[]): { text: string; lines: number[] } {
  const out: string[] = [];
  const lines: number[] = [];
  if (format === 'wg') out.push('[Interface]', `PrivateKey = ${PRIVATE}`, 'Address = 10.8.0.1/24', '');
  if (format === 'dump') out.push(`${PRIVATE}\t${K3}\t51820\toff`);
  for (const p of peers) {
    if (format === 'jsonl') {
      lines.push(out.length + 1);
      out.push(JSON.stringify(p), '');
    } else if (format === 'dump') {
      lines.push(out.length + 1);
      out.push([p.publicKey, p.presharedKey ?? '(none)', '192.0.2.1:51820', p.allowedIPs.join(','), '0', '0', '0', p.persistentKeepalive ?? 'off'].join('\t'));
    } else {
      lines.push(out.length + 1);
      out.push(`${caseOf('[Peer]', flips)} # ${p.publicKey.slice(0, 4)}`);
      out.push(`${caseOf('PublicKey', flips)} = ${p.publicKey}`);
      if (p.presharedKey) out.push(`${caseOf('PresharedKey', flips)}=${p.presharedKey}`);
      for (const c of p.allowedIPs) out.push(`\t${caseOf('AllowedIPs', flips)} = ${c}  `);
      out.push('Endpoint = example.com:51820');
      if (p.persistentKeepalive) out.push(`PersistentKeepalive = ${p.persistentKeepalive}`);
      out.push('');
    }
  }
  return { text: out.join('\n'), lines };
}

describe('properties', () => {
  it.each<ImportFormat>(['wg', 'dump', 'jsonl'])('%s: what is written is read back, each record at its line, sniffed as itself', (format) => {
    fc.assert(
      fc.property(peersArb, fc.array(fc.boolean(), { minLength: 1, maxLength: 5 }), (peers, flips) => {
        const { text, lines } = render(format, peers, flips);
        const r = parsePeerFile(text, 'auto', NOW);
        expect(r.ok && r.format).toBe(format);
        if (!r.ok) return;
        expect(r.records.map((x) => x.line)).toEqual(lines);
        expect(r.records.map((x) => JSON.parse(x.json) as PeerInput)).toEqual(peers.map((p) => ({ ...p }) as PeerInput));
      }),
      { numRuns: 200 },
    );
  });

  it.each<ImportFormat>(['dump', 'jsonl'])('%s: a line replaced with junk is named by its number, and nothing else is', (format) => {
    const junk = fc.string({ unit: 'binary', maxLength: 80 }).filter((s) => s.trim() !== '' && !s.includes('\n') && !s.includes('\r'));
    fc.assert(
      fc.property(peersArb, junk, fc.nat(), (peers, bad, at) => {
        const { text, lines } = render(format, peers, [false]);
        const target = lines[at % lines.length]!;
        const all = text.split('\n');
        all[target - 1] = bad;
        const r = parsePeerFile(all.join('\n'), format, NOW);
        // Junk may by chance be a record of its own (a valid JSON object with a fresh key is not junk): then it parses.
        if (r.ok) return;
        expect(r.errors.map((e) => e.line)).toEqual([target]);
      }),
      { numRuns: 300 },
    );
  });

  it('hostile input: never throws; errors name a line of the file, on one bounded printable line, and never echo a secret', () => {
    const secret = fc.constantFrom(PSK, PRIVATE);
    const piece = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 60 }),
      fc.constantFrom('[Peer]', '[Interface]', '[peer', 'PublicKey', 'PresharedKey', 'AllowedIPs', '=', ',', '\t', '\n', '\r\n', '#', '{', '}', '"', ':', '(none)', 'off', '/', '10.0.0.1', 'fd00::', '\u2028', '\u001b[2J', '\ufeff'),
      keyArb,
      secret,
      secret.map((s) => `PresharedKey = ${s}`),
      secret.map((s) => `{"presharedKey": "${s}"`),
      secret.map((s) => `${s}\t${s}\t1\toff`),
    );
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 40 }), fc.constantFrom<ImportFormat | 'auto'>('auto', 'wg', 'dump', 'jsonl'), (pieces, format) => {
        const text = pieces.join('');
        const r = parsePeerFile(text, format, NOW);
        const lineCount = text.split('\n').length;
        if (r.ok) {
          for (const rec of r.records) expect(rec.line).toBeGreaterThanOrEqual(1);
          return;
        }
        expect(r.count).toBeGreaterThanOrEqual(r.errors.length);
        for (const e of r.errors) {
          expect(e.line).toBeGreaterThanOrEqual(0);
          expect(e.line).toBeLessThanOrEqual(lineCount);
          expect(e.message.length).toBeLessThanOrEqual(300);
          // eslint-disable-next-line no-control-regex
          expect(e.message).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/);
          // Nothing key-like at all: not the secrets, nor a piece of them.
          expect(e.message).not.toMatch(/[A-Za-z0-9+/_-]{20,}/);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
