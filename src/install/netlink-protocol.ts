/**
 * Kernel WireGuard's generic netlink family as pure functions: requests
 * built from PeerConfig, replies parsed into DeviceInfo. No I/O here;
 * src/install/netlink.ts owns the socket (addon/netlink_socket.cc).
 *
 * The netlink framing (message header, attributes, acks and errors) is
 * exported for the other netlink family wgjit speaks, rtnetlink
 * (src/route/rtnetlink-protocol.ts): one framing in the codebase.
 *
 * Constants are those of <linux/netlink.h>, <linux/genetlink.h> and
 * <linux/wireguard.h>. Every request is validated whole before any byte of
 * it is sent, as in uapi-protocol.ts; replies come from the kernel but are
 * still parsed defensively: a malformed one is a NetlinkParseError, never
 * an out-of-bounds read.
 */
import { appendAllowedIp, type DeviceInfo, type Endpoint, type PeerConfig, type PeerStatus } from './device.js';
import { formatIPv4, formatIPv6, IPV4_BYTES, IPV6_BYTES, parseAddress } from '../net/address.js';
import { hostBitsZero, type Cidr } from '../net/cidr.js';
import { KEY_LENGTH, PublicKey } from '../handshake/keys.js';
import { isValidIfname } from '../net/ifname.js';

// ------------------------------------------------------------------ netlink

export const NETLINK_GENERIC = 16;
export const NLMSG_HDRLEN = 16;
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;
export const NLM_F_REQUEST = 0x1;
export const NLM_F_MULTI = 0x2;
export const NLM_F_ACK = 0x4;
/** A dump was interrupted by a change: its parts may be inconsistent. */
export const NLM_F_DUMP_INTR = 0x10;
export const NLM_F_DUMP = 0x300;
/** On a new-object request: replace an existing one. */
export const NLM_F_REPLACE = 0x100;
/** On a new-object request: fail if it exists. */
export const NLM_F_EXCL = 0x200;
/** On a new-object request: create it if it does not exist. */
export const NLM_F_CREATE = 0x400;
/** On an NLMSG_ERROR: the failed request is not echoed (NETLINK_CAP_ACK). */
export const NLM_F_CAPPED = 0x100;
/** On an NLMSG_ERROR: extended-ack attributes follow. */
export const NLM_F_ACK_TLVS = 0x200;
export const NLMSGERR_ATTR_MSG = 1;

export const NLA_HDRLEN = 4;
export const NLA_F_NESTED = 0x8000;
const NLA_TYPE_MASK = 0x3fff;
export const GENL_HDRLEN = 4;

export const GENL_ID_CTRL = 0x10;
export const CTRL_CMD_GETFAMILY = 3;
export const CTRL_ATTR_FAMILY_ID = 1;
export const CTRL_ATTR_FAMILY_NAME = 2;

// ---------------------------------------------------------------- wireguard

export const WG_GENL_NAME = 'wireguard';
export const WG_GENL_VERSION = 1;
export const WG_CMD_GET_DEVICE = 0;
export const WG_CMD_SET_DEVICE = 1;

export const WGDEVICE_A_IFNAME = 2;
export const WGDEVICE_A_PRIVATE_KEY = 3;
export const WGDEVICE_A_PUBLIC_KEY = 4;
export const WGDEVICE_A_LISTEN_PORT = 6;
export const WGDEVICE_A_FWMARK = 7;
export const WGDEVICE_A_PEERS = 8;

export const WGPEER_F_REMOVE_ME = 1;
export const WGPEER_F_REPLACE_ALLOWEDIPS = 2;
export const WGPEER_F_UPDATE_ONLY = 4;

export const WGPEER_A_PUBLIC_KEY = 1;
export const WGPEER_A_PRESHARED_KEY = 2;
export const WGPEER_A_FLAGS = 3;
export const WGPEER_A_ENDPOINT = 4;
export const WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL = 5;
export const WGPEER_A_LAST_HANDSHAKE_TIME = 6;
export const WGPEER_A_RX_BYTES = 7;
export const WGPEER_A_TX_BYTES = 8;
export const WGPEER_A_ALLOWEDIPS = 9;

export const WGALLOWEDIP_A_FAMILY = 1;
export const WGALLOWEDIP_A_IPADDR = 2;
export const WGALLOWEDIP_A_CIDR_MASK = 3;

export const AF_INET = 2;
export const AF_INET6 = 10;
const SOCKADDR_IN_SIZE = 16;
const SOCKADDR_IN6_SIZE = 28;

export const MAX_PORT = 65_535;
/** The kernel carries the keepalive interval as a u16. */
export const MAX_PERSISTENT_KEEPALIVE = 65_535;
/**
 * Largest set message we build. The kernel accepts up to the socket's send
 * buffer (about 208 KiB by default); each message is applied under the
 * device's lock, so smaller parts keep the lock hold short while still
 * carrying several hundred peers each.
 */
export const DEFAULT_MAX_MESSAGE_BYTES = 32 * 1024;
/** Room for the headers, the interface name and one peer's fixed attributes. */
export const MIN_MESSAGE_BYTES = 512;
/** A netlink message length is a u32, but the socket's send buffer is the real limit. */
export const MAX_MESSAGE_BYTES = 1 << 20;

export const align4 = (n: number) => (n + 3) & ~3;

/** Why a request could not be built: a caller bug, never sent to the kernel. */
export class NetlinkRequestError extends RangeError {
  override name = 'NetlinkRequestError';
}

/** A reply the kernel should never send. */
export class NetlinkParseError extends Error {
  override name = 'NetlinkParseError';
}

// ------------------------------------------------------------------ writing

/** Attributes as bytes; nests patch their length when closed. */
export class AttrWriter {
  private buf: Buffer;
  length = 0;

  constructor(capacity = 256) {
    this.buf = Buffer.alloc(capacity);
  }

  private reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const next = Buffer.alloc(Math.max(this.buf.length * 2, this.length + n));
    this.buf.copy(next, 0, 0, this.length);
    this.buf = next;
  }

  /** Writes an attribute header for `size` payload bytes; returns where the payload goes. */
  private header(type: number, size: number): number {
    const len = NLA_HDRLEN + size;
    this.reserve(align4(len));
    const at = this.length;
    this.buf.writeUInt16LE(len, at);
    this.buf.writeUInt16LE(type, at + 2);
    this.length += align4(len); // the padding stays zero: buffers start zeroed and are never rewritten
    return at + NLA_HDRLEN;
  }

  raw(type: number, data: Uint8Array): void {
    const at = this.header(type, data.length); // first: it may replace this.buf
    this.buf.set(data, at);
  }

  /** Appends already-encoded attributes (each aligned) verbatim. */
  append(attrs: Uint8Array): void {
    this.reserve(attrs.length);
    this.buf.set(attrs, this.length);
    this.length += attrs.length;
  }

  u8(type: number, v: number): void {
    const at = this.header(type, 1);
    this.buf.writeUInt8(v, at);
  }

  u16(type: number, v: number): void {
    const at = this.header(type, 2);
    this.buf.writeUInt16LE(v, at);
  }

  u32(type: number, v: number): void {
    const at = this.header(type, 4);
    this.buf.writeUInt32LE(v, at);
  }

  string(type: number, s: string): void {
    this.raw(type, Buffer.from(`${s}\0`, 'utf8'));
  }

  /** Opens a nested attribute; returns the offset to pass to end(). */
  begin(type: number): number {
    this.reserve(NLA_HDRLEN);
    const at = this.length;
    this.buf.writeUInt16LE(type | NLA_F_NESTED, at + 2);
    this.length += NLA_HDRLEN;
    return at;
  }

  end(at: number): void {
    this.buf.writeUInt16LE(this.length - at, at);
  }

  bytes(): Buffer {
    return this.buf.subarray(0, this.length);
  }
}

/**
 * A netlink message: the header, the family's fixed header (genlmsghdr,
 * rtmsg, ifinfomsg: each a multiple of 4 bytes) and the attributes.
 */
export function netlinkMessage(type: number, flags: number, seq: number, fixed: Uint8Array, attrs: Uint8Array): Buffer {
  const out = Buffer.alloc(NLMSG_HDRLEN + fixed.length + attrs.length);
  out.writeUInt32LE(out.length, 0);
  out.writeUInt16LE(type, 4);
  out.writeUInt16LE(flags, 6);
  out.writeUInt32LE(seq >>> 0, 8);
  out.writeUInt32LE(0, 12); // to the kernel
  out.set(fixed, NLMSG_HDRLEN);
  out.set(attrs, NLMSG_HDRLEN + fixed.length);
  return out;
}

function message(type: number, flags: number, seq: number, cmd: number, version: number, attrs: Uint8Array): Buffer {
  return netlinkMessage(type, flags, seq, Uint8Array.of(cmd, version, 0, 0), attrs);
}

export function checkInterfaceName(name: string): string {
  if (!isValidIfname(name)) {
    throw new NetlinkRequestError(`invalid interface name ${JSON.stringify(name)}`);
  }
  return name;
}

/** CTRL_CMD_GETFAMILY for `name`: the reply carries the family's id. */
export function getFamilyRequest(name: string, seq: number): Buffer {
  const a = new AttrWriter();
  a.string(CTRL_ATTR_FAMILY_NAME, name);
  return message(GENL_ID_CTRL, NLM_F_REQUEST | NLM_F_ACK, seq, CTRL_CMD_GETFAMILY, 1, a.bytes());
}

/** WG_CMD_GET_DEVICE is dump-only. */
export function getDeviceRequest(familyId: number, ifname: string, seq: number): Buffer {
  const a = new AttrWriter();
  a.string(WGDEVICE_A_IFNAME, checkInterfaceName(ifname));
  return message(familyId, NLM_F_REQUEST | NLM_F_ACK | NLM_F_DUMP, seq, WG_CMD_GET_DEVICE, WG_GENL_VERSION, a.bytes());
}

function publicKeyBytes(key: PublicKey): Uint8Array {
  if (!(key instanceof PublicKey)) throw new NetlinkRequestError('public key is not a valid PublicKey');
  return key.bytes;
}

function presharedKeyBytes(key: Uint8Array): Uint8Array {
  if (!(key instanceof Uint8Array) || key.length !== KEY_LENGTH) throw new NetlinkRequestError(`preshared key is not a valid key of ${KEY_LENGTH} bytes`);
  return key;
}

export function checkInteger(value: number, max: number, label: string, min = 0): number {
  if (!Number.isInteger(value) || value < min || value > max) throw new NetlinkRequestError(`${label} must be an integer in ${min}..${max}, got ${String(value)}`);
  return value;
}

function sockaddr(endpoint: Endpoint): Uint8Array {
  const r = typeof endpoint?.address === 'string' ? parseAddress(endpoint.address) : null;
  if (r === null || !r.ok) throw new NetlinkRequestError(`endpoint address is not an IP literal: ${JSON.stringify(endpoint?.address)}`);
  const port = checkInteger(endpoint.port, MAX_PORT, 'endpoint port');
  const v4 = r.address.family === 4;
  const b = Buffer.alloc(v4 ? SOCKADDR_IN_SIZE : SOCKADDR_IN6_SIZE);
  b.writeUInt16LE(v4 ? AF_INET : AF_INET6, 0); // sa_family: host order
  b.writeUInt16BE(port, 2); // sin_port: network order
  b.set(r.address.bytes, v4 ? 4 : 8);
  return b;
}

const allowedIpSize = (addressBytes: number) => NLA_HDRLEN + align4(NLA_HDRLEN + 2) + align4(NLA_HDRLEN + addressBytes) + align4(NLA_HDRLEN + 1);
const IPV4_ALLOWEDIP_SIZE = allowedIpSize(IPV4_BYTES);
const IPV6_ALLOWEDIP_SIZE = allowedIpSize(IPV6_BYTES);

/** Bytes of an allowed IP's nested attribute. */
const sizeOf = (cidr: Cidr) => (cidr.family === 4 ? IPV4_ALLOWEDIP_SIZE : IPV6_ALLOWEDIP_SIZE);

/** The CIDR as it came (parsed where it entered wgjit), once its parts are seen to agree. */
export function checkAllowedIp(cidr: Cidr): Cidr {
  const bytes = cidr?.family === 4 ? IPV4_BYTES : cidr?.family === 6 ? IPV6_BYTES : 0;
  const ok = bytes > 0 && cidr.bytes instanceof Uint8Array && cidr.bytes.length === bytes
    && Number.isInteger(cidr.prefix) && cidr.prefix >= 0 && cidr.prefix <= bytes * 8 && hostBitsZero(cidr.bytes, cidr.prefix);
  if (!ok) throw new NetlinkRequestError(`allowed IP ${JSON.stringify(cidr?.text)}: not a network address and prefix of one family`);
  return cidr;
}

function writeAllowedIp(a: AttrWriter, cidr: Cidr): void {
  const at = a.begin(0);
  a.u16(WGALLOWEDIP_A_FAMILY, cidr.family === 4 ? AF_INET : AF_INET6);
  a.raw(WGALLOWEDIP_A_IPADDR, cidr.bytes);
  a.u8(WGALLOWEDIP_A_CIDR_MASK, cidr.prefix);
  a.end(at);
}

const NO_ATTRS = Buffer.alloc(0);

/**
 * A peer, split into the parts its messages carry: the public key and
 * flags; `rest`, the other attributes but the allowed IPs, encoded; and the
 * allowed IPs, checked, to pack behind them.
 */
interface EncodedPeer {
  publicKey: Uint8Array;
  flags: number;
  /** Attributes after the public key and flags: preshared key, endpoint, keepalive. */
  rest: Buffer;
  allowedIPs: readonly Cidr[];
  /** Whether to send an ALLOWEDIPS attribute even if empty (replace with nothing). */
  hasAllowedIPs: boolean;
}

function encodePeer(p: PeerConfig): EncodedPeer {
  if (p === null || typeof p !== 'object') throw new NetlinkRequestError('peer must be an object');
  let rest: Buffer = NO_ATTRS;
  if (p.presharedKey !== undefined || p.endpoint !== undefined || p.persistentKeepalive !== undefined) {
    const w = new AttrWriter(96);
    if (p.presharedKey !== undefined) w.raw(WGPEER_A_PRESHARED_KEY, presharedKeyBytes(p.presharedKey));
    if (p.endpoint !== undefined) w.raw(WGPEER_A_ENDPOINT, sockaddr(p.endpoint));
    if (p.persistentKeepalive !== undefined) {
      w.u16(WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL, checkInteger(p.persistentKeepalive, MAX_PERSISTENT_KEEPALIVE, 'persistent keepalive'));
    }
    rest = w.bytes();
  }
  if (p.allowedIPs !== undefined && !Array.isArray(p.allowedIPs)) throw new NetlinkRequestError('allowedIPs must be an array of CIDRs');
  const flags = (p.replaceAllowedIPs ? WGPEER_F_REPLACE_ALLOWEDIPS : 0) | (p.updateOnly ? WGPEER_F_UPDATE_ONLY : 0);
  return {
    publicKey: publicKeyBytes(p.publicKey),
    flags,
    rest,
    allowedIPs: (p.allowedIPs ?? []).map(checkAllowedIp),
    hasAllowedIPs: p.allowedIPs !== undefined,
  };
}

function removal(publicKey: PublicKey): EncodedPeer {
  return { publicKey: publicKeyBytes(publicKey), flags: WGPEER_F_REMOVE_ME, rest: NO_ATTRS, allowedIPs: [], hasAllowedIPs: false };
}

/** Bytes of a peer's nest with `rest` and an allowed-IP list holding `ips` bytes. */
function peerSize(restBytes: number, withAllowedIPs: boolean, ips: number): number {
  const head = NLA_HDRLEN + align4(NLA_HDRLEN + KEY_LENGTH) + align4(NLA_HDRLEN + 4) + restBytes;
  return head + (withAllowedIPs ? NLA_HDRLEN + ips : 0);
}

/**
 * Packs peers into SET_DEVICE messages of at most `maxBytes`. A peer whose
 * allowed IPs do not fit continues in the next message, as wg does: its
 * public key again, the rest of its allowed IPs, no REPLACE_ALLOWEDIPS
 * (that would drop the ones just added) and UPDATE_ONLY, so that if the
 * peer was removed between the two messages the continuation does not
 * re-create it with half its allowed IPs.
 */
function setMessages(familyId: number, ifname: string, peers: EncodedPeer[], maxBytes: number): Buffer[] {
  checkInterfaceName(ifname);
  checkMaxMessageBytes(maxBytes);
  const ifnameBytes = align4(NLA_HDRLEN + Buffer.byteLength(ifname) + 1);
  const overhead = NLMSG_HDRLEN + GENL_HDRLEN + ifnameBytes + NLA_HDRLEN;
  const messages: Buffer[] = [];
  let w: AttrWriter | null = null;
  let peersAt = 0;

  const flush = () => {
    if (w === null) return;
    w.end(peersAt);
    messages.push(message(familyId, NLM_F_REQUEST | NLM_F_ACK, 0, WG_CMD_SET_DEVICE, WG_GENL_VERSION, w.bytes()));
    w = null;
  };
  const open = (): AttrWriter => {
    if (w !== null) return w;
    const next = new AttrWriter(maxBytes);
    next.string(WGDEVICE_A_IFNAME, ifname);
    peersAt = next.begin(WGDEVICE_A_PEERS);
    w = next;
    return next;
  };
  const room = () => maxBytes - overhead - (w === null ? 0 : w.length - ifnameBytes - NLA_HDRLEN);

  for (const peer of peers) {
    let first = true;
    let next = 0; // first allowed IP not yet sent
    do {
      const rest = first ? peer.rest : NO_ATTRS;
      const flags = first ? peer.flags : (peer.flags & ~WGPEER_F_REPLACE_ALLOWEDIPS) | WGPEER_F_UPDATE_ONLY;
      const withList = peer.hasAllowedIPs && (first || next < peer.allowedIPs.length);
      // The peer's fixed part (and at least one allowed IP, if it has any left) must fit.
      const minimum = peerSize(rest.length, withList, next < peer.allowedIPs.length ? sizeOf(peer.allowedIPs[next]!) : 0);
      if (minimum > room()) flush();
      const a = open();
      const at = a.begin(0);
      a.raw(WGPEER_A_PUBLIC_KEY, peer.publicKey);
      a.u32(WGPEER_A_FLAGS, flags);
      a.append(rest);
      if (withList) {
        const list = a.begin(WGPEER_A_ALLOWEDIPS);
        let budget = room(); // the peer's and the list's headers are already in `a`
        while (next < peer.allowedIPs.length && sizeOf(peer.allowedIPs[next]!) <= budget) {
          writeAllowedIp(a, peer.allowedIPs[next]!);
          budget -= sizeOf(peer.allowedIPs[next]!);
          next++;
        }
        a.end(list);
      }
      a.end(at);
      first = false;
    } while (next < peer.allowedIPs.length);
  }
  flush();
  return messages;
}

export function checkMaxMessageBytes(maxBytes: number): number {
  if (!Number.isInteger(maxBytes) || maxBytes < MIN_MESSAGE_BYTES || maxBytes > MAX_MESSAGE_BYTES) {
    throw new NetlinkRequestError(`maxMessageBytes must be an integer in ${MIN_MESSAGE_BYTES}..${MAX_MESSAGE_BYTES}, got ${String(maxBytes)}`);
  }
  return maxBytes;
}

/** Stamps a request's sequence number (set requests are built with 0: the sender numbers them). */
export function setSeq(request: Buffer, seq: number): Buffer {
  request.writeUInt32LE(seq >>> 0, 8);
  return request;
}

/** SET_DEVICE messages creating or updating `peers`. */
export function setPeersRequests(familyId: number, ifname: string, peers: readonly PeerConfig[], maxBytes = DEFAULT_MAX_MESSAGE_BYTES): Buffer[] {
  if (!Array.isArray(peers)) throw new NetlinkRequestError('peers must be an array');
  return setMessages(familyId, ifname, peers.map(encodePeer), maxBytes);
}

/** SET_DEVICE messages removing `publicKeys` (REMOVE_ME). */
export function removePeersRequests(familyId: number, ifname: string, publicKeys: readonly PublicKey[], maxBytes = DEFAULT_MAX_MESSAGE_BYTES): Buffer[] {
  if (!Array.isArray(publicKeys)) throw new NetlinkRequestError('publicKeys must be an array');
  return setMessages(familyId, ifname, publicKeys.map(removal), maxBytes);
}

// ------------------------------------------------------------------ reading

export interface NetlinkMessage {
  type: number;
  flags: number;
  seq: number;
  /** The bytes after the netlink header. */
  payload: Buffer;
}

/** Splits reply datagrams into messages. */
export function splitMessages(datagrams: readonly Buffer[]): NetlinkMessage[] {
  const out: NetlinkMessage[] = [];
  for (const d of datagrams) {
    for (let off = 0; off + NLMSG_HDRLEN <= d.length; ) {
      const len = d.readUInt32LE(off);
      if (len < NLMSG_HDRLEN || off + len > d.length) throw new NetlinkParseError(`netlink message length ${len} at ${off} overruns its datagram of ${d.length}`);
      out.push({ type: d.readUInt16LE(off + 4), flags: d.readUInt16LE(off + 6), seq: d.readUInt32LE(off + 8), payload: d.subarray(off + NLMSG_HDRLEN, off + len) });
      off += align4(len);
    }
  }
  return out;
}

export interface Attr {
  type: number;
  data: Buffer;
}

/** The attributes in `buf`; a length that overruns is a NetlinkParseError. */
export function parseAttrs(buf: Buffer): Attr[] {
  const out: Attr[] = [];
  for (let off = 0; off + NLA_HDRLEN <= buf.length; ) {
    const len = buf.readUInt16LE(off);
    if (len < NLA_HDRLEN || off + len > buf.length) throw new NetlinkParseError(`attribute length ${len} at ${off} overruns ${buf.length} bytes`);
    out.push({ type: buf.readUInt16LE(off + 2) & NLA_TYPE_MASK, data: buf.subarray(off + NLA_HDRLEN, off + len) });
    off += align4(len);
  }
  return out;
}

function need(data: Buffer, size: number, what: string): Buffer {
  if (data.length < size) throw new NetlinkParseError(`${what}: ${data.length} bytes, expected ${size}`);
  return data;
}

/** A kernel error reply: errno (positive) and the extended-ack text, if any. */
export interface KernelError {
  errno: number;
  message: string | null;
}

/** The NLMSG_ERROR of a reply: null for a plain ack (error 0). */
export function parseError(msg: NetlinkMessage): KernelError | null {
  const error = need(msg.payload, 4, 'NLMSG_ERROR').readInt32LE(0);
  if (error === 0) return null;
  let message: string | null = null;
  if (msg.flags & NLM_F_ACK_TLVS) {
    // After the error: the request's header, and its body unless capped.
    const echoed = msg.flags & NLM_F_CAPPED ? NLMSG_HDRLEN : align4(need(msg.payload, 4 + NLMSG_HDRLEN, 'NLMSG_ERROR').readUInt32LE(4));
    const tlvs = parseAttrs(msg.payload.subarray(Math.min(msg.payload.length, 4 + echoed)));
    const text = tlvs.find((t) => t.type === NLMSGERR_ATTR_MSG);
    if (text !== undefined) message = text.data.toString('utf8').replace(/\0+$/, '');
  }
  return { errno: -error, message };
}

/** The outcome of one exchange: its messages, or the kernel's error. */
export type Reply = { ok: true; messages: NetlinkMessage[]; interrupted: boolean } | { ok: false; error: KernelError };

/** Data messages of a reply (errors, acks and DONE separated out). */
export function parseReply(datagrams: readonly Buffer[], seq: number): Reply {
  const messages: NetlinkMessage[] = [];
  let interrupted = false;
  for (const m of splitMessages(datagrams)) {
    if (m.seq !== seq) continue;
    if (m.flags & NLM_F_DUMP_INTR) interrupted = true;
    if (m.type === NLMSG_ERROR) {
      const error = parseError(m);
      if (error !== null) return { ok: false, error };
    } else if (m.type === NLMSG_DONE) {
      // A DONE carries a status: non-zero when the dump itself failed.
      if (m.payload.length >= 4 && m.payload.readInt32LE(0) < 0) return { ok: false, error: { errno: -m.payload.readInt32LE(0), message: null } };
    } else {
      messages.push(m);
    }
  }
  return { ok: true, messages, interrupted };
}

/**
 * The outcome of each of `count` messages sent in one buffer, each with
 * NLM_F_ACK and sequence number `seq`: null for an ack, else the kernel's
 * error. The kernel handles a buffer's messages in order and answers each
 * with one ack or one error, so the i-th answer is the i-th message's.
 */
export function parseAcks(datagrams: readonly Buffer[], seq: number, count: number): (KernelError | null)[] {
  const out: (KernelError | null)[] = [];
  for (const m of splitMessages(datagrams)) {
    if (m.seq !== seq) continue;
    if (m.type !== NLMSG_ERROR) throw new NetlinkParseError(`message of type ${m.type} among the acks of a batch`);
    out.push(parseError(m));
  }
  if (out.length !== count) throw new NetlinkParseError(`${out.length} answers to a batch of ${count} messages`);
  return out;
}

/** The family id from a CTRL_CMD_GETFAMILY reply. */
export function parseFamilyId(messages: readonly NetlinkMessage[]): number {
  for (const m of messages) {
    for (const a of parseAttrs(m.payload.subarray(GENL_HDRLEN))) {
      if (a.type === CTRL_ATTR_FAMILY_ID) return need(a.data, 2, 'family id').readUInt16LE(0);
    }
  }
  throw new NetlinkParseError('GETFAMILY reply without a family id');
}

// A dump lists every peer, 100,000 on a big gateway, at every sweep: it is
// read in place, with cursors over the reply's bytes, rather than through
// parseAttrs (a Buffer view and an object per attribute).

/**
 * Walks the attributes in buf[start, end): after each step(), `type` and
 * [from, to) say where the current one's data lies. Reset and reused, so a
 * dump's walk allocates nothing per attribute.
 */
export class AttrCursor {
  buf: Buffer = Buffer.alloc(0);
  type = 0;
  from = 0;
  to = 0;
  private next = 0;
  private end = 0;

  reset(buf: Buffer, start: number, end: number): this {
    this.buf = buf;
    this.next = start;
    this.end = end;
    return this;
  }

  /** Moves to the next attribute; false past the last. A length that overruns is a NetlinkParseError. */
  step(): boolean {
    const { buf, next } = this;
    if (next + NLA_HDRLEN > this.end) return false;
    const len = buf.readUInt16LE(next);
    if (len < NLA_HDRLEN || next + len > this.end) throw new NetlinkParseError(`attribute length ${len} at ${next} overruns its end at ${this.end}`);
    this.type = buf.readUInt16LE(next + 2) & NLA_TYPE_MASK;
    this.from = next + NLA_HDRLEN;
    this.to = next + len;
    this.next = next + align4(len);
    return true;
  }

  /** Where the current attribute's data starts, once it is known to hold at least `size` bytes. */
  need(size: number, what: string): number {
    if (this.to - this.from < size) throw new NetlinkParseError(`${what}: ${this.to - this.from} bytes, expected ${size}`);
    return this.from;
  }
}

const formatIPv4At = (buf: Buffer, at: number) => formatIPv4(buf, at);
/* Hex groups throughout, an IPv4-mapped address too: the spelling the store keeps for CIDRs. */
const formatIPv6At = (buf: Buffer, at: number) => formatIPv6(buf, at, false);

/** An unsigned 64-bit little-endian counter; 0n is one shared value, where reading a zero would make a new one. */
const uint64At = (buf: Buffer, at: number) => (buf.readUInt32LE(at) === 0 && buf.readUInt32LE(at + 4) === 0 ? 0n : buf.readBigUInt64LE(at));

/** A signed 64-bit little-endian integer as a Number, rounded as Number(bigint) would be. */
const int64At = (buf: Buffer, at: number) => buf.readInt32LE(at + 4) * 2 ** 32 + buf.readUInt32LE(at);

/** The endpoint in a sockaddr_in or sockaddr_in6; undefined for AF_UNSPEC (none yet). */
function parseSockaddr(a: AttrCursor): Endpoint | undefined {
  const { buf } = a;
  const at = a.need(2, 'endpoint');
  const family = buf.readUInt16LE(at);
  if (family === AF_INET) {
    a.need(SOCKADDR_IN_SIZE, 'sockaddr_in');
    return { address: formatIPv4At(buf, at + 4), port: buf.readUInt16BE(at + 2) };
  }
  if (family === AF_INET6) {
    a.need(SOCKADDR_IN6_SIZE, 'sockaddr_in6');
    return { address: formatIPv6At(buf, at + 8), port: buf.readUInt16BE(at + 2) };
  }
  return undefined;
}

/** One WGALLOWEDIP nest as a CIDR. */
function parseAllowedIp(a: AttrCursor): string {
  let family = 0;
  let addrAt = -1;
  let addrLength = 0;
  let mask = -1;
  while (a.step()) {
    if (a.type === WGALLOWEDIP_A_FAMILY) family = a.buf.readUInt16LE(a.need(2, 'allowed IP family'));
    else if (a.type === WGALLOWEDIP_A_IPADDR) {
      addrAt = a.from;
      addrLength = a.to - a.from;
    }
    else if (a.type === WGALLOWEDIP_A_CIDR_MASK) mask = a.buf[a.need(1, 'allowed IP mask')]!;
  }
  if (family === AF_INET && addrAt >= 0 && addrLength >= IPV4_BYTES && mask >= 0 && mask <= 32) return `${formatIPv4At(a.buf, addrAt)}/${mask}`;
  if (family === AF_INET6 && addrAt >= 0 && addrLength >= IPV6_BYTES && mask >= 0 && mask <= 128) return `${formatIPv6At(a.buf, addrAt)}/${mask}`;
  throw new NetlinkParseError(`malformed allowed IP (family ${family}, mask ${mask})`);
}

/** A peer's key until the dump has been read. */
const UNREAD = PublicKey.fromBytes(new Uint8Array(KEY_LENGTH));

/**
 * A dump's peers, read message by message. A peer whose allowed IPs did
 * not fit one message starts the next again with its public key: merged.
 * Keys are compared as bytes, and made PublicKeys all at once at the end.
 */
class PeerReader {
  private readonly peers: PeerStatus[] = [];
  private readonly keys = PublicKey.reader();
  private readonly peer = new AttrCursor();
  private readonly list = new AttrCursor();
  private readonly ip = new AttrCursor();

  /** The peers in one WGDEVICE_A_PEERS nest, `list` walking its attributes. */
  read(list: AttrCursor): void {
    while (list.step()) this.readPeer(this.peer.reset(list.buf, list.from, list.to));
  }

  private readPeer(a: AttrCursor): void {
    const { buf } = a;
    const peer: PeerStatus = { publicKey: UNREAD, allowedIPs: [], persistentKeepalive: 0, lastHandshakeAt: null, rxBytes: 0n, txBytes: 0n, hasPresharedKey: false };
    let keyAt = -1;
    while (a.step()) {
      switch (a.type) {
        case WGPEER_A_PUBLIC_KEY:
          keyAt = a.need(KEY_LENGTH, 'peer public key');
          break;
        case WGPEER_A_PRESHARED_KEY: {
          // The kernel sends it to admins; we only say whether there is one, and wipe it.
          const at = a.need(KEY_LENGTH, 'preshared key');
          let any = 0;
          for (let i = at; i < at + KEY_LENGTH; i++) any |= buf[i]!;
          peer.hasPresharedKey = any !== 0;
          buf.fill(0, a.from, a.to);
          break;
        }
        case WGPEER_A_ENDPOINT: {
          const endpoint = parseSockaddr(a);
          if (endpoint !== undefined) peer.endpoint = endpoint;
          break;
        }
        case WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL:
          peer.persistentKeepalive = buf.readUInt16LE(a.need(2, 'keepalive'));
          break;
        case WGPEER_A_LAST_HANDSHAKE_TIME: {
          const at = a.need(16, 'last handshake');
          const sec = int64At(buf, at);
          const nsec = int64At(buf, at + 8);
          peer.lastHandshakeAt = sec === 0 && nsec === 0 ? null : sec * 1000 + Math.floor(nsec / 1e6);
          break;
        }
        case WGPEER_A_RX_BYTES:
          peer.rxBytes = uint64At(buf, a.need(8, 'rx bytes'));
          break;
        case WGPEER_A_TX_BYTES:
          peer.txBytes = uint64At(buf, a.need(8, 'tx bytes'));
          break;
        case WGPEER_A_ALLOWEDIPS:
          this.list.reset(buf, a.from, a.to);
          while (this.list.step()) appendAllowedIp(peer, parseAllowedIp(this.ip.reset(buf, this.list.from, this.list.to)));
          break;
        default:
          break; // newer kernels add attributes
      }
    }
    if (keyAt < 0) throw new NetlinkParseError('peer without a public key');
    const last = this.peers[this.peers.length - 1];
    if (last !== undefined && this.keys.isLast(buf, keyAt)) {
      last.allowedIPs.push(...peer.allowedIPs);
      return;
    }
    this.keys.add(buf, keyAt);
    this.peers.push(peer);
  }

  /** The peers with their keys; a key seen twice, not adjacently, is a NetlinkParseError. */
  finish(): PeerStatus[] {
    const keys = this.keys.keys();
    const again = this.keys.firstRepeat();
    if (again >= 0) throw new NetlinkParseError(`peer ${keys[again]!.toString()} appears twice in one dump`);
    for (const [i, key] of keys.entries()) this.peers[i]!.publicKey = key;
    return this.peers;
  }
}

/**
 * A GET_DEVICE dump's messages as one DeviceInfo. Later messages repeat the
 * interface and continue the peer list; a peer whose allowed IPs did not
 * fit starts the next message again with its public key: merged here.
 */
export function parseDevice(name: string, messages: readonly NetlinkMessage[]): DeviceInfo {
  const device: DeviceInfo = { name, publicKey: null, privateKey: new Uint8Array(KEY_LENGTH), listenPort: 0, fwmark: 0, peers: [] };
  const peers = new PeerReader();
  const top = new AttrCursor();
  const list = new AttrCursor();
  for (const m of messages) {
    const { payload } = m;
    top.reset(payload, GENL_HDRLEN, payload.length);
    while (top.step()) {
      switch (top.type) {
        case WGDEVICE_A_PRIVATE_KEY: {
          const at = top.need(KEY_LENGTH, 'private key');
          device.privateKey.set(payload.subarray(at, at + KEY_LENGTH));
          payload.fill(0, top.from, top.to);
          break;
        }
        case WGDEVICE_A_PUBLIC_KEY: {
          const at = top.need(KEY_LENGTH, 'public key');
          device.publicKey = PublicKey.fromBytes(payload, at);
          break;
        }
        case WGDEVICE_A_LISTEN_PORT:
          device.listenPort = payload.readUInt16LE(top.need(2, 'listen port'));
          break;
        case WGDEVICE_A_FWMARK:
          device.fwmark = payload.readUInt32LE(top.need(4, 'fwmark'));
          break;
        case WGDEVICE_A_PEERS:
          peers.read(list.reset(payload, top.from, top.to));
          break;
        default:
          break;
      }
    }
  }
  device.peers = peers.finish();
  return device;
}
