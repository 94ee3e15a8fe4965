import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatIPv6 } from '../../src/net/address.js';
import { cidr, cidrs, unchecked } from '../../harness/cidr.js';
import type { PeerStatus } from '../../src/install/device.js';
import { PublicKey } from '../../src/handshake/keys.js';
import {
  AF_INET,
  AF_INET6,
  CTRL_ATTR_FAMILY_ID,
  CTRL_ATTR_FAMILY_NAME,
  CTRL_CMD_GETFAMILY,
  DEFAULT_MAX_MESSAGE_BYTES,
  GENL_HDRLEN,
  GENL_ID_CTRL,
  getDeviceRequest,
  getFamilyRequest,
  MIN_MESSAGE_BYTES,
  NLA_F_NESTED,
  NLM_F_ACK,
  NLM_F_ACK_TLVS,
  NLM_F_CAPPED,
  NLM_F_DUMP,
  NLM_F_DUMP_INTR,
  NLM_F_MULTI,
  NLM_F_REQUEST,
  NLMSG_DONE,
  NLMSG_ERROR,
  NLMSG_HDRLEN,
  NLMSGERR_ATTR_MSG,
  NetlinkParseError,
  NetlinkRequestError,
  parseAttrs,
  parseDevice,
  parseFamilyId,
  parseReply,
  removePeersRequests,
  setPeersRequests,
  setSeq,
  splitMessages,
  WG_CMD_GET_DEVICE,
  WG_CMD_SET_DEVICE,
  WGALLOWEDIP_A_CIDR_MASK,
  WGALLOWEDIP_A_FAMILY,
  WGALLOWEDIP_A_IPADDR,
  WGDEVICE_A_IFNAME,
  WGDEVICE_A_LISTEN_PORT,
  WGDEVICE_A_PEERS,
  WGDEVICE_A_PRIVATE_KEY,
  WGDEVICE_A_PUBLIC_KEY,
  WGPEER_A_ALLOWEDIPS,
  WGPEER_A_ENDPOINT,
  WGPEER_A_FLAGS,
  WGPEER_A_LAST_HANDSHAKE_TIME,
  WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL,
  WGPEER_A_PRESHARED_KEY,
  WGPEER_A_PUBLIC_KEY,
  WGPEER_A_RX_BYTES,
  WGPEER_A_TX_BYTES,
  WGPEER_F_REMOVE_ME,
  WGPEER_F_REPLACE_ALLOWEDIPS,
  WGPEER_F_UPDATE_ONLY,
  type NetlinkMessage,
} from '../../src/install/netlink-protocol.js';

const FAMILY = 0x1d;
const key = (b: number) => PublicKey.fromBytes(new Uint8Array(32).fill(b));
const psk = (b: number) => new Uint8Array(32).fill(b);
/** What a caller that is not a type checker might pass. */
const untyped = <T>(v: unknown) => v as T;
const keyN = (n: number) => {
  const k = new Uint8Array(32);
  new DataView(k.buffer).setUint32(0, n);
  k[31] = 1;
  return PublicKey.fromBytes(k);
};

/** A test-side attribute encoder, independent of the one under test. */
function attr(type: number, data: Uint8Array | Buffer, nested = false): Buffer {
  const len = 4 + data.length;
  const out = Buffer.alloc((len + 3) & ~3);
  out.writeUInt16LE(len, 0);
  out.writeUInt16LE(type | (nested ? NLA_F_NESTED : 0), 2);
  Buffer.from(data).copy(out, 4);
  return out;
}
const nest = (type: number, ...children: Buffer[]) => attr(type, Buffer.concat(children), true);
const u16 = (v: number) => Buffer.from([v & 0xff, v >> 8]);
const u32 = (v: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v);
  return b;
};
function nlmsg(type: number, flags: number, seq: number, payload: Buffer): Buffer {
  const out = Buffer.alloc(NLMSG_HDRLEN + payload.length);
  out.writeUInt32LE(out.length, 0);
  out.writeUInt16LE(type, 4);
  out.writeUInt16LE(flags, 6);
  out.writeUInt32LE(seq, 8);
  payload.copy(out, NLMSG_HDRLEN);
  return out;
}
const genl = (cmd: number, ...attrs: Buffer[]) => Buffer.concat([Buffer.from([cmd, 1, 0, 0]), ...attrs]);
const done = (seq: number, status = 0) => nlmsg(NLMSG_DONE, NLM_F_MULTI, seq, u32(status >>> 0));
const ack = (seq: number, error = 0) => nlmsg(NLMSG_ERROR, 0, seq, Buffer.concat([u32(error >>> 0), Buffer.alloc(NLMSG_HDRLEN)]));

/** Reads a set request back: flags and allowed IPs per peer part, in order. */
function peerParts(request: Buffer): { publicKey: PublicKey; flags: number; allowedIPs: number; attrs: number[] }[] {
  const [m] = splitMessages([request]);
  const peers = parseAttrs(m!.payload.subarray(GENL_HDRLEN)).find((a) => a.type === WGDEVICE_A_PEERS)!;
  return parseAttrs(peers.data).map((p) => {
    const attrs = parseAttrs(p.data);
    return {
      publicKey: PublicKey.fromBytes(attrs.find((a) => a.type === WGPEER_A_PUBLIC_KEY)!.data),
      flags: attrs.find((a) => a.type === WGPEER_A_FLAGS)!.data.readUInt32LE(0),
      allowedIPs: parseAttrs(attrs.find((a) => a.type === WGPEER_A_ALLOWEDIPS)?.data ?? Buffer.alloc(0)).length,
      attrs: attrs.map((a) => a.type),
    };
  });
}
/** Set requests parse like dump parts: they carry the same peer nests. */
const asMessages = (requests: Buffer[]): NetlinkMessage[] => splitMessages(requests);

describe('netlink requests', () => {
  it('GETFAMILY asks the controller for the family by name, with an ack', () => {
    const [m] = splitMessages([getFamilyRequest('wireguard', 7)]);
    expect(m).toMatchObject({ type: GENL_ID_CTRL, flags: NLM_F_REQUEST | NLM_F_ACK, seq: 7 });
    expect(m!.payload[0]).toBe(CTRL_CMD_GETFAMILY);
    const attrs = parseAttrs(m!.payload.subarray(GENL_HDRLEN));
    expect(attrs).toHaveLength(1);
    expect(attrs[0]!.type).toBe(CTRL_ATTR_FAMILY_NAME);
    expect(attrs[0]!.data.toString()).toBe('wireguard\0');
  });

  it('GET_DEVICE is a dump naming the interface', () => {
    const [m] = splitMessages([getDeviceRequest(FAMILY, 'wg0', 9)]);
    expect(m).toMatchObject({ type: FAMILY, seq: 9 });
    expect(m!.flags & NLM_F_DUMP).toBe(NLM_F_DUMP);
    expect(m!.payload[0]).toBe(WG_CMD_GET_DEVICE);
    expect(parseAttrs(m!.payload.subarray(GENL_HDRLEN))).toEqual([{ type: WGDEVICE_A_IFNAME, data: Buffer.from('wg0\0') }]);
  });

  it('a full peer carries every field it was given, in kernel units', () => {
    const [request] = setPeersRequests(FAMILY, 'wg0', [
      { publicKey: key(1), presharedKey: psk(2), endpoint: { address: '192.0.2.1', port: 51820 }, persistentKeepalive: 25, allowedIPs: cidrs('10.0.0.2/32', 'fd00::/64'), replaceAllowedIPs: true },
    ]);
    const [m] = splitMessages([request!]);
    expect(m!.payload[0]).toBe(WG_CMD_SET_DEVICE);
    const [part] = peerParts(request!);
    expect(part).toMatchObject({ publicKey: key(1), flags: WGPEER_F_REPLACE_ALLOWEDIPS, allowedIPs: 2 });
    expect(part!.attrs).toEqual([WGPEER_A_PUBLIC_KEY, WGPEER_A_FLAGS, WGPEER_A_PRESHARED_KEY, WGPEER_A_ENDPOINT, WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL, WGPEER_A_ALLOWEDIPS]);
    const peer = parseDevice('wg0', asMessages([request!])).peers[0]!;
    expect(peer).toMatchObject({ publicKey: key(1), endpoint: { address: '192.0.2.1', port: 51820 }, persistentKeepalive: 25, allowedIPs: ['10.0.0.2/32', 'fd00::/64'], hasPresharedKey: true });
  });

  it('the endpoint is a sockaddr: family in host order, port in network order', () => {
    const [request] = setPeersRequests(FAMILY, 'wg0', [{ publicKey: key(1), endpoint: { address: '2001:db8::1', port: 0x1234 } }]);
    const peers = parseAttrs(parseAttrs(splitMessages([request!])[0]!.payload.subarray(GENL_HDRLEN)).find((a) => a.type === WGDEVICE_A_PEERS)!.data);
    const endpoint = parseAttrs(peers[0]!.data).find((a) => a.type === WGPEER_A_ENDPOINT)!.data;
    expect(endpoint).toHaveLength(28);
    expect(endpoint.readUInt16LE(0)).toBe(AF_INET6);
    expect([endpoint[2], endpoint[3]]).toEqual([0x12, 0x34]);
    expect(parseDevice('wg0', asMessages([request!])).peers[0]!.endpoint).toEqual({ address: '2001:db8::1', port: 0x1234 });
  });

  it('removal is the public key and REMOVE_ME only', () => {
    const requests = removePeersRequests(FAMILY, 'wg0', [key(1), key(2)]);
    expect(peerParts(requests[0]!)).toEqual([
      { publicKey: key(1), flags: WGPEER_F_REMOVE_ME, allowedIPs: 0, attrs: [WGPEER_A_PUBLIC_KEY, WGPEER_A_FLAGS] },
      { publicKey: key(2), flags: WGPEER_F_REMOVE_ME, allowedIPs: 0, attrs: [WGPEER_A_PUBLIC_KEY, WGPEER_A_FLAGS] },
    ]);
  });

  it('replacing allowed IPs with none still sends the (empty) list', () => {
    const [part] = peerParts(setPeersRequests(FAMILY, 'wg0', [{ publicKey: key(1), allowedIPs: [], replaceAllowedIPs: true, updateOnly: true }])[0]!);
    expect(part).toMatchObject({ flags: WGPEER_F_REPLACE_ALLOWEDIPS | WGPEER_F_UPDATE_ONLY, allowedIPs: 0 });
    expect(part!.attrs).toContain(WGPEER_A_ALLOWEDIPS);
  });

  it('packs 5,000 peers into messages within the limit, each peer exactly once, in order', () => {
    const peers = Array.from({ length: 5_000 }, (_, i) => ({ publicKey: keyN(i), allowedIPs: [cidr(`10.${i >> 8}.${i & 255}.0/24`)] }));
    const requests = setPeersRequests(FAMILY, 'wg0', peers);
    expect(requests.length).toBeGreaterThan(1);
    for (const r of requests) expect(r.length).toBeLessThanOrEqual(DEFAULT_MAX_MESSAGE_BYTES);
    const device = parseDevice('wg0', asMessages(requests));
    expect(device.peers.map((p) => p.publicKey)).toEqual(peers.map((p) => p.publicKey));
    expect(device.peers.map((p) => p.allowedIPs[0])).toEqual(peers.map((p) => p.allowedIPs[0]!.text));
  });

  it('a peer whose allowed IPs do not fit continues in the next message: UPDATE_ONLY, no REPLACE', () => {
    const allowedIPs = Array.from({ length: 300 }, (_, i) => `10.1.${i >> 8}.${i & 255}/32`).concat(Array.from({ length: 50 }, (_, i) => `fd00::${(i + 1).toString(16)}/128`));
    const peers = [
      { publicKey: key(1), allowedIPs: cidrs('10.9.0.1/32') },
      { publicKey: key(2), presharedKey: psk(9), allowedIPs: cidrs(...allowedIPs), replaceAllowedIPs: true },
      { publicKey: key(3), allowedIPs: cidrs('10.9.0.3/32') },
    ];
    const requests = setPeersRequests(FAMILY, 'wg0', peers, MIN_MESSAGE_BYTES);
    for (const r of requests) expect(r.length).toBeLessThanOrEqual(MIN_MESSAGE_BYTES);
    const parts = requests.flatMap(peerParts).filter((p) => p.publicKey.equals(key(2)));
    expect(parts.length).toBeGreaterThan(10);
    expect(parts[0]!.flags).toBe(WGPEER_F_REPLACE_ALLOWEDIPS);
    expect(parts[0]!.attrs).toContain(WGPEER_A_PRESHARED_KEY);
    for (const p of parts.slice(1)) {
      expect(p.flags).toBe(WGPEER_F_UPDATE_ONLY);
      expect(p.attrs).not.toContain(WGPEER_A_PRESHARED_KEY);
      expect(p.allowedIPs).toBeGreaterThan(0);
    }
    // Read back as a dump: one peer, every allowed IP once, in order.
    const device = parseDevice('wg0', asMessages(requests));
    expect(device.peers.map((p) => p.publicKey)).toEqual([key(1), key(2), key(3)]);
    expect(device.peers[1]!.allowedIPs).toEqual(allowedIPs);
  });

  it('a continued update-only peer stays update-only in every part', () => {
    const allowedIPs = Array.from({ length: 100 }, (_, i) => `10.2.0.${i}/32`);
    const parts = setPeersRequests(FAMILY, 'wg0', [{ publicKey: key(4), allowedIPs: cidrs(...allowedIPs), updateOnly: true, replaceAllowedIPs: true }], MIN_MESSAGE_BYTES).flatMap(peerParts);
    expect(parts.length).toBeGreaterThan(1);
    for (const p of parts) expect(p.flags & WGPEER_F_UPDATE_ONLY).toBe(WGPEER_F_UPDATE_ONLY);
  });

  it('refuses bad input before building anything', () => {
    const bad: [string, () => unknown][] = [
      ['public key', () => setPeersRequests(FAMILY, 'wg0', [{ publicKey: untyped<PublicKey>('nope') }])],
      ['preshared key', () => setPeersRequests(FAMILY, 'wg0', [{ publicKey: key(1), presharedKey: untyped<Uint8Array>('x'.repeat(44)) }])],
      ['allowed IP', () => setPeersRequests(FAMILY, 'wg0', [{ publicKey: key(1), allowedIPs: [unchecked(4, [10, 0, 0, 1], 33)] }])],
      ['host bits', () => setPeersRequests(FAMILY, 'wg0', [{ publicKey: key(1), allowedIPs: [unchecked(4, [10, 0, 0, 1], 24)] }])],
      ['endpoint', () => setPeersRequests(FAMILY, 'wg0', [{ publicKey: key(1), endpoint: { address: 'example.com', port: 1 } }])],
      ['endpoint prefix', () => setPeersRequests(FAMILY, 'wg0', [{ publicKey: key(1), endpoint: { address: '10.0.0.1/32', port: 1 } }])],
      ['port', () => setPeersRequests(FAMILY, 'wg0', [{ publicKey: key(1), endpoint: { address: '10.0.0.1', port: 70000 } }])],
      ['keepalive', () => setPeersRequests(FAMILY, 'wg0', [{ publicKey: key(1), persistentKeepalive: 65536 }])],
      ['interface', () => setPeersRequests(FAMILY, 'wg0/../x', [])],
      ['long interface', () => getDeviceRequest(FAMILY, 'a'.repeat(16), 1)],
      ['message size', () => setPeersRequests(FAMILY, 'wg0', [], MIN_MESSAGE_BYTES - 1)],
      ['removal key', () => removePeersRequests(FAMILY, 'wg0', [key(1), untyped<PublicKey>('bad')])],
    ];
    for (const [what, build] of bad) expect(build, what).toThrow(NetlinkRequestError);
  });

  it('setSeq stamps the header', () => {
    const [m] = splitMessages([setSeq(setPeersRequests(FAMILY, 'wg0', [{ publicKey: key(1) }])[0]!, 0xfffffffe)]);
    expect(m!.seq).toBe(0xfffffffe);
  });
});

describe('netlink replies', () => {
  it('an ack is ok with no messages; a kernel error carries errno and the extended-ack text', () => {
    expect(parseReply([ack(5)], 5)).toEqual({ ok: true, messages: [], interrupted: false });
    const withText = nlmsg(
      NLMSG_ERROR,
      NLM_F_CAPPED | NLM_F_ACK_TLVS,
      5,
      Buffer.concat([u32(-22 >>> 0), Buffer.alloc(NLMSG_HDRLEN), attr(NLMSGERR_ATTR_MSG, Buffer.from('bad attribute\0'))]),
    );
    expect(parseReply([withText], 5)).toEqual({ ok: false, error: { errno: 22, message: 'bad attribute' } });
    expect(parseReply([ack(5, -19)], 5)).toEqual({ ok: false, error: { errno: 19, message: null } });
  });

  it('ignores messages of other sequence numbers, flags an interrupted dump, and reads a failed DONE', () => {
    const part = nlmsg(FAMILY, NLM_F_MULTI | NLM_F_DUMP_INTR, 3, genl(WG_CMD_GET_DEVICE));
    const reply = parseReply([Buffer.concat([ack(2, -1), part]), done(3)], 3);
    expect(reply).toMatchObject({ ok: true, interrupted: true });
    expect(reply.ok && reply.messages).toHaveLength(1);
    expect(parseReply([done(3, -95)], 3)).toEqual({ ok: false, error: { errno: 95, message: null } });
  });

  it('finds the family id', () => {
    const reply = parseReply([nlmsg(GENL_ID_CTRL, 0, 1, genl(1, attr(CTRL_ATTR_FAMILY_NAME, Buffer.from('wireguard\0')), attr(CTRL_ATTR_FAMILY_ID, u16(FAMILY))))], 1);
    expect(reply.ok && parseFamilyId(reply.messages)).toBe(FAMILY);
    expect(() => parseFamilyId([])).toThrow(NetlinkParseError);
  });

  it('parses a dump in several parts, merging a peer whose allowed IPs continue', () => {
    const ip4 = (a: number[], mask: number) => nest(0, attr(WGALLOWEDIP_A_FAMILY, u16(AF_INET)), attr(WGALLOWEDIP_A_IPADDR, Buffer.from(a)), attr(WGALLOWEDIP_A_CIDR_MASK, Buffer.from([mask])));
    const sockaddr4 = Buffer.from([AF_INET, 0, 0xca, 0x6c, 192, 0, 2, 7, 0, 0, 0, 0, 0, 0, 0, 0]);
    const handshake = Buffer.alloc(16);
    handshake.writeBigInt64LE(1_700_000_000n, 0);
    handshake.writeBigInt64LE(250_000_000n, 8);
    const first = nlmsg(
      FAMILY,
      NLM_F_MULTI,
      4,
      genl(
        WG_CMD_GET_DEVICE,
        attr(WGDEVICE_A_IFNAME, Buffer.from('wg0\0')),
        attr(WGDEVICE_A_PRIVATE_KEY, Buffer.alloc(32, 7)),
        attr(WGDEVICE_A_PUBLIC_KEY, Buffer.alloc(32, 8)),
        attr(WGDEVICE_A_LISTEN_PORT, u16(51820)),
        nest(
          WGDEVICE_A_PEERS,
          nest(0, attr(WGPEER_A_PUBLIC_KEY, Buffer.alloc(32, 1)), attr(WGPEER_A_PRESHARED_KEY, Buffer.alloc(32, 0)), attr(WGPEER_A_ENDPOINT, sockaddr4), attr(WGPEER_A_LAST_HANDSHAKE_TIME, handshake), attr(WGPEER_A_RX_BYTES, Buffer.from([5, 0, 0, 0, 0, 0, 0, 0])), nest(WGPEER_A_ALLOWEDIPS, ip4([10, 0, 0, 1], 32))),
          nest(0, attr(WGPEER_A_PUBLIC_KEY, Buffer.alloc(32, 2)), attr(WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL, u16(25)), nest(WGPEER_A_ALLOWEDIPS, ip4([10, 0, 1, 0], 24))),
        ),
      ),
    );
    const second = nlmsg(
      FAMILY,
      NLM_F_MULTI,
      4,
      genl(
        WG_CMD_GET_DEVICE,
        attr(WGDEVICE_A_IFNAME, Buffer.from('wg0\0')),
        nest(WGDEVICE_A_PEERS, nest(0, attr(WGPEER_A_PUBLIC_KEY, Buffer.alloc(32, 2)), nest(WGPEER_A_ALLOWEDIPS, ip4([10, 0, 2, 0], 24))), nest(0, attr(WGPEER_A_PUBLIC_KEY, Buffer.alloc(32, 3)))),
      ),
    );
    const reply = parseReply([first, Buffer.concat([second, done(4)])], 4);
    expect(reply.ok).toBe(true);
    const device = parseDevice('wg0', reply.ok ? reply.messages : []);
    expect(device).toMatchObject({ name: 'wg0', publicKey: key(8), listenPort: 51820 });
    expect(Buffer.from(device.privateKey)).toEqual(Buffer.alloc(32, 7));
    expect(device.peers).toEqual([
      { publicKey: key(1), endpoint: { address: '192.0.2.7', port: 0xca6c }, allowedIPs: ['10.0.0.1/32'], persistentKeepalive: 0, lastHandshakeAt: 1_700_000_000_250, rxBytes: 5n, txBytes: 0n, hasPresharedKey: false },
      { publicKey: key(2), allowedIPs: ['10.0.1.0/24', '10.0.2.0/24'], persistentKeepalive: 25, lastHandshakeAt: null, rxBytes: 0n, txBytes: 0n, hasPresharedKey: false },
      { publicKey: key(3), allowedIPs: [], persistentKeepalive: 0, lastHandshakeAt: null, rxBytes: 0n, txBytes: 0n, hasPresharedKey: false },
    ]);
    // The private key's bytes in the reply buffer are wiped once copied.
    expect(first.includes(Buffer.alloc(32, 7))).toBe(false);
  });

  it('a peer seen twice, not adjacently, is a parse error', () => {
    const peer = (b: number) => nest(0, attr(WGPEER_A_PUBLIC_KEY, Buffer.alloc(32, b)));
    const m = splitMessages([nlmsg(FAMILY, NLM_F_MULTI, 1, genl(0, nest(WGDEVICE_A_PEERS, peer(1), peer(2), peer(1))))]);
    expect(() => parseDevice('wg0', m)).toThrow(NetlinkParseError);
  });

  it('never reads out of bounds: random and truncated replies are NetlinkParseErrors or parse', () => {
    const valid = setPeersRequests(FAMILY, 'wg0', [{ publicKey: key(1), endpoint: { address: '10.0.0.1', port: 1 }, allowedIPs: cidrs('10.0.0.0/8', 'fd00::/8') }])[0]!;
    const check = (datagram: Buffer) => {
      try {
        const reply = parseReply([datagram], 0);
        if (reply.ok) parseDevice('wg0', reply.messages);
      } catch (e) {
        expect(e).toBeInstanceOf(NetlinkParseError);
      }
    };
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), (bytes) => check(Buffer.from(bytes))),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(fc.nat(valid.length), fc.array(fc.record({ at: fc.nat(valid.length - 1), v: fc.integer({ min: 0, max: 255 }) }), { maxLength: 6 }), (cut, edits) => {
        const d = Buffer.from(valid.subarray(0, cut));
        for (const { at, v } of edits) if (at < d.length) d[at] = v;
        check(d);
      }),
      { numRuns: 2000 },
    );
  });

  // What a GET_DEVICE dump says of one peer, and how the kernel lays it out (netlink.c, get_peer).
  interface KernelPeer {
    key: Uint8Array;
    psk: Uint8Array | null;
    endpoint: { v6: boolean; addr: Uint8Array; port: number } | null;
    sec: number;
    nsec: number;
    rx: bigint;
    tx: bigint;
    keepalive: number;
    allowed: Array<{ v6: boolean; addr: Uint8Array; mask: number }>;
  }
  const u64 = (v: bigint) => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(v);
    return b;
  };
  const allowedIp = (a: KernelPeer['allowed'][number]) =>
    nest(0, attr(WGALLOWEDIP_A_CIDR_MASK, Buffer.from([a.mask])), attr(WGALLOWEDIP_A_FAMILY, u16(a.v6 ? AF_INET6 : AF_INET)), attr(WGALLOWEDIP_A_IPADDR, a.addr));
  /** The peer's nest with allowed IPs `ips` (a part of them, when the peer is split across messages). */
  function kernelPeer(p: KernelPeer, ips: KernelPeer['allowed'], first: boolean): Buffer {
    const parts = [attr(WGPEER_A_PUBLIC_KEY, p.key)];
    if (first) {
      parts.push(attr(WGPEER_A_PRESHARED_KEY, p.psk ?? new Uint8Array(32)));
      const time = Buffer.alloc(16);
      time.writeBigInt64LE(BigInt(p.sec), 0);
      time.writeBigInt64LE(BigInt(p.nsec), 8);
      parts.push(attr(WGPEER_A_LAST_HANDSHAKE_TIME, time), attr(WGPEER_A_TX_BYTES, u64(p.tx)), attr(WGPEER_A_RX_BYTES, u64(p.rx)), attr(WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL, u16(p.keepalive)));
      if (p.endpoint !== null) {
        const sa = Buffer.alloc(p.endpoint.v6 ? 28 : 16);
        sa.writeUInt16LE(p.endpoint.v6 ? AF_INET6 : AF_INET, 0);
        sa.writeUInt16BE(p.endpoint.port, 2);
        sa.set(p.endpoint.addr, p.endpoint.v6 ? 8 : 4);
        parts.push(attr(WGPEER_A_ENDPOINT, sa));
      }
    }
    if (ips.length > 0) parts.push(nest(WGPEER_A_ALLOWEDIPS, ...ips.map(allowedIp)));
    return nest(0, ...parts);
  }
  const addressOf = (v6: boolean, addr: Uint8Array) => (v6 ? formatIPv6(addr, 0, false) : Array.from(addr).join('.'));
  const expectedPeer = (p: KernelPeer): PeerStatus => ({
    publicKey: PublicKey.fromBytes(p.key),
    ...(p.endpoint === null ? {} : { endpoint: { address: addressOf(p.endpoint.v6, p.endpoint.addr), port: p.endpoint.port } }),
    allowedIPs: p.allowed.map((a) => `${addressOf(a.v6, a.addr)}/${a.mask}`),
    persistentKeepalive: p.keepalive,
    lastHandshakeAt: p.sec === 0 && p.nsec === 0 ? null : p.sec * 1000 + Math.floor(p.nsec / 1e6),
    rxBytes: p.rx,
    txBytes: p.tx,
    hasPresharedKey: p.psk !== null,
  });
  const addr = (v6: boolean) => fc.uint8Array({ minLength: v6 ? 16 : 4, maxLength: v6 ? 16 : 4 });
  const kernelPeerArb: fc.Arbitrary<KernelPeer> = fc.record({
    key: fc.uint8Array({ minLength: 32, maxLength: 32 }),
    psk: fc.option(fc.uint8Array({ minLength: 32, maxLength: 32 }).filter((k) => k.some((b) => b !== 0))),
    endpoint: fc.option(fc.boolean().chain((v6) => fc.record({ v6: fc.constant(v6), addr: addr(v6), port: fc.integer({ min: 0, max: 65_535 }) }))),
    sec: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 2 ** 40 })),
    nsec: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 999_999_999 })),
    rx: fc.oneof(fc.constant(0n), fc.constant(1n << 32n), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n })),
    tx: fc.oneof(fc.constant(0n), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n })),
    keepalive: fc.integer({ min: 0, max: 65_535 }),
    allowed: fc.array(fc.boolean().chain((v6) => fc.record({ v6: fc.constant(v6), addr: addr(v6), mask: fc.integer({ min: 0, max: v6 ? 128 : 32 }) })), { maxLength: 4 }),
  });

  it('reads any peers as the kernel dumps them, across messages and with allowed IPs continued, and wipes the preshared keys it read', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(kernelPeerArb, { maxLength: 8, selector: (p) => Buffer.from(p.key).toString('hex') }),
        fc.array(fc.nat(), { maxLength: 8 }),
        (peers, cuts) => {
          // Each message carries a run of peers; at a cut that falls inside a peer's allowed IPs, the peer continues in the next.
          const messages: Buffer[][] = [[]];
          for (const [i, p] of peers.entries()) {
            const cut = cuts[i] === undefined || p.allowed.length < 2 ? -1 : cuts[i]! % p.allowed.length;
            if (cut <= 0) {
              messages[messages.length - 1]!.push(kernelPeer(p, p.allowed, true));
              if (cuts[i] !== undefined) messages.push([]);
            } else {
              messages[messages.length - 1]!.push(kernelPeer(p, p.allowed.slice(0, cut), true));
              messages.push([kernelPeer(p, p.allowed.slice(cut), false)]);
            }
          }
          const datagrams = messages.map((ps) => nlmsg(FAMILY, NLM_F_MULTI, 6, genl(WG_CMD_GET_DEVICE, attr(WGDEVICE_A_IFNAME, Buffer.from('wg0\0')), nest(WGDEVICE_A_PEERS, ...ps))));
          const reply = parseReply([...datagrams, done(6)], 6);
          if (!reply.ok) throw new Error('not ok');
          expect(parseDevice('wg0', reply.messages).peers).toEqual(peers.map(expectedPeer));
          for (const p of peers) if (p.psk !== null) expect(datagrams.some((d) => d.includes(Buffer.from(p.psk!)))).toBe(false);
        },
      ),
    );
  });
});
