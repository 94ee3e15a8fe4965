import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  batches,
  checkCidr,
  formatEndpoint,
  GET_REQUEST,
  MAX_PERSISTENT_KEEPALIVE,
  parseEndpoint,
  parseGetReply,
  parseReply,
  serializeRemovePeers,
  serializeSetPeers,
  UapiRequestError,
} from '../../src/install/uapi-protocol.js';
import type { PeerConfig } from '../../src/install/device.js';
import { formatKey, generatePrivateKey, keyToHex, publicKeyOf } from '../../src/handshake/keys.js';

const key = (byte: number) => formatKey(new Uint8Array(32).fill(byte));
const hex = (byte: number) => byte.toString(16).padStart(2, '0').repeat(32);

describe('set requests', () => {
  it('writes one peer with every field, keys in hex, ordered for wireguard-go', () => {
    const req = serializeSetPeers([
      {
        publicKey: key(0xab),
        updateOnly: true,
        presharedKey: key(0x01),
        endpoint: { address: '192.0.2.1', port: 51820 },
        persistentKeepalive: 25,
        replaceAllowedIPs: true,
        allowedIPs: ['10.0.0.2/32', 'fd00::2/128'],
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
    expect(serializeSetPeers([{ publicKey: url, persistentKeepalive: 0 }])).toBe(
      `set=1\npublic_key=${hex(0xfb)}\npersistent_keepalive_interval=0\n\n`,
    );
  });

  it('removes peers with remove=true', () => {
    expect(serializeRemovePeers([key(4), key(5)])).toBe(
      `set=1\npublic_key=${hex(4)}\nremove=true\npublic_key=${hex(5)}\nremove=true\n\n`,
    );
  });

  it.each<[string, PeerConfig]>([
    ['bad key', { publicKey: 'nope' }],
    ['bad psk', { publicKey: key(1), presharedKey: 'x' }],
    ['newline in allowed IP', { publicKey: key(1), allowedIPs: ['10.0.0.1/32\nremove=true'] }],
    ['prefix too long', { publicKey: key(1), allowedIPs: ['10.0.0.1/33'] }],
    ['v6 prefix too long', { publicKey: key(1), allowedIPs: ['fd00::/129'] }],
    ['no prefix', { publicKey: key(1), allowedIPs: ['10.0.0.1'] }],
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
          req = serializeSetPeers([{ publicKey: key(1), allowedIPs: [s] }]);
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
    expect(d.publicKey).toBe(pub);
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
    expect(r).toMatchObject({ ok: true, device: { publicKey: '', listenPort: 0, fwmark: 0, peers: [] } });
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

  it('the get request is exactly get=1 and a blank line', () => {
    expect(GET_REQUEST).toBe('get=1\n\n');
  });
});
