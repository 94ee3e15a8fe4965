import { randomBytes } from 'node:crypto';
import { isIP, isIPv4 } from 'node:net';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  batches,
  checkCidr,
  digitsAt,
  fieldAt,
  formatEndpoint,
  GET_REQUEST,
  hexKeyAt,
  MAX_PERSISTENT_KEEPALIVE,
  parseEndpoint,
  parseGetReply,
  parseReply,
  serializeRemovePeers,
  serializeSetPeers,
  UapiRequestError,
} from '../../src/install/uapi-protocol.js';
import { isIPv4At } from '../../src/net/address.js';
import { isCidrAt } from '../../src/net/cidr.js';
import { cidrs, textOnly } from '../../harness/cidr.js';
import type { PeerConfig, PeerStatus } from '../../src/install/device.js';
import { formatKey, keyToHex, PublicKey, publicKeyOf } from '../../src/handshake/keys.js';
import { generatePrivateKey } from '../../harness/noise/keys.js';

const key = (byte: number) => PublicKey.fromBytes(new Uint8Array(32).fill(byte));
const psk = (byte: number) => new Uint8Array(32).fill(byte);
const hex = (byte: number) => byte.toString(16).padStart(2, '0').repeat(32);

describe('set requests', () => {
  it('writes one peer with every field, keys in hex, ordered for wireguard-go', () => {
    const req = serializeSetPeers([
      {
        publicKey: key(0xab),
        updateOnly: true,
        presharedKey: psk(0x01),
        endpoint: { address: '192.0.2.1', port: 51820 },
        persistentKeepalive: 25,
        replaceAllowedIPs: true,
        allowedIPs: cidrs('10.0.0.2/32', 'fd00::2/128'),
      },
    ]);
    expect(req).toBe(
      'set=1\n' +
        `public_key=${hex(0xab)}\n` +
        'update_only=true\n' +
        `preshared_key=${hex(0x01)}\n` +
        'endpoint=192.0.2.1:51820\n' +
        'persistent_keepalive_interval=25\n' +
        'replace_allowed_ips=true\n' +
        'allowed_ip=10.0.0.2/32\n' +
        'allowed_ip=fd00::2/128\n' +
        '\n',
    );
  });

  it('writes only the fields given, and brackets IPv6 endpoints', () => {
    expect(serializeSetPeers([{ publicKey: key(2), endpoint: { address: 'fd00::1', port: 7 } }, { publicKey: key(3) }])).toBe(
      `set=1\npublic_key=${hex(2)}\nendpoint=[fd00::1]:7\npublic_key=${hex(3)}\n\n`,
    );
  });

  it('accepts base64url keys and writes persistent keepalive 0 to turn it off', () => {
    const url = Buffer.from(new Uint8Array(32).fill(0xfb)).toString('base64url');
    expect(serializeSetPeers([{ publicKey: PublicKey.parse(url)!, persistentKeepalive: 0 }])).toBe(
      `set=1\npublic_key=${hex(0xfb)}\npersistent_keepalive_interval=0\n\n`,
    );
  });

  it('removes peers with remove=true', () => {
    expect(serializeRemovePeers([key(4), key(5)])).toBe(
      `set=1\npublic_key=${hex(4)}\nremove=true\npublic_key=${hex(5)}\nremove=true\n\n`,
    );
  });

  it.each<[string, PeerConfig]>([
    ['bad key', { publicKey: 'nope' as unknown as PublicKey }],
    ['bad psk', { publicKey: key(1), presharedKey: 'x' as unknown as Uint8Array }],
    ['short psk', { publicKey: key(1), presharedKey: new Uint8Array(31) }],
    ['newline in allowed IP', { publicKey: key(1), allowedIPs: [textOnly('10.0.0.1/32\nremove=true')] }],
    ['prefix too long', { publicKey: key(1), allowedIPs: [textOnly('10.0.0.1/33')] }],
    ['v6 prefix too long', { publicKey: key(1), allowedIPs: [textOnly('fd00::/129')] }],
    ['no prefix', { publicKey: key(1), allowedIPs: [textOnly('10.0.0.1')] }],
    ['hostname endpoint', { publicKey: key(1), endpoint: { address: 'example.com', port: 1 } }],
    ['bracketed endpoint', { publicKey: key(1), endpoint: { address: '[fd00::1]', port: 1 } }],
    ['port out of range', { publicKey: key(1), endpoint: { address: '10.0.0.1', port: 65_536 } }],
    ['fractional keepalive', { publicKey: key(1), persistentKeepalive: 1.5 }],
    ['keepalive too big', { publicKey: key(1), persistentKeepalive: MAX_PERSISTENT_KEEPALIVE + 1 }],
  ])('refuses %s before anything is written', (_label, peer) => {
    expect(() => serializeSetPeers([peer])).toThrow(UapiRequestError);
  });

  it('never lets an allowed IP add a line', () => {
    fc.assert(
      fc.property(fc.string(), (s) => {
        let req: string;
        try {
          req = serializeSetPeers([{ publicKey: key(1), allowedIPs: [textOnly(s)] }]);
        } catch (e) {
          return e instanceof UapiRequestError;
        }
        return req.split('\n').length === 5 && checkCidr(s) === s;
      }),
    );
  });

  it('splits into batches of at most the size, in order', () => {
    expect(batches([1, 2, 3, 4, 5], 2)).toEqual([[1, 2], [3, 4], [5]]);
    expect(batches([], 3)).toEqual([]);
    expect(() => batches([1], 0)).toThrow(RangeError);
  });
});

describe('replies', () => {
  it('splits body and errno, negative errnos included', () => {
    expect(parseReply('errno=0\n\n')).toEqual({ ok: true, body: [], errno: 0 });
    expect(parseReply('errno=-22\n\n')).toEqual({ ok: true, body: [], errno: -22 });
    expect(parseReply('a=1\nerrno=5\n\n')).toEqual({ ok: true, body: ['a=1'], errno: 5 });
  });

  it.each(['', 'errno=0\n', 'a=1\n\n', 'errno=x\n\n', 'errno=\n\n'])('rejects %j', (text) => {
    expect(parseReply(text).ok).toBe(false);
  });

  it('parses endpoints', () => {
    expect(parseEndpoint('1.2.3.4:5')).toEqual({ address: '1.2.3.4', port: 5 });
    expect(parseEndpoint('[fd00::5]:123')).toEqual({ address: 'fd00::5', port: 123 });
    expect(parseEndpoint('[fe80::1%eth0]:9')).toEqual({ address: 'fe80::1', port: 9 });
    for (const bad of ['1.2.3.4', 'fd00::5:1', '[1.2.3.4]:5', 'host:5', '1.2.3.4:99999', '1.2.3.4:']) {
      expect(parseEndpoint(bad)).toBeNull();
    }
  });

  it('round-trips endpoints', () => {
    for (const e of [
      { address: '10.1.2.3', port: 0 },
      { address: '2001:db8::1', port: 65535 },
    ]) {
      expect(parseEndpoint(formatEndpoint(e))).toEqual(e);
    }
  });
});

describe('get replies', () => {
  const priv = generatePrivateKey();
  const pub = formatKey(publicKeyOf(priv));
  // As wireguard-go v0.0.20220316 writes it (seen on the test host).
  const reply =
    `private_key=${keyToHex(priv)}\n` +
    'listen_port=51999\n' +
    'fwmark=7\n' +
    `public_key=${hex(0x11)}\n` +
    `preshared_key=${hex(0x22)}\n` +
    'protocol_version=1\n' +
    'endpoint=[fd00::5]:123\n' +
    'last_handshake_time_sec=1700000000\n' +
    'last_handshake_time_nsec=123456789\n' +
    'tx_bytes=18446744073709551615\n' +
    'rx_bytes=92\n' +
    'persistent_keepalive_interval=25\n' +
    'allowed_ip=10.0.0.2/32\n' +
    'allowed_ip=fd00::2/128\n' +
    `public_key=${hex(0x33)}\n` +
    `preshared_key=${'0'.repeat(64)}\n` +
    'protocol_version=1\n' +
    'endpoint=1.2.3.4:5\n' +
    'last_handshake_time_sec=0\n' +
    'last_handshake_time_nsec=0\n' +
    'tx_bytes=0\n' +
    'rx_bytes=0\n' +
    'persistent_keepalive_interval=0\n' +
    'errno=0\n\n';

  it('parses device and peers', () => {
    const r = parseGetReply('wg7', reply);
    if (!r.ok) throw new Error(r.error);
    const d = r.device;
    expect(d.name).toBe('wg7');
    expect(d.publicKey?.toString()).toBe(pub);
    expect(Array.from(d.privateKey)).toEqual(Array.from(priv));
    expect(d.listenPort).toBe(51999);
    expect(d.fwmark).toBe(7);
    expect(d.peers).toEqual([
      {
        publicKey: key(0x11),
        endpoint: { address: 'fd00::5', port: 123 },
        allowedIPs: ['10.0.0.2/32', 'fd00::2/128'],
        persistentKeepalive: 25,
        lastHandshakeAt: 1_700_000_000_123,
        rxBytes: 92n,
        txBytes: 18446744073709551615n,
        hasPresharedKey: true,
      },
      {
        publicKey: key(0x33),
        endpoint: { address: '1.2.3.4', port: 5 },
        allowedIPs: [],
        persistentKeepalive: 0,
        lastHandshakeAt: null,
        rxBytes: 0n,
        txBytes: 0n,
        hasPresharedKey: false,
      },
    ]);
  });

  it('ignores unknown keys at device and peer level', () => {
    const odd = reply.replace('listen_port=', 'new_device_thing=x\nlisten_port=').replace('protocol_version=1\n', 'fancy=1=2\n');
    const r = parseGetReply('wg7', odd);
    expect(r.ok && r.device.peers.length).toBe(2);
  });

  it('reads a device with no key, no port, no peers', () => {
    const r = parseGetReply('wg0', 'errno=0\n\n');
    expect(r).toMatchObject({ ok: true, device: { publicKey: null, listenPort: 0, fwmark: 0, peers: [] } });
  });

  it.each([
    ['non-zero errno', 'errno=-5\n\n'],
    ['truncated', reply.slice(0, -1)],
    ['peer key before public_key', 'endpoint=1.2.3.4:5\nerrno=0\n\n'],
    ['bad hex key', 'public_key=ABC\nerrno=0\n\n'],
    ['uppercase hex key', `public_key=${'AB'.repeat(32)}\nerrno=0\n\n`],
    ['bad endpoint', `public_key=${hex(1)}\nendpoint=nowhere\nerrno=0\n\n`],
    ['bad allowed ip', `public_key=${hex(1)}\nallowed_ip=10.0.0.0/40\nerrno=0\n\n`],
    ['bytes over 64 bits', `public_key=${hex(1)}\nrx_bytes=18446744073709551616\nerrno=0\n\n`],
    ['negative port', 'listen_port=-1\nerrno=0\n\n'],
    ['line without =', 'garbage\nerrno=0\n\n'],
    ['line with an empty key', '=1\nerrno=0\n\n'],
    ['hex key one digit short', `public_key=${hex(1).slice(1)}\nerrno=0\n\n`],
    ['hex key with a character past ASCII', `public_key=${hex(1).slice(2)}\u0130a\nerrno=0\n\n`],
    ['uppercase preshared key', `public_key=${hex(1)}\npreshared_key=${'AB'.repeat(32)}\nerrno=0\n\n`],
    ['uppercase private key', `private_key=${'AB'.repeat(32)}\nerrno=0\n\n`],
    ['signed byte count', `public_key=${hex(1)}\nrx_bytes=-1\nerrno=0\n\n`],
    ['empty byte count', `public_key=${hex(1)}\ntx_bytes=\nerrno=0\n\n`],
    ['long byte count with a letter', `public_key=${hex(1)}\ntx_bytes=1234567890123456x\nerrno=0\n\n`],
    ['handshake seconds of 17 digits', `public_key=${hex(1)}\nlast_handshake_time_sec=12345678901234567\nerrno=0\n\n`],
    ['handshake nanoseconds over a second', `public_key=${hex(1)}\nlast_handshake_time_nsec=1000000000\nerrno=0\n\n`],
    ['keepalive over 16 bits', `public_key=${hex(1)}\npersistent_keepalive_interval=65536\nerrno=0\n\n`],
    ['fwmark over 32 bits', 'fwmark=4294967296\nerrno=0\n\n'],
  ])('returns a tagged failure for %s', (_label, text) => {
    const r = parseGetReply('wg0', text);
    expect(r.ok).toBe(false);
  });

  it('never throws on arbitrary input', () => {
    fc.assert(
      fc.property(fc.string(), (s) => {
        parseGetReply('x', s);
        parseGetReply('x', `${s}\nerrno=0\n\n`);
        return true;
      }),
    );
  });

  // A get reply as wireguard-go v0.0.20220316 writes each peer (line order included).
  interface DumpPeer {
    key: Uint8Array;
    psk: Uint8Array | null;
    endpoint: { address: string; port: number } | null;
    sec: number;
    nsec: number;
    rx: bigint;
    tx: bigint;
    keepalive: number;
    allowed: string[];
  }
  const dumpLines = (p: DumpPeer) =>
    [
      `public_key=${keyToHex(p.key)}`,
      `preshared_key=${keyToHex(p.psk ?? new Uint8Array(32))}`,
      'protocol_version=1',
      ...(p.endpoint === null ? [] : [`endpoint=${formatEndpoint(p.endpoint)}`]),
      `last_handshake_time_sec=${p.sec}`,
      `last_handshake_time_nsec=${p.nsec}`,
      `tx_bytes=${p.tx}`,
      `rx_bytes=${p.rx}`,
      `persistent_keepalive_interval=${p.keepalive}`,
      ...p.allowed.map((a) => `allowed_ip=${a}`),
    ].join('\n');
  const dump = (peers: DumpPeer[]) => `listen_port=51820\n${peers.map((p) => `${dumpLines(p)}\n`).join('')}errno=0\n\n`;
  const expected = (p: DumpPeer): PeerStatus => ({
    publicKey: PublicKey.fromBytes(p.key),
    ...(p.endpoint === null ? {} : { endpoint: p.endpoint }),
    allowedIPs: p.allowed,
    persistentKeepalive: p.keepalive,
    lastHandshakeAt: p.sec === 0 && p.nsec === 0 ? null : p.sec * 1000 + Math.floor(p.nsec / 1e6),
    rxBytes: p.rx,
    txBytes: p.tx,
    hasPresharedKey: p.psk !== null,
  });

  const dumpPeer: fc.Arbitrary<DumpPeer> = fc.record({
    key: fc.uint8Array({ minLength: 32, maxLength: 32 }),
    psk: fc.option(fc.uint8Array({ minLength: 32, maxLength: 32 }).filter((k) => k.some((b) => b !== 0))),
    endpoint: fc.option(
      fc.record({
        address: fc.oneof(fc.ipV4(), fc.ipV6()).filter((a) => parseEndpoint(formatEndpoint({ address: a, port: 1 }))?.address === a),
        port: fc.integer({ min: 0, max: 65_535 }),
      }),
    ),
    sec: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 4_102_444_800 })),
    nsec: fc.integer({ min: 0, max: 999_999_999 }),
    rx: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
    tx: fc.oneof(fc.constant(0n), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n })),
    keepalive: fc.integer({ min: 0, max: MAX_PERSISTENT_KEEPALIVE }),
    allowed: fc.array(fc.oneof(fc.constant('10.0.0.1/32'), fc.constant('0.0.0.0/0'), fc.constant('fd00::2/128'), fc.constant('2001:db8::/32')), { maxLength: 3 }),
  });

  it('reads every field of any peer as wireguard-go writes it', () => {
    fc.assert(
      fc.property(fc.array(dumpPeer, { maxLength: 8 }), (peers) => {
        const r = parseGetReply('wg0', dump(peers));
        if (!r.ok) throw new Error(r.error);
        expect(r.device.peers).toEqual(peers.map(expected));
        expect(r.device.listenPort).toBe(51820);
      }),
    );
  });

  it('spells every key of a large dump as formatKey does, in order', () => {
    // More peers than the key batch's first allocation holds, so it grows.
    const peers = Array.from({ length: 5_000 }, (_, i): DumpPeer => ({
      key: new Uint8Array(randomBytes(32)),
      psk: null,
      endpoint: { address: `198.51.100.${i % 250}`, port: 1024 + i },
      sec: 0,
      nsec: 0,
      rx: BigInt(i),
      tx: 0n,
      keepalive: 0,
      allowed: [`10.0.${i >> 8}.${i & 255}/32`],
    }));
    const r = parseGetReply('wg0', dump(peers));
    if (!r.ok) throw new Error(r.error);
    expect(r.device.peers.map((p) => p.publicKey.toString())).toEqual(peers.map((p) => formatKey(p.key)));
    expect(r.device.peers[4_999]).toEqual(expected(peers[4_999]!));
  });

  it('the get request is exactly get=1 and a blank line', () => {
    expect(GET_REQUEST).toBe('get=1\n\n');
  });
});

describe('reading in place', () => {
  it('digitsAt reads 1 to 16 decimal digits and nothing else', () => {
    const t = 'x=0;x=18446744;x=9007199254740991;x=12345678901234567;x=;x=-1;x=1 ;x=٣';
    const field = (i: number) => {
      const starts = [...t.matchAll(/x=/g)].map((m) => m.index! + 2);
      const from = starts[i]!;
      const to = t.indexOf(';', from) < 0 ? t.length : t.indexOf(';', from);
      return digitsAt(t, from, to);
    };
    expect([0, 1, 2].map(field)).toEqual([0, 18446744, 9007199254740991]);
    for (const i of [3, 4, 5, 6, 7]) expect(field(i)).toBe(-1);
  });

  it('digitsAt agrees with Number on any string of digits up to 15 long', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[0-9]{1,15}$/), fc.string({ maxLength: 3 }), (digits, pad) => {
        const text = `${pad}${digits}${pad}`;
        expect(digitsAt(text, pad.length, pad.length + digits.length)).toBe(Number(digits));
      }),
    );
  });

  it('hexKeyAt takes exactly 64 lowercase hex digits and writes their bytes where told', () => {
    const bytes = new Uint8Array(randomBytes(32));
    const text = `k=${keyToHex(bytes)}\n`;
    const out = new Uint8Array(40);
    expect(hexKeyAt(text, 2, 66, out, 5)).toBe(true);
    expect(Array.from(out.subarray(5, 37))).toEqual(Array.from(bytes));
    expect(out[4]).toBe(0);
    expect(out[37]).toBe(0);
    expect(hexKeyAt(text, 2, 66)).toBe(true);
    expect(hexKeyAt(text, 2, 65)).toBe(false);
    expect(hexKeyAt(text, 1, 66)).toBe(false);
    expect(hexKeyAt('ab'.repeat(32), 0, 64)).toBe(true);
    expect(hexKeyAt('AB'.repeat(32), 0, 64)).toBe(false);
    for (const bad of ['g', 'G', ' ', '\u0130', '\u0100', '\u00e0']) {
      const spoilt = `${keyToHex(bytes).slice(0, 31)}${bad}${keyToHex(bytes).slice(32)}`;
      expect(hexKeyAt(spoilt, 0, 64)).toBe(false);
    }
  });

  it('fieldAt knows a key only by its whole spelling', () => {
    const line = (k: string) => `${k}=1`;
    expect(fieldAt(line('public_key'), 0, 10)).toBe('public_key');
    expect(fieldAt(line('allowed_ip'), 0, 10)).toBe('allowed_ip');
    expect(fieldAt(line('rx_bytes'), 0, 8)).toBe('rx_bytes');
    expect(fieldAt(line('last_handshake_time_nsec'), 0, 24)).toBe('last_handshake_time_nsec');
    expect(fieldAt(line('public_keys'), 0, 11)).toBeNull();
    expect(fieldAt(line('public_kez'), 0, 10)).toBeNull();
    expect(fieldAt(line('public_key'), 0, 9)).toBeNull();
    expect(fieldAt(line('xx_bytes'), 0, 8)).toBeNull();
    expect(fieldAt('', 0, 0)).toBeNull();
    expect(fieldAt(`${'a'.repeat(100)}=1`, 0, 100)).toBeNull();
  });

  // Text that is nearly an address: digits, dots, slashes and a few strays, plus real addresses cut and padded.
  const nearlyAddress = fc.oneof(
    fc.stringMatching(/^[0-9./:xa-f]{0,20}$/),
    fc.ipV4(),
    fc.ipV4().map((a) => `0${a}`),
    fc.tuple(fc.ipV4(), fc.integer({ min: 0, max: 40 })).map(([a, bits]) => `${a}/${bits}`),
    fc.tuple(fc.ipV6(), fc.integer({ min: 0, max: 140 })).map(([a, bits]) => `${a}/${bits}`),
    fc.tuple(fc.ipV4(), fc.stringMatching(/^[0-9]{1,5}$/)).map(([a, bits]) => `${a}/${bits}`),
  );

  it('isIPv4At agrees with node:net isIPv4, read anywhere in a longer text', () => {
    fc.assert(
      fc.property(nearlyAddress, fc.string({ maxLength: 4 }), (a, pad) => {
        expect(isIPv4At(`${pad}${a}${pad}`, pad.length, pad.length + a.length)).toBe(isIPv4(a));
      }),
      { numRuns: 2_000 },
    );
    for (const bad of ['01.2.3.4', '1.2.3.256', '1.2.3', '1.2.3.4.', '.1.2.3.4', '1..2.3', '1.2.3.4 ', '']) expect(isIPv4At(bad, 0, bad.length)).toBe(false);
  });

  it('isCidrAt takes what the slice-and-isIP check took', () => {
    const reference = (cidr: string) => {
      const slash = cidr.lastIndexOf('/');
      const bits = slash < 0 ? '' : cidr.slice(slash + 1);
      const family = slash < 0 ? 0 : isIP(cidr.slice(0, slash));
      return family !== 0 && /^[0-9]+$/.test(bits) && bits.length <= 3 && Number(bits) <= (family === 4 ? 32 : 128);
    };
    fc.assert(
      fc.property(nearlyAddress, fc.string({ maxLength: 4 }), (a, pad) => {
        expect(isCidrAt(`${pad}${a}${pad}`, pad.length, pad.length + a.length)).toBe(reference(a));
      }),
      { numRuns: 2_000 },
    );
  });

  it('parseEndpoint takes what the slice-and-isIP check took', () => {
    const reference = (text: string) => {
      const colon = text.lastIndexOf(':');
      if (colon < 0) return null;
      let address = text.slice(0, colon);
      const port = text.slice(colon + 1);
      if (address.startsWith('[') && address.endsWith(']')) {
        address = address.slice(1, -1);
        if (address.includes('%')) address = address.slice(0, address.indexOf('%'));
        if (isIP(address) !== 6) return null;
      } else if (isIP(address) !== 4) {
        return null;
      }
      if (!/^[0-9]+$/.test(port) || port.length > 5 || Number(port) > 65_535) return null;
      return { address, port: Number(port) };
    };
    const nearlyEndpoint = fc.oneof(
      fc.stringMatching(/^[0-9.:[\]%a-f]{0,24}$/),
      fc.tuple(fc.ipV4(), fc.stringMatching(/^[0-9]{0,6}$/)).map(([a, p]) => `${a}:${p}`),
      fc.tuple(fc.ipV6(), fc.stringMatching(/^[0-9]{0,6}$/), fc.constantFrom('', '%eth0', '%')).map(([a, p, z]) => `[${a}${z}]:${p}`),
      fc.tuple(fc.ipV6(), fc.integer({ min: 0, max: 65_535 })).map(([a, p]) => `${a}:${p}`),
    );
    fc.assert(
      fc.property(nearlyEndpoint, (e) => {
        expect(parseEndpoint(e)).toEqual(reference(e));
      }),
      { numRuns: 2_000 },
    );
  });
});
