/**
 * rtnetlink as pure functions: the requests that add and remove one route,
 * dump a table's routes, look an interface up by name and dump its
 * addresses, and those replies parsed. No I/O here; routes.ts owns the socket. The framing
 * (message header, attributes, acks and errors) is netlink-protocol.ts's;
 * the constants are those of <linux/rtnetlink.h> and <linux/if_link.h>.
 *
 * A peer's route is unicast, through one interface (RTA_OIF), scope link,
 * with no gateway: WireGuard itself picks the peer by the destination among
 * the allowed IPs, so the route only has to name the device. Requests are
 * checked before they are built; replies are parsed defensively, as the
 * WireGuard ones are: a malformed one is a NetlinkParseError, never an
 * out-of-bounds read.
 */
import { IPV4_BYTES, IPV6_BYTES, type IpAddress, type IpFamily } from '../net/address.js';
import { cidrFromBytes, type Cidr } from '../net/cidr.js';
import {
  AF_INET,
  AF_INET6,
  AttrCursor,
  AttrWriter,
  checkAllowedIp,
  checkInteger,
  checkInterfaceName,
  netlinkMessage,
  NetlinkParseError,
  NetlinkRequestError,
  NLM_F_ACK,
  NLM_F_CREATE,
  NLM_F_DUMP,
  NLM_F_REPLACE,
  NLM_F_REQUEST,
  type NetlinkMessage,
} from '../install/netlink-protocol.js';

export const NETLINK_ROUTE = 0;

export const RTM_NEWLINK = 16;
export const RTM_GETLINK = 18;
export const RTM_NEWADDR = 20;
export const RTM_GETADDR = 22;
export const RTM_NEWROUTE = 24;
export const RTM_DELROUTE = 25;
export const RTM_GETROUTE = 26;

/** struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type (a byte each), flags (u32). */
export const RTMSG_SIZE = 12;
/** struct ifinfomsg: family, pad (bytes), type (u16), index (s32), flags, change (u32). */
export const IFINFOMSG_SIZE = 16;
const IFINFOMSG_INDEX = 4;
/** struct ifaddrmsg: family, prefixlen, flags, scope (bytes), index (u32). */
export const IFADDRMSG_SIZE = 8;
const IFADDRMSG_INDEX = 4;

export const RTA_DST = 1;
export const RTA_OIF = 4;
export const RTA_TABLE = 15;
export const IFLA_IFNAME = 3;
/** The address at the other end on a point-to-point link, else the local one. */
export const IFA_ADDRESS = 1;
/** The local address, when it differs from IFA_ADDRESS (point-to-point, IPv4). */
export const IFA_LOCAL = 2;
/** A dump of every family. */
const AF_UNSPEC = 0;

export const RT_SCOPE_LINK = 253;
/** In a removal: a route of any scope. */
export const RT_SCOPE_NOWHERE = 255;
export const RTN_UNICAST = 1;

/** rtm_table when the table does not fit its byte: RTA_TABLE carries it (iproute2 writes the same). */
export const RT_TABLE_UNSPEC = 0;
export const RT_TABLE_MAIN = 254;
/** The kernel's own table: the host's addresses and broadcasts. */
export const RT_TABLE_LOCAL = 255;
/** Largest table number that fits its byte in rtmsg. */
const RTM_TABLE_MAX = 255;
export const MAX_TABLE = 0xffff_ffff;
/** An ifindex is a positive s32. */
const MAX_IFINDEX = 0x7fff_ffff;
/** Route protocols 1..255; 0 (RTPROT_UNSPEC) means "any" in a removal or dump. */
const MAX_PROTOCOL = 255;

/** Where routes go: a table, through an interface, marked with a protocol. */
export interface RouteTarget {
  table: number;
  ifindex: number;
  protocol: number;
}

/** A route as a dump lists it. */
export interface Route {
  /** The destination; its family is the route's. */
  cidr: Cidr;
  table: number;
  protocol: number;
  /** The interface it leaves through; null for a route that names none (multipath, blackhole). */
  oif: number | null;
}

function checkTarget(t: RouteTarget): RouteTarget {
  if (t === null || typeof t !== 'object') throw new NetlinkRequestError('route target must be an object');
  checkInteger(t.table, MAX_TABLE, 'route table', 1);
  checkInteger(t.ifindex, MAX_IFINDEX, 'interface index', 1);
  checkInteger(t.protocol, MAX_PROTOCOL, 'route protocol', 1);
  return t;
}

const familyCode = (family: IpFamily) => (family === 4 ? AF_INET : AF_INET6);

function rtmsg(family: number, dstLength: number, t: RouteTarget, scope: number, type: number): Uint8Array {
  const table = t.table <= RTM_TABLE_MAX ? t.table : RT_TABLE_UNSPEC;
  return Uint8Array.of(family, dstLength, 0, 0, table, t.protocol, scope, type, 0, 0, 0, 0);
}

/** RTA_TABLE, RTA_DST, RTA_OIF: the table always as a u32, so one spelling serves every table. */
function routeAttrs(cidr: Cidr, t: RouteTarget): Uint8Array {
  const a = new AttrWriter(64);
  a.u32(RTA_TABLE, t.table);
  a.raw(RTA_DST, cidr.bytes);
  a.u32(RTA_OIF, t.ifindex);
  return a.bytes();
}

/**
 * RTM_NEWROUTE for `cidr` through the target's interface. CREATE|REPLACE
 * makes it idempotent: a route of the same destination and metric in that
 * table is replaced, whatever its protocol, as `ip route replace` does.
 */
export function newRouteRequest(cidr: Cidr, target: RouteTarget, seq: number): Buffer {
  const c = checkAllowedIp(cidr);
  const t = checkTarget(target);
  const flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE;
  return netlinkMessage(RTM_NEWROUTE, flags, seq, rtmsg(familyCode(c.family), c.prefix, t, RT_SCOPE_LINK, RTN_UNICAST), routeAttrs(c, t));
}

/**
 * RTM_DELROUTE for `cidr`: only a route of the target's protocol, through
 * its interface, in its table. The kernel matches every field given, so
 * another protocol's route to the same destination is left alone.
 */
export function delRouteRequest(cidr: Cidr, target: RouteTarget, seq: number): Buffer {
  const c = checkAllowedIp(cidr);
  const t = checkTarget(target);
  return netlinkMessage(RTM_DELROUTE, NLM_F_REQUEST | NLM_F_ACK, seq, rtmsg(familyCode(c.family), c.prefix, t, RT_SCOPE_NOWHERE, RTN_UNICAST), routeAttrs(c, t));
}

/**
 * A dump of one family's routes of the target's table, protocol and
 * interface. The kernel filters by them on a socket with strict checking
 * (NETLINK_GET_STRICT_CHK, which the addon sets for rtnetlink; its
 * header fields other than those must then be zero); otherwise it sends
 * every route, and parseRoutes' caller filters.
 */
export function getRoutesRequest(family: IpFamily, target: RouteTarget, seq: number): Buffer {
  if (family !== 4 && family !== 6) throw new NetlinkRequestError(`family must be 4 or 6, got ${String(family)}`);
  const t = checkTarget(target);
  const a = new AttrWriter(32);
  a.u32(RTA_TABLE, t.table);
  a.u32(RTA_OIF, t.ifindex);
  return netlinkMessage(RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP, seq, rtmsg(familyCode(family), 0, t, 0, 0), a.bytes());
}

/** RTM_GETLINK by name: the reply carries the interface's index. */
export function getLinkRequest(ifname: string, seq: number): Buffer {
  const a = new AttrWriter(32);
  a.string(IFLA_IFNAME, checkInterfaceName(ifname));
  return netlinkMessage(RTM_GETLINK, NLM_F_REQUEST | NLM_F_ACK, seq, new Uint8Array(IFINFOMSG_SIZE), a.bytes());
}

/** The interface index in a GETLINK reply. */
export function parseLinkIndex(messages: readonly NetlinkMessage[]): number {
  const link = messages.find((m) => m.type === RTM_NEWLINK);
  if (link === undefined) throw new NetlinkParseError('GETLINK reply without a link');
  if (link.payload.length < IFINFOMSG_SIZE) throw new NetlinkParseError(`ifinfomsg: ${link.payload.length} bytes, expected ${IFINFOMSG_SIZE}`);
  const index = link.payload.readInt32LE(IFINFOMSG_INDEX);
  if (index < 1) throw new NetlinkParseError(`link with interface index ${index}`);
  return index;
}

/**
 * The IPv4 and IPv6 routes in a dump's messages, in the kernel's order;
 * routes of other families (multicast tables) are skipped. Read in place
 * with one cursor: a table may hold many thousands.
 */
export function parseRoutes(messages: readonly NetlinkMessage[]): Route[] {
  const out: Route[] = [];
  const a = new AttrCursor();
  for (const m of messages) {
    if (m.type !== RTM_NEWROUTE) throw new NetlinkParseError(`message of type ${m.type} in a route dump`);
    const p = m.payload;
    if (p.length < RTMSG_SIZE) throw new NetlinkParseError(`rtmsg: ${p.length} bytes, expected ${RTMSG_SIZE}`);
    const family: IpFamily | 0 = p[0] === AF_INET ? 4 : p[0] === AF_INET6 ? 6 : 0;
    if (family === 0) continue;
    const size = family === 4 ? IPV4_BYTES : IPV6_BYTES;
    const prefix = p[1]!;
    let table = p[4]!;
    let dstAt = -1;
    let oif: number | null = null;
    a.reset(p, RTMSG_SIZE, p.length);
    while (a.step()) {
      if (a.type === RTA_TABLE) table = p.readUInt32LE(a.need(4, 'RTA_TABLE'));
      else if (a.type === RTA_OIF) oif = p.readUInt32LE(a.need(4, 'RTA_OIF'));
      else if (a.type === RTA_DST) {
        if (a.to - a.from !== size) throw new NetlinkParseError(`RTA_DST: ${a.to - a.from} bytes, expected ${size}`);
        dstAt = a.from;
      }
    }
    // A default route (prefix 0) comes without RTA_DST.
    if (dstAt < 0 && prefix !== 0) throw new NetlinkParseError(`route with prefix ${prefix} and no RTA_DST`);
    const bytes = dstAt < 0 ? new Uint8Array(size) : new Uint8Array(p.subarray(dstAt, dstAt + size));
    const cidr = cidrFromBytes(family, bytes, prefix);
    if (cidr === null) throw new NetlinkParseError(`route destination with prefix ${prefix}: out of range or host bits set`);
    out.push({ cidr, table, protocol: p[5]!, oif });
  }
  return out;
}

/** An address configured on an interface, as `ip address` lists it. */
export interface InterfaceAddress {
  address: IpAddress;
  /** The prefix length it was configured with (10.0.0.1/24: 24). */
  prefix: number;
}

/**
 * A dump of the addresses of interface `ifindex`, IPv4 and IPv6 in one
 * exchange. With strict checking (the addon sets it for rtnetlink) the
 * kernel sends only that interface's, and the other header fields must be
 * zero; without it, every interface's, and parseAddresses filters.
 */
export function getAddressesRequest(ifindex: number, seq: number): Buffer {
  checkInteger(ifindex, MAX_IFINDEX, 'interface index', 1);
  const header = new Uint8Array(IFADDRMSG_SIZE);
  header[0] = AF_UNSPEC;
  new DataView(header.buffer).setUint32(IFADDRMSG_INDEX, ifindex, true);
  return netlinkMessage(RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, seq, header, new Uint8Array(0));
}

/**
 * The IPv4 and IPv6 addresses of interface `ifindex` in a dump's messages,
 * in the kernel's order; other interfaces' and other families' are
 * skipped. The local address is IFA_LOCAL where the kernel gives one (on a
 * point-to-point link IFA_ADDRESS is the other end's), else IFA_ADDRESS,
 * as iproute2 reads them.
 */
export function parseAddresses(messages: readonly NetlinkMessage[], ifindex: number): InterfaceAddress[] {
  const out: InterfaceAddress[] = [];
  const a = new AttrCursor();
  for (const m of messages) {
    if (m.type !== RTM_NEWADDR) throw new NetlinkParseError(`message of type ${m.type} in an address dump`);
    const p = m.payload;
    if (p.length < IFADDRMSG_SIZE) throw new NetlinkParseError(`ifaddrmsg: ${p.length} bytes, expected ${IFADDRMSG_SIZE}`);
    const family: IpFamily | 0 = p[0] === AF_INET ? 4 : p[0] === AF_INET6 ? 6 : 0;
    if (family === 0 || p.readUInt32LE(IFADDRMSG_INDEX) !== ifindex) continue;
    const size = family === 4 ? IPV4_BYTES : IPV6_BYTES;
    const prefix = p[1]!;
    if (prefix > size * 8) throw new NetlinkParseError(`address with prefix ${prefix} for IPv${family}`);
    let localAt = -1;
    let addressAt = -1;
    a.reset(p, IFADDRMSG_SIZE, p.length);
    while (a.step()) {
      if (a.type !== IFA_LOCAL && a.type !== IFA_ADDRESS) continue;
      const name = a.type === IFA_LOCAL ? 'IFA_LOCAL' : 'IFA_ADDRESS';
      if (a.to - a.from !== size) throw new NetlinkParseError(`${name}: ${a.to - a.from} bytes, expected ${size}`);
      if (a.type === IFA_LOCAL) localAt = a.from;
      else addressAt = a.from;
    }
    const at = localAt >= 0 ? localAt : addressAt;
    if (at < 0) throw new NetlinkParseError('address message without IFA_LOCAL or IFA_ADDRESS');
    out.push({ address: { family, bytes: new Uint8Array(p.subarray(at, at + size)) }, prefix });
  }
  return out;
}
