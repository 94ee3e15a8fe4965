/**
 * The rtnetlink codec (src/route/rtnetlink-protocol.ts): requests byte for
 * byte against the kernel's structs written out by hand (nlmsghdr 16 bytes,
 * rtmsg 12, ifinfomsg 16, then rtattrs), dumps laid out as the kernel lays
 * them out (fib_dump_info, rt6_fill_node), malformed replies, and fuzzing.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { cidr, unchecked } from '../../harness/cidr.js';
import { formatIPv6 } from '../../src/net/address.js';
import { NetlinkParseError, NetlinkRequestError, NLM_F_ACK_TLVS, NLM_F_CAPPED, NLM_F_MULTI, NLMSG_DONE, NLMSG_ERROR, NLMSG_HDRLEN, NLMSGERR_ATTR_MSG, parseAcks, parseReply, splitMessages } from '../../src/install/netlink-protocol.js';
import {
  delRouteRequest,
  getAddressesRequest,
  getLinkRequest,
  getRoutesRequest,
  IFINFOMSG_SIZE,
  MAX_TABLE,
  newRouteRequest,
  parseAddresses,
  parseLinkIndex,
  parseRoutes,
  RTA_DST,
  RTA_OIF,
  RTA_TABLE,
  IFA_ADDRESS,
  IFA_LOCAL,
  IFADDRMSG_SIZE,
  RTM_NEWADDR,
  RTM_NEWLINK,
  RTM_NEWROUTE,
  type RouteTarget,
} from '../../src/route/rtnetlink-protocol.js';

const MAIN: RouteTarget = { table: 254, ifindex: 5, protocol: 249 };
const BIG: RouteTarget = { table: 1_000_000, ifindex: 5, protocol: 249 };
/** What a caller that is not a type checker might pass. */
const untyped = <T>(v: unknown) => v as T;

/** Bytes from hex written with spaces and line breaks. */
const hex = (...lines: string[]) => Buffer.from(lines.join('').replace(/\s+/g, ''), 'hex');

/* ---- reply builders: the kernel's layouts, independent of the code under test ---- */

const AF_INET = 2;
const AF_INET6 = 10;
const RTNL_FAMILY_IPMR = 128;
const RTA_PRIORITY = 6;
const RTA_MULTIPATH = 9;
const RTA_CACHEINFO = 12;
const RTA_PREF = 20;
const RT_TABLE_COMPAT = 252;

function attr(type: number, data: Uint8Array): Buffer {
  const out = Buffer.alloc((4 + data.length + 3) & ~3);
  out.writeUInt16LE(4 + data.length, 0);
  out.writeUInt16LE(type, 2);
  out.set(data, 4);
  return out;
}
const u32 = (v: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0);
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
const done = (seq: number, status = 0) => nlmsg(NLMSG_DONE, NLM_F_MULTI, seq, u32(status));
const ack = (seq: number, error = 0, text?: string) =>
  nlmsg(NLMSG_ERROR, NLM_F_CAPPED | (text === undefined ? 0 : NLM_F_ACK_TLVS), seq, Buffer.concat([u32(error), Buffer.alloc(NLMSG_HDRLEN), text === undefined ? Buffer.alloc(0) : attr(NLMSGERR_ATTR_MSG, Buffer.from(`${text}\0`))]));

interface KernelRoute {
  v6: boolean;
  addr: Uint8Array;
  prefix: number;
  table: number;
  protocol: number;
  oif: number | null;
}
/** A dumped route as the kernel writes it: rtm_table is the table or RT_TABLE_COMPAT, RTA_TABLE always, no RTA_DST for a /0. */
function kernelRoute(r: KernelRoute, seq = 1): Buffer {
  const rtm = Buffer.from([r.v6 ? AF_INET6 : AF_INET, r.prefix, 0, 0, r.table > 255 ? RT_TABLE_COMPAT : r.table, r.protocol, r.v6 ? 0 : 253, 1, 0, 0, 0, 0]);
  const attrs = [attr(RTA_TABLE, u32(r.table))];
  if (r.prefix > 0) attrs.push(attr(RTA_DST, r.addr));
  if (r.v6) attrs.push(attr(RTA_PRIORITY, u32(1024)));
  if (r.oif === null) attrs.push(attr(RTA_MULTIPATH, Buffer.from([16, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0])));
  else attrs.push(attr(RTA_OIF, u32(r.oif)));
  if (r.v6) attrs.push(attr(RTA_CACHEINFO, Buffer.alloc(16)), attr(RTA_PREF, Buffer.from([0])));
  return nlmsg(RTM_NEWROUTE, NLM_F_MULTI, seq, Buffer.concat([rtm, ...attrs]));
}
const dump = (...messages: Buffer[]) => {
  const reply = parseReply([Buffer.concat(messages), done(1)], 1);
  if (!reply.ok) throw new Error('not ok');
  return reply.messages;
};

describe('rtnetlink requests, byte for byte', () => {
  it('RTM_NEWROUTE, IPv4, table main', () => {
    expect(newRouteRequest(cidr('10.1.2.3/32'), MAIN, 7)).toEqual(
      hex(
        '34000000 1800 0505 07000000 00000000', // nlmsghdr: 52 bytes, RTM_NEWROUTE, REQUEST|ACK|REPLACE|CREATE, seq 7, to the kernel
        '02 20 00 00 fe f9 fd 01 00000000', //     rtmsg: AF_INET, /32, table 254, proto 249, scope link, unicast
        '0800 0f00 fe000000', //                   RTA_TABLE 254
        '0800 0100 0a010203', //                   RTA_DST 10.1.2.3
        '0800 0400 05000000', //                   RTA_OIF 5
      ),
    );
  });

  it('RTM_NEWROUTE, IPv6, a table past a byte (rtm_table unspecified, RTA_TABLE carries it)', () => {
    expect(newRouteRequest(cidr('fd00:1::/64'), BIG, 0x01020304)).toEqual(
      hex(
        '40000000 1800 0505 04030201 00000000', // 64 bytes
        '0a 40 00 00 00 f9 fd 01 00000000', //     AF_INET6, /64, table 0
        '0800 0f00 40420f00', //                   RTA_TABLE 1,000,000
        '1400 0100 fd000001000000000000000000000000', // RTA_DST, 16 bytes
        '0800 0400 05000000',
      ),
    );
  });

  it('RTM_DELROUTE names the protocol, the interface and the table; any scope', () => {
    expect(delRouteRequest(cidr('192.0.2.0/24'), MAIN, 9)).toEqual(
      hex(
        '34000000 1900 0500 09000000 00000000', // RTM_DELROUTE, REQUEST|ACK
        '02 18 00 00 fe f9 ff 01 00000000', //     /24, scope nowhere (any)
        '0800 0f00 fe000000',
        '0800 0100 c0000200',
        '0800 0400 05000000',
      ),
    );
  });

  it('RTM_GETROUTE dump of one family, filtered by table, protocol and interface; the rest of rtmsg zero (strict checking)', () => {
    expect(getRoutesRequest(6, BIG, 3)).toEqual(
      hex(
        '2c000000 1a00 0103 03000000 00000000', // 44 bytes, RTM_GETROUTE, REQUEST|DUMP
        '0a 00 00 00 00 f9 00 00 00000000',
        '0800 0f00 40420f00',
        '0800 0400 05000000',
      ),
    );
  });

  it('RTM_GETLINK by name', () => {
    expect(getLinkRequest('wg0', 1)).toEqual(
      hex(
        '28000000 1200 0500 01000000 00000000', // 40 bytes, RTM_GETLINK, REQUEST|ACK
        '00 00 0000 00000000 00000000 00000000', // ifinfomsg, all zero
        '0800 0300 77673000', //                    IFLA_IFNAME "wg0\0"
      ),
    );
  });

  it('refuses bad input before building anything', () => {
    const bad: [string, () => unknown][] = [
      ['host bits', () => newRouteRequest(unchecked(4, [10, 0, 0, 1], 24), MAIN, 1)],
      ['prefix', () => delRouteRequest(unchecked(4, [10, 0, 0, 0], 33), MAIN, 1)],
      ['address length', () => newRouteRequest(unchecked(6, [10, 0, 0, 0], 8), MAIN, 1)],
      ['not a CIDR', () => newRouteRequest(untyped('10.0.0.0/8'), MAIN, 1)],
      ['table 0', () => newRouteRequest(cidr('10.0.0.0/8'), { ...MAIN, table: 0 }, 1)],
      ['table too big', () => newRouteRequest(cidr('10.0.0.0/8'), { ...MAIN, table: MAX_TABLE + 1 }, 1)],
      ['table not an integer', () => getRoutesRequest(4, { ...MAIN, table: 1.5 }, 1)],
      ['ifindex 0', () => newRouteRequest(cidr('10.0.0.0/8'), { ...MAIN, ifindex: 0 }, 1)],
      ['ifindex past s32', () => delRouteRequest(cidr('10.0.0.0/8'), { ...MAIN, ifindex: 2 ** 31 }, 1)],
      ['protocol 0', () => newRouteRequest(cidr('10.0.0.0/8'), { ...MAIN, protocol: 0 }, 1)],
      ['protocol 256', () => newRouteRequest(cidr('10.0.0.0/8'), { ...MAIN, protocol: 256 }, 1)],
      ['no target', () => newRouteRequest(cidr('10.0.0.0/8'), untyped(null), 1)],
      ['family', () => getRoutesRequest(untyped(5), MAIN, 1)],
      ['interface name', () => getLinkRequest('wg0/../x', 1)],
      ['long interface name', () => getLinkRequest('a'.repeat(16), 1)],
    ];
    for (const [what, build] of bad) expect(build, what).toThrow(NetlinkRequestError);
  });
});

describe('rtnetlink replies', () => {
  it('reads a dump of both families, a default route, a table past a byte and a route with no interface', () => {
    const messages = dump(
      kernelRoute({ v6: false, addr: Uint8Array.of(10, 1, 2, 3), prefix: 32, table: 254, protocol: 249, oif: 5 }),
      kernelRoute({ v6: false, addr: new Uint8Array(4), prefix: 0, table: 254, protocol: 3, oif: 2 }),
      kernelRoute({ v6: true, addr: hex('fd000001000000000000000000000000'), prefix: 64, table: 1_000_000, protocol: 249, oif: 5 }),
      kernelRoute({ v6: true, addr: hex('20010db8000000000000000000000000'), prefix: 32, table: 100, protocol: 186, oif: null }),
    );
    expect(parseRoutes(messages)).toEqual([
      { cidr: cidr('10.1.2.3/32'), table: 254, protocol: 249, oif: 5 },
      { cidr: cidr('0.0.0.0/0'), table: 254, protocol: 3, oif: 2 },
      { cidr: cidr('fd00:1::/64'), table: 1_000_000, protocol: 249, oif: 5 },
      { cidr: cidr('2001:db8::/32'), table: 100, protocol: 186, oif: null },
    ]);
  });

  it('takes the table from rtm_table when RTA_TABLE is missing, and skips other families', () => {
    const rtm = (family: number) => Buffer.from([family, 24, 0, 0, 100, 249, 253, 1, 0, 0, 0, 0]);
    const messages = splitMessages([
      nlmsg(RTM_NEWROUTE, NLM_F_MULTI, 1, Buffer.concat([rtm(AF_INET), attr(RTA_DST, Uint8Array.of(10, 9, 8, 0))])),
      nlmsg(RTM_NEWROUTE, NLM_F_MULTI, 1, Buffer.concat([rtm(RTNL_FAMILY_IPMR), attr(RTA_DST, Uint8Array.of(1))])),
    ]);
    expect(parseRoutes(messages)).toEqual([{ cidr: cidr('10.9.8.0/24'), table: 100, protocol: 249, oif: null }]);
  });

  it('copies each destination out of the reply', () => {
    const datagram = kernelRoute({ v6: false, addr: Uint8Array.of(10, 0, 0, 1), prefix: 32, table: 254, protocol: 249, oif: 5 });
    const [route] = parseRoutes(splitMessages([datagram]));
    datagram.fill(0);
    expect(route!.cidr).toEqual(cidr('10.0.0.1/32'));
  });

  it('malformed routes are NetlinkParseErrors', () => {
    const rtm = (prefix: number, family = AF_INET) => Buffer.from([family, prefix, 0, 0, 254, 249, 253, 1, 0, 0, 0, 0]);
    const bad: [string, Buffer][] = [
      ['rtmsg cut short', Buffer.from([AF_INET, 32, 0, 0, 254])],
      ['prefix past 32', Buffer.concat([rtm(33), attr(RTA_DST, Uint8Array.of(10, 0, 0, 1))])],
      ['prefix past 128', Buffer.concat([rtm(129, AF_INET6), attr(RTA_DST, new Uint8Array(16))])],
      ['IPv6 destination of 4 bytes', Buffer.concat([rtm(32, AF_INET6), attr(RTA_DST, Uint8Array.of(10, 0, 0, 1))])],
      ['IPv4 destination of 5 bytes', Buffer.concat([rtm(32), attr(RTA_DST, Uint8Array.of(10, 0, 0, 1, 0))])],
      ['no destination for a /8', rtm(8)],
      ['host bits set', Buffer.concat([rtm(8), attr(RTA_DST, Uint8Array.of(10, 0, 0, 1))])],
      ['RTA_TABLE of 2 bytes', Buffer.concat([rtm(0), attr(RTA_TABLE, Uint8Array.of(1, 0))])],
      ['RTA_OIF of 3 bytes', Buffer.concat([rtm(0), attr(RTA_OIF, Uint8Array.of(1, 0, 0))])],
      ['attribute overrunning the message', Buffer.concat([rtm(0), Buffer.from([40, 0, RTA_OIF, 0, 1, 0, 0, 0])])],
      ['attribute length under its header', Buffer.concat([rtm(0), Buffer.from([2, 0, RTA_OIF, 0])])],
    ];
    for (const [what, payload] of bad) expect(() => parseRoutes(splitMessages([nlmsg(RTM_NEWROUTE, NLM_F_MULTI, 1, payload)])), what).toThrow(NetlinkParseError);
    expect(() => parseRoutes(splitMessages([nlmsg(RTM_NEWLINK, NLM_F_MULTI, 1, rtm(0))])), 'not a route').toThrow(NetlinkParseError);
  });

  it('reads the interface index of a GETLINK reply, and refuses one without a valid index', () => {
    const link = (index: number, size = IFINFOMSG_SIZE) => {
      const ifi = Buffer.alloc(size);
      if (size >= 8) ifi.writeInt32LE(index, 4);
      return nlmsg(RTM_NEWLINK, 0, 1, Buffer.concat([ifi, attr(3, Buffer.from('wg0\0'))]));
    };
    const reply = parseReply([link(7), ack(1)], 1);
    expect(reply.ok && parseLinkIndex(reply.messages)).toBe(7);
    expect(() => parseLinkIndex([])).toThrow(NetlinkParseError);
    expect(() => parseLinkIndex(splitMessages([link(0)]))).toThrow(NetlinkParseError);
    expect(() => parseLinkIndex(splitMessages([link(-1)]))).toThrow(NetlinkParseError);
    expect(() => parseLinkIndex(splitMessages([nlmsg(RTM_NEWLINK, 0, 1, Buffer.alloc(IFINFOMSG_SIZE - 4))]))).toThrow(NetlinkParseError);
  });

  it("reads a batch's answers in order: each message's ack or error, with the kernel's text", () => {
    const datagrams = [ack(4), ack(3, -1), ack(4, -100, 'Device for nexthop is not up'), ack(4), ack(4, -3)];
    expect(parseAcks(datagrams, 4, 4)).toEqual([null, { errno: 100, message: 'Device for nexthop is not up' }, null, { errno: 3, message: null }]);
    expect(() => parseAcks(datagrams, 4, 5), 'an answer missing').toThrow(NetlinkParseError);
    expect(() => parseAcks(datagrams, 4, 3), 'an answer too many').toThrow(NetlinkParseError);
    expect(() => parseAcks([ack(4), kernelRoute({ v6: false, addr: new Uint8Array(4), prefix: 0, table: 254, protocol: 249, oif: 1 }, 4)], 4, 2), 'a route among acks').toThrow(NetlinkParseError);
  });

  it('a dump that failed (a table that does not exist) is a kernel error, not routes', () => {
    expect(parseReply([done(1, -2)], 1)).toEqual({ ok: false, error: { errno: 2, message: null } });
  });

  const kernelRouteArb: fc.Arbitrary<KernelRoute> = fc.boolean().chain((v6) =>
    fc.record({
      v6: fc.constant(v6),
      addr: fc.uint8Array({ minLength: v6 ? 16 : 4, maxLength: v6 ? 16 : 4 }),
      prefix: fc.integer({ min: 0, max: v6 ? 128 : 32 }),
      table: fc.oneof(fc.constant(254), fc.integer({ min: 1, max: MAX_TABLE })),
      protocol: fc.integer({ min: 0, max: 255 }),
      oif: fc.option(fc.integer({ min: 1, max: 2 ** 31 - 1 })),
    }),
  );
  /** The network address: host bits cleared, as the kernel keeps a route's destination. */
  const network = (r: KernelRoute) => r.addr.map((b, i) => b & (0xff << (8 - Math.min(Math.max(r.prefix - i * 8, 0), 8))));

  it('reads any routes as the kernel dumps them', () => {
    fc.assert(
      fc.property(fc.array(kernelRouteArb, { maxLength: 12 }), (routes) => {
        const kernel = routes.map((r) => ({ ...r, addr: network(r) }));
        const text = (r: KernelRoute) => `${r.v6 ? formatIPv6(r.addr, 0, false) : Array.from(r.addr).join('.')}/${r.prefix}`;
        expect(parseRoutes(dump(...kernel.map((r) => kernelRoute(r))))).toEqual(kernel.map((r) => ({ cidr: cidr(text(r)), table: r.table, protocol: r.protocol, oif: r.oif })));
      }),
    );
  });

  it('never reads out of bounds: random and mutated replies are NetlinkParseErrors or parse', () => {
    const valid = Buffer.concat([
      kernelRoute({ v6: false, addr: Uint8Array.of(10, 1, 2, 3), prefix: 32, table: 254, protocol: 249, oif: 5 }),
      kernelRoute({ v6: true, addr: hex('fd000001000000000000000000000000'), prefix: 64, table: 1_000_000, protocol: 249, oif: null }),
    ]);
    const check = (datagram: Buffer) => {
      try {
        const reply = parseReply([datagram], 1);
        if (reply.ok) parseRoutes(reply.messages);
        parseAcks([datagram], 1, 1);
      } catch (e) {
        expect(e).toBeInstanceOf(NetlinkParseError);
      }
    };
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => check(Buffer.from(bytes))),
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
});

/* ---- interface addresses (RTM_GETADDR) ---- */

const IFA_LABEL = 3;
const IFA_BROADCAST = 4;
const IFA_CACHEINFO = 6;
const IFA_FLAGS = 8;
const RT_SCOPE_UNIVERSE = 0;
const RT_SCOPE_LINK = 253;

/**
 * An address as the kernel dumps it: IPv4 (inet_fill_ifaddr) with IFA_ADDRESS, IFA_LOCAL, a label, a
 * broadcast, flags and cacheinfo; IPv6 (inet6_fill_ifaddr) with IFA_ADDRESS alone unless it has a peer.
 */
function kernelAddress(o: { v6: boolean; index: number; prefix: number; local: Uint8Array; peer?: Uint8Array }, seq = 1): Buffer {
  const ifa = Buffer.alloc(IFADDRMSG_SIZE);
  ifa.set([o.v6 ? AF_INET6 : AF_INET, o.prefix, 0, o.v6 && o.local[0] === 0xfe ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE]);
  ifa.writeUInt32LE(o.index, 4);
  const attrs: Buffer[] = [];
  if (o.v6) {
    if (o.peer) attrs.push(attr(IFA_LOCAL, o.local), attr(IFA_ADDRESS, o.peer));
    else attrs.push(attr(IFA_ADDRESS, o.local));
    attrs.push(attr(IFA_CACHEINFO, Buffer.alloc(16)), attr(IFA_FLAGS, u32(0x80)));
  } else {
    attrs.push(attr(IFA_ADDRESS, o.peer ?? o.local), attr(IFA_LOCAL, o.local), attr(IFA_LABEL, Buffer.from('wg0\0')));
    if (!o.peer) attrs.push(attr(IFA_BROADCAST, Uint8Array.of(o.local[0]!, o.local[1]!, o.local[2]!, 255)));
    attrs.push(attr(IFA_FLAGS, u32(0x80)), attr(IFA_CACHEINFO, Buffer.alloc(16)));
  }
  return nlmsg(RTM_NEWADDR, NLM_F_MULTI, seq, Buffer.concat([ifa, ...attrs]));
}

describe('interface addresses', () => {
  it('RTM_GETADDR: a dump of both families of one interface, byte for byte', () => {
    expect(getAddressesRequest(5, 1)).toEqual(
      hex(
        '18000000 1600 0103 01000000 00000000', // 24 bytes, RTM_GETADDR, REQUEST|DUMP
        '00 00 00 00 05000000', //                 ifaddrmsg: AF_UNSPEC, prefix, flags, scope 0, index 5
      ),
    );
    for (const bad of [0, -1, 2 ** 31, 1.5]) expect(() => getAddressesRequest(bad, 1), String(bad)).toThrow(NetlinkRequestError);
  });

  it("reads this interface's IPv4 and IPv6 addresses, the local one of a point-to-point link, and skips other interfaces'", () => {
    const messages = dump(
      kernelAddress({ v6: false, index: 1, prefix: 8, local: Uint8Array.of(127, 0, 0, 1) }),
      kernelAddress({ v6: false, index: 5, prefix: 24, local: Uint8Array.of(10, 0, 0, 1) }),
      kernelAddress({ v6: false, index: 5, prefix: 32, local: Uint8Array.of(10, 9, 0, 1), peer: Uint8Array.of(10, 9, 0, 2) }),
      kernelAddress({ v6: true, index: 5, prefix: 64, local: hex('fd000000000000000000000000000001') }),
      kernelAddress({ v6: true, index: 5, prefix: 128, local: hex('fd000000000000000000000000000009'), peer: hex('fd00000000000000000000000000000a') }),
      kernelAddress({ v6: true, index: 5, prefix: 64, local: hex('fe800000000000000000000000000001') }),
      kernelAddress({ v6: true, index: 1, prefix: 128, local: hex('00000000000000000000000000000001') }),
    );
    const found = parseAddresses(messages, 5).map((a) => `${a.address.family === 4 ? Array.from(a.address.bytes).join('.') : formatIPv6(a.address.bytes, 0, false)}/${a.prefix}`);
    expect(found).toEqual(['10.0.0.1/24', '10.9.0.1/32', 'fd00::1/64', 'fd00::9/128', 'fe80::1/64']);
    expect(parseAddresses(messages, 9)).toEqual([]);
    expect(parseAddresses(dump(), 5)).toEqual([]);
  });

  it('refuses a malformed address message', () => {
    const ifa = (family: number, prefix: number, ...attrs: Buffer[]) => {
      const h = Buffer.alloc(IFADDRMSG_SIZE);
      h.set([family, prefix]);
      h.writeUInt32LE(5, 4);
      return splitMessages([nlmsg(RTM_NEWADDR, NLM_F_MULTI, 1, Buffer.concat([h, ...attrs]))]);
    };
    const bad: Array<[string, ReturnType<typeof splitMessages>]> = [
      ['short ifaddrmsg', splitMessages([nlmsg(RTM_NEWADDR, NLM_F_MULTI, 1, Buffer.alloc(IFADDRMSG_SIZE - 1))])],
      ['no address', ifa(AF_INET, 24, attr(IFA_LABEL, Buffer.from('wg0\0')))],
      ['IPv4 address of 16 bytes', ifa(AF_INET, 24, attr(IFA_LOCAL, Buffer.alloc(16)))],
      ['IPv6 address of 4 bytes', ifa(AF_INET6, 64, attr(IFA_ADDRESS, Buffer.alloc(4)))],
      ['prefix past the family', ifa(AF_INET, 33, attr(IFA_LOCAL, Buffer.alloc(4)))],
      ['not an address', splitMessages([link5()])],
    ];
    for (const [what, messages] of bad) expect(() => parseAddresses(messages, 5), what).toThrow(NetlinkParseError);
  });

  it('never reads out of bounds: random and mutated dumps are NetlinkParseErrors or parse', () => {
    const valid = Buffer.concat([
      kernelAddress({ v6: false, index: 5, prefix: 24, local: Uint8Array.of(10, 0, 0, 1) }),
      kernelAddress({ v6: true, index: 5, prefix: 64, local: hex('fd000000000000000000000000000001') }),
    ]);
    fc.assert(
      fc.property(fc.nat(valid.length), fc.array(fc.record({ at: fc.nat(valid.length - 1), v: fc.integer({ min: 0, max: 255 }) }), { maxLength: 6 }), (cut, edits) => {
        const d = Buffer.from(valid.subarray(0, cut));
        for (const { at, v } of edits) if (at < d.length) d[at] = v;
        try {
          const reply = parseReply([d, done(1)], 1);
          if (reply.ok) parseAddresses(reply.messages, 5);
        } catch (e) {
          expect(e).toBeInstanceOf(NetlinkParseError);
        }
      }),
      { numRuns: 2000 },
    );
  });
});

function link5(): Buffer {
  const ifi = Buffer.alloc(IFINFOMSG_SIZE);
  ifi.writeInt32LE(5, 4);
  return nlmsg(RTM_NEWLINK, 0, 1, ifi);
}
