/**
 * The XDP capture program, for real: (a) a fixture table through
 * BPF_PROG_TEST_RUN, each frame with its expected exit reason, and random
 * and mutated frames that must always pass and be counted once; (b) the
 * per-source rate limit, through BPF_PROG_TEST_RUN; (c) live capture on a
 * veth in namespaces, the limit included.
 *
 *   ns xa-cl                         ns xa-gw
 *   ┌────────────────────┐           ┌───────────────────────────────┐
 *   │ xa-cl0             │   veth    │ xa-gw0  ← XDP (native)        │
 *   │ 10.201.0.2/24      ├───────────┤ 10.201.0.1/24                 │
 *   │ fd00:201::2/64     │           │ fd00:201::1/64                │
 *   │ node dgram sender  │           │ child: XdpCapture + UDP :PORT │
 *   └────────────────────┘           └───────────────────────────────┘
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { existsSync } from 'node:fs';
import {
  CAPTURE_STAT_NAMES,
  DEFAULT_OBJECT_PATH,
  DEFAULT_SOURCE_BURST,
  DEFAULT_SOURCE_RATE,
  DEFAULT_SOURCE_TABLE_SIZE,
  loadAddon,
  MAX_IPV6_EXT_HEADERS,
  MAX_SOURCE_BURST,
  MAX_SOURCE_RATE,
  MAX_SOURCE_TABLE_SIZE,
  MAX_VLAN_TAGS,
  MIN_SOURCE_BURST,
  MIN_SOURCE_TABLE_SIZE,
  MIN_TEST_FRAME,
  XDP_PASS,
  XdpCapture,
  type CaptureStatName,
  type CaptureStats,
} from '../../src/capture/addon.js';
import { MESSAGE_INITIATION_SIZE, MESSAGE_RESPONSE_SIZE } from '../../src/handshake/messages.js';
import { RECORD_SIZE } from '../../src/capture/record.js';
import { formatAddress } from '../../src/net/address.js';
import { ADDON_PATH } from '../../src/native-addon.js';
import { createNamespaces, createVeth, deleteNamespaces, ipIn, isRoot, NsChild, REPO_ROOT, type Message } from './ns-child.js';

const PORT = 51820;
const skipReason = !isRoot()
  ? 'needs root (BPF and network namespaces)'
  : !existsSync(ADDON_PATH) || !existsSync(DEFAULT_OBJECT_PATH)
    ? 'addon or BPF object not built: run make bpf addon'
    : null;
if (skipReason !== null) console.warn(`skipping XDP integration tests: ${skipReason}`);

/* ---- frame builders (independent of src/replay) ---- */

const MAC_A = Buffer.from('02000000000a', 'hex');
const MAC_B = Buffer.from('02000000000b', 'hex');
const ETH_P_IP = 0x0800;
const ETH_P_IPV6 = 0x86dd;
const ETH_P_ARP = 0x0806;
const ETH_P_8021Q = 0x8100;
const ETH_P_8021AD = 0x88a8;
/* IPv6 next header values. */
const HOP_BY_HOP = 0;
const ROUTING = 43;
const FRAGMENT = 44;
const ESP = 50;
const AH = 51;
const NO_NEXT_HEADER = 59;
const DEST_OPTS = 60;
const UDP = 17;

function eth(type: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(14);
  MAC_B.copy(h, 0);
  MAC_A.copy(h, 6);
  h.writeUInt16BE(type, 12);
  return Buffer.concat([h, payload]);
}

/** VLAN tags, outermost first, each given by its TPID; then `type` and the payload. */
function vlanEth(tpids: number[], type: number, payload: Buffer): Buffer {
  const tags = tpids.map((_, i) => {
    const tag = Buffer.alloc(4);
    tag.writeUInt16BE(100 + i, 0); // priority 0, VLAN id 100, 101, ...
    tag.writeUInt16BE(tpids[i + 1] ?? type, 2);
    return tag;
  });
  return eth(tpids[0]!, Buffer.concat([...tags, payload]));
}

function v4(text: string): Buffer {
  return Buffer.from(text.split('.').map(Number));
}

function ipv4(payload: Buffer, o: { src?: string; dst?: string; proto?: number; ihl?: number; fragOff?: number; version?: number } = {}): Buffer {
  const ihl = o.ihl ?? 5;
  const h = Buffer.alloc(Math.max(ihl, 5) * 4);
  h[0] = ((o.version ?? 4) << 4) | ihl;
  h.writeUInt16BE(h.length + payload.length, 2);
  h.writeUInt16BE(o.fragOff ?? 0x4000, 6);
  h[8] = 64;
  h[9] = o.proto ?? 17;
  v4(o.src ?? '192.0.2.7').copy(h, 12);
  v4(o.dst ?? '198.51.100.1').copy(h, 16);
  for (let i = 20; i < h.length; i++) h[i] = 1; // NOP options
  return Buffer.concat([h, payload]);
}

const SRC6 = Buffer.from('20010db8000000000000000000000007', 'hex');
const DST6 = Buffer.from('20010db8000000010000000000000001', 'hex');

function ipv6(payload: Buffer, o: { nextHeader?: number; src?: Buffer } = {}): Buffer {
  const h = Buffer.alloc(40);
  h.writeUInt32BE(0x60000000, 0);
  h.writeUInt16BE(payload.length, 4);
  h[6] = o.nextHeader ?? UDP;
  h[7] = 64;
  (o.src ?? SRC6).copy(h, 8);
  DST6.copy(h, 24);
  return Buffer.concat([h, payload]);
}

/**
 * IPv6 extension headers of the given types, in order, the last one naming
 * `next`; each (units + 1) * 8 bytes long, its options Pad1 (zero bytes).
 */
function extChain(types: number[], next: number, payload: Buffer, units = 0): Buffer {
  const headers = types.map((_, i) => {
    const h = Buffer.alloc((units + 1) * 8);
    h[0] = types[i + 1] ?? next;
    h[1] = units;
    return h;
  });
  return Buffer.concat([...headers, payload]);
}

function udp(payload: Buffer, o: { sport?: number; dport?: number; len?: number } = {}): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt16BE(o.sport ?? 40000, 0);
  h.writeUInt16BE(o.dport ?? PORT, 2);
  h.writeUInt16BE(o.len ?? 8 + payload.length, 4);
  return Buffer.concat([h, payload]);
}

function message(size = MESSAGE_INITIATION_SIZE, type = 1, reserved: [number, number, number] = [0, 0, 0]): Buffer {
  const m = Buffer.alloc(size);
  for (let i = 0; i < size; i++) m[i] = (i * 13 + 5) & 0xff;
  m[0] = type;
  m[1] = reserved[0];
  m[2] = reserved[1];
  m[3] = reserved[2];
  return m;
}

const INIT = message();
const v4Frame = (o: Parameters<typeof ipv4>[1] = {}, u: Parameters<typeof udp>[1] = {}, m = INIT): Buffer => eth(ETH_P_IP, ipv4(udp(m, u), o));
const v6Frame = (u: Parameters<typeof udp>[1] = {}, m = INIT, src = SRC6): Buffer => eth(ETH_P_IPV6, ipv6(udp(m, u), { src }));
/** An IPv6 initiation behind the extension headers `types`, each (units + 1) * 8 bytes. */
const v6ExtFrame = (types: number[], units = 0): Buffer => eth(ETH_P_IPV6, ipv6(extChain(types, UDP, udp(INIT), units), { nextHeader: types[0] ?? UDP }));

interface Fixture {
  name: string;
  frame: Buffer;
  reason: CaptureStatName;
}

const FIXTURES: Fixture[] = [
  { name: 'IPv4 initiation', frame: v4Frame(), reason: 'captured' },
  { name: 'IPv6 initiation', frame: v6Frame(), reason: 'captured' },
  { name: 'IPv4 with options (ihl 6)', frame: v4Frame({ ihl: 6 }), reason: 'captured' },
  { name: 'IPv4 with options (ihl 15)', frame: v4Frame({ ihl: 15 }), reason: 'captured' },
  { name: 'trailing bytes after the datagram', frame: Buffer.concat([v4Frame(), Buffer.alloc(6)]), reason: 'captured' },
  { name: 'other port', frame: v4Frame({}, { dport: PORT + 1 }), reason: 'other_port' },
  { name: 'other port (IPv6)', frame: v6Frame({ dport: 53 }), reason: 'other_port' },
  { name: 'payload 147 bytes', frame: v4Frame({}, {}, message(147)), reason: 'wrong_size' },
  { name: 'payload 149 bytes', frame: v4Frame({}, {}, message(149)), reason: 'wrong_size' },
  { name: 'payload 149 bytes (IPv6)', frame: v6Frame({}, message(149)), reason: 'wrong_size' },
  { name: 'response (type 2, 92 bytes)', frame: v4Frame({}, {}, message(MESSAGE_RESPONSE_SIZE, 2)), reason: 'wrong_size' },
  { name: '148 bytes of type 2', frame: v4Frame({}, {}, message(148, 2)), reason: 'not_initiation' },
  { name: '148 bytes of type 4 (transport)', frame: v6Frame({}, message(148, 4)), reason: 'not_initiation' },
  { name: 'reserved byte 1 set', frame: v4Frame({}, {}, message(148, 1, [1, 0, 0])), reason: 'bad_reserved' },
  { name: 'reserved byte 3 set', frame: v6Frame({}, message(148, 1, [0, 0, 0x80])), reason: 'bad_reserved' },
  { name: 'UDP length 156 but payload cut short', frame: v4Frame().subarray(0, 14 + 20 + 8 + 100), reason: 'truncated' },
  { name: 'IPv4 header cut short', frame: v4Frame().subarray(0, 14 + 10), reason: 'truncated' },
  { name: 'IPv4 options past the end', frame: eth(ETH_P_IP, ipv4(Buffer.alloc(0), { ihl: 15 })).subarray(0, 14 + 40), reason: 'truncated' },
  { name: 'UDP header cut short', frame: v4Frame().subarray(0, 14 + 20 + 4), reason: 'truncated' },
  { name: 'IPv6 header cut short', frame: v6Frame().subarray(0, 14 + 30), reason: 'truncated' },
  { name: 'Ethernet header only', frame: eth(ETH_P_IP, Buffer.alloc(0)), reason: 'truncated' },
  { name: 'ARP', frame: eth(ETH_P_ARP, Buffer.alloc(28)), reason: 'not_ip' },
  { name: 'TCP', frame: v4Frame({ proto: 6 }), reason: 'not_udp' },
  { name: 'IPv6 fragment', frame: eth(ETH_P_IPV6, ipv6(Buffer.alloc(8 + 156), { nextHeader: FRAGMENT })), reason: 'fragment' },
  // Zeros after the tag: ethertype 0 inside it.
  { name: 'VLAN tagged, nothing IP inside', frame: eth(ETH_P_8021Q, Buffer.alloc(200)), reason: 'not_ip' },
  // Zeros: a hop-by-hop header whose next header is hop-by-hop again.
  { name: 'IPv6 hop-by-hop header naming another', frame: eth(ETH_P_IPV6, ipv6(Buffer.alloc(8 + 156), { nextHeader: HOP_BY_HOP })), reason: 'bad_ip_header' },

  // VLAN: up to MAX_VLAN_TAGS tags of either kind, in either position.
  { name: '802.1Q, IPv4 initiation', frame: vlanEth([ETH_P_8021Q], ETH_P_IP, ipv4(udp(INIT))), reason: 'captured' },
  { name: '802.1Q, IPv6 initiation', frame: vlanEth([ETH_P_8021Q], ETH_P_IPV6, ipv6(udp(INIT))), reason: 'captured' },
  { name: '802.1ad, IPv4 initiation', frame: vlanEth([ETH_P_8021AD], ETH_P_IP, ipv4(udp(INIT))), reason: 'captured' },
  { name: 'QinQ (802.1ad, 802.1Q), IPv4 initiation', frame: vlanEth([ETH_P_8021AD, ETH_P_8021Q], ETH_P_IP, ipv4(udp(INIT))), reason: 'captured' },
  { name: 'QinQ (802.1ad, 802.1Q), IPv6 initiation', frame: vlanEth([ETH_P_8021AD, ETH_P_8021Q], ETH_P_IPV6, ipv6(udp(INIT))), reason: 'captured' },
  { name: 'two 802.1Q tags, IPv6 initiation', frame: vlanEth([ETH_P_8021Q, ETH_P_8021Q], ETH_P_IPV6, ipv6(udp(INIT))), reason: 'captured' },
  { name: '802.1Q inside 802.1ad reversed, IPv4 initiation', frame: vlanEth([ETH_P_8021Q, ETH_P_8021AD], ETH_P_IP, ipv4(udp(INIT))), reason: 'captured' },
  { name: 'double tagged, other port', frame: vlanEth([ETH_P_8021AD, ETH_P_8021Q], ETH_P_IP, ipv4(udp(INIT, { dport: PORT + 1 }))), reason: 'other_port' },
  { name: 'one tag more than MAX_VLAN_TAGS', frame: vlanEth(Array<number>(MAX_VLAN_TAGS + 1).fill(ETH_P_8021Q), ETH_P_IP, ipv4(udp(INIT))), reason: 'vlan_limit' },
  { name: 'three tags, mixed kinds', frame: vlanEth([ETH_P_8021AD, ETH_P_8021Q, ETH_P_8021AD], ETH_P_IPV6, ipv6(udp(INIT))), reason: 'vlan_limit' },
  { name: 'VLAN tag cut short', frame: eth(ETH_P_8021Q, Buffer.alloc(2)), reason: 'truncated' },
  { name: 'second VLAN tag cut short', frame: vlanEth([ETH_P_8021AD, ETH_P_8021Q], ETH_P_IP, Buffer.alloc(0)).subarray(0, 14 + 4 + 3), reason: 'truncated' },
  { name: 'VLAN tag, then ARP', frame: vlanEth([ETH_P_8021Q], ETH_P_ARP, Buffer.alloc(28)), reason: 'not_ip' },
  { name: 'VLAN tag, then IPv4 cut short', frame: vlanEth([ETH_P_8021Q], ETH_P_IP, ipv4(udp(INIT)).subarray(0, 10)), reason: 'truncated' },

  // IPv6 extension headers: up to MAX_IPV6_EXT_HEADERS hop-by-hop, routing and destination options.
  { name: 'IPv6 hop-by-hop', frame: v6ExtFrame([HOP_BY_HOP]), reason: 'captured' },
  { name: 'IPv6 destination options', frame: v6ExtFrame([DEST_OPTS]), reason: 'captured' },
  { name: 'IPv6 routing header', frame: v6ExtFrame([ROUTING]), reason: 'captured' },
  { name: 'IPv6 hop-by-hop of 24 bytes (hdrlen 2)', frame: v6ExtFrame([HOP_BY_HOP], 2), reason: 'captured' },
  { name: 'IPv6 hop-by-hop of 2048 bytes (hdrlen 255) in a 1514-byte frame', frame: eth(ETH_P_IPV6, ipv6(extChain([HOP_BY_HOP], UDP, udp(INIT), 255), { nextHeader: HOP_BY_HOP })).subarray(0, 1514), reason: 'truncated' },
  { name: 'IPv6 hop-by-hop, destination options, routing, destination options (the bound)', frame: v6ExtFrame([HOP_BY_HOP, DEST_OPTS, ROUTING, DEST_OPTS]), reason: 'captured' },
  { name: 'IPv6 chain of 4 headers of 16 bytes', frame: v6ExtFrame([HOP_BY_HOP, DEST_OPTS, ROUTING, DEST_OPTS], 1), reason: 'captured' },
  { name: 'IPv6 chain one longer than MAX_IPV6_EXT_HEADERS', frame: v6ExtFrame([HOP_BY_HOP, ...Array<number>(MAX_IPV6_EXT_HEADERS).fill(DEST_OPTS)]), reason: 'ipv6_ext_limit' },
  { name: 'IPv6 extension header cut short (length says 24, 12 present)', frame: eth(ETH_P_IPV6, ipv6(extChain([DEST_OPTS], UDP, Buffer.alloc(0), 2).subarray(0, 12), { nextHeader: DEST_OPTS })), reason: 'truncated' },
  { name: 'IPv6 extension header without its length byte', frame: eth(ETH_P_IPV6, ipv6(Buffer.from([UDP]), { nextHeader: ROUTING })), reason: 'truncated' },
  { name: 'IPv6 second extension header cut short', frame: v6ExtFrame([HOP_BY_HOP, ROUTING]).subarray(0, 14 + 40 + 8 + 4), reason: 'truncated' },
  { name: 'IPv6 UDP header cut short after an extension header', frame: v6ExtFrame([DEST_OPTS]).subarray(0, 14 + 40 + 8 + 4), reason: 'truncated' },
  { name: 'IPv6 AH', frame: eth(ETH_P_IPV6, ipv6(extChain([], AH, Buffer.alloc(8 + 156)), { nextHeader: AH })), reason: 'not_udp' },
  { name: 'IPv6 hop-by-hop, then AH', frame: eth(ETH_P_IPV6, ipv6(extChain([HOP_BY_HOP], AH, Buffer.alloc(8 + 156)), { nextHeader: HOP_BY_HOP })), reason: 'not_udp' },
  { name: 'IPv6 hop-by-hop, then ESP', frame: eth(ETH_P_IPV6, ipv6(extChain([HOP_BY_HOP], ESP, Buffer.alloc(8 + 156)), { nextHeader: HOP_BY_HOP })), reason: 'not_udp' },
  { name: 'IPv6 destination options, then no next header', frame: eth(ETH_P_IPV6, ipv6(extChain([DEST_OPTS], NO_NEXT_HEADER, Buffer.alloc(0)), { nextHeader: DEST_OPTS })), reason: 'not_udp' },
  { name: 'IPv6 hop-by-hop, then a fragment header', frame: eth(ETH_P_IPV6, ipv6(extChain([HOP_BY_HOP], FRAGMENT, Buffer.alloc(8 + 156)), { nextHeader: HOP_BY_HOP })), reason: 'fragment' },
  { name: 'IPv6 hop-by-hop, routing, then a fragment header', frame: eth(ETH_P_IPV6, ipv6(extChain([HOP_BY_HOP, ROUTING], FRAGMENT, Buffer.alloc(8 + 156)), { nextHeader: HOP_BY_HOP })), reason: 'fragment' },
  { name: 'IPv6 hop-by-hop after destination options (RFC 8200: only first)', frame: v6ExtFrame([DEST_OPTS, HOP_BY_HOP]), reason: 'bad_ip_header' },
  { name: 'IPv6 extension headers, other port', frame: eth(ETH_P_IPV6, ipv6(extChain([HOP_BY_HOP, ROUTING], UDP, udp(INIT, { dport: 53 })), { nextHeader: HOP_BY_HOP })), reason: 'other_port' },
  { name: 'VLAN, IPv6 extension headers, initiation', frame: vlanEth([ETH_P_8021Q], ETH_P_IPV6, ipv6(extChain([HOP_BY_HOP, DEST_OPTS], UDP, udp(INIT)), { nextHeader: HOP_BY_HOP })), reason: 'captured' },

  { name: 'IPv4 first fragment (MF)', frame: v4Frame({ fragOff: 0x2000 }), reason: 'fragment' },
  { name: 'IPv4 later fragment (offset)', frame: v4Frame({ fragOff: 0x0010 }), reason: 'fragment' },
  { name: 'IPv4 ihl 4', frame: v4Frame({ ihl: 4 }), reason: 'bad_ip_header' },
  { name: 'version 5 in an IPv4 frame', frame: v4Frame({ version: 5 }), reason: 'bad_ip_header' },
];

function diff(before: CaptureStats, after: CaptureStats): Partial<Record<CaptureStatName, bigint>> {
  const out: Partial<Record<CaptureStatName, bigint>> = {};
  for (const name of CAPTURE_STAT_NAMES) if (after[name] !== before[name]) out[name] = after[name] - before[name];
  return out;
}

describe.skipIf(skipReason !== null)('XDP program through BPF_PROG_TEST_RUN', () => {
  let capture: XdpCapture;
  beforeAll(() => {
    // The table is about parsing: with the limit on, the sixth initiation
    // from 192.0.2.7 would be rate_limited. The limit has its own tests.
    capture = XdpCapture.open({ listenPort: PORT, ringBytes: 1 << 16, sourceRate: 0 });
  });
  afterAll(() => capture?.close());

  it.each(FIXTURES)('$name → $reason', ({ frame, reason }) => {
    const before = capture.stats();
    const t0 = process.hrtime.bigint();
    const { retval, events, records } = capture.testRun(frame);
    const t1 = process.hrtime.bigint();
    expect(retval).toBe(XDP_PASS);
    expect(diff(before, capture.stats())).toEqual({ [reason]: 1n });
    expect(events.length).toBe(reason === 'captured' ? 1 : 0);
    expect(records.length).toBe(events.length);
    if (reason !== 'captured') return;
    const e = events[0]!;
    expect(Buffer.from(e.message)).toEqual(INIT);
    expect(e.src.port).toBe(40000);
    expect(e.dst.port).toBe(PORT);
    expect(e.arrivalNs >= t0 && e.arrivalNs <= t1).toBe(true);
    if (e.family === 4) {
      expect(formatAddress(e.src.address)).toBe('192.0.2.7');
      expect(formatAddress(e.dst.address)).toBe('198.51.100.1');
      // An IPv4 address fills 4 bytes; the other 12 must be zero.
      expect(records[0]!.subarray(12, 24).every((b) => b === 0)).toBe(true);
      expect(records[0]!.subarray(28, 40).every((b) => b === 0)).toBe(true);
    } else {
      expect(formatAddress(e.src.address)).toBe('2001:db8::7');
      expect(formatAddress(e.dst.address)).toBe('2001:db8:0:1::1');
    }
    // Padding is zeroed, not left over from earlier ring contents.
    for (const [from, to] of [[5, 8], [44, 48], [204, 208]] as const) {
      expect(records[0]!.subarray(from, to).every((b) => b === 0)).toBe(true);
    }
  });

  it('uses the listen port the loader set', () => {
    const other = XdpCapture.open({ listenPort: 4242, ringBytes: 4096 });
    try {
      expect(other.testRun(v4Frame()).events.length).toBe(0);
      expect(other.testRun(v4Frame({}, { dport: 4242 })).events.length).toBe(1);
    } finally {
      other.close();
    }
  });

  it('counts ringbuf_full when the ring is full, and still passes the frame', () => {
    const small = XdpCapture.open({ listenPort: PORT, ringBytes: 4096, sourceRate: 0 });
    try {
      // Each record takes 208 bytes plus an 8-byte ring header.
      const fits = Math.floor(4096 / (RECORD_SIZE + 8));
      const extra = 5;
      for (let i = 0; i < fits + extra; i++) expect(small.testRun(v4Frame(), { drain: false }).retval).toBe(XDP_PASS);
      const s = small.stats();
      expect(s.captured).toBe(BigInt(fits));
      expect(s.ringbuf_full).toBe(BigInt(extra));
      // Draining hands over exactly what fitted, intact.
      const { events } = small.testRun(eth(ETH_P_ARP, Buffer.alloc(28)));
      expect(events.length).toBe(fits);
      for (const e of events) expect(Buffer.from(e.message)).toEqual(INIT);
    } finally {
      small.close();
    }
  });

  it('health() counts what went into the ring and what came out; a capture never started is not watched', () => {
    const small = XdpCapture.open({ listenPort: PORT, ringBytes: 4096, sourceRate: 0 });
    try {
      const held = 3;
      for (let i = 0; i < held; i++) small.testRun(v4Frame(), { drain: false });
      expect(small.health()).toEqual({ polling: false, links: [], captured: BigInt(held), delivered: 0n });
      // A frame that is not captured drains the ring on its way.
      expect(small.testRun(eth(ETH_P_ARP, Buffer.alloc(28))).events.length).toBe(held);
      expect(small.health()).toMatchObject({ captured: BigInt(held), delivered: BigInt(held) });
      small.close();
      expect(small.closed).toBe(true);
      expect(() => small.health()).toThrow(/closed/);
    } finally {
      small.close();
    }
  });

  it('rejects bad arguments before they reach C++', () => {
    expect(() => XdpCapture.open({ listenPort: 0 })).toThrow(RangeError);
    expect(() => XdpCapture.open({ listenPort: 65536 })).toThrow(RangeError);
    expect(() => XdpCapture.open({ listenPort: 1, ringBytes: 5000 })).toThrow(RangeError);
    expect(() => XdpCapture.open({ listenPort: 1, ringBytes: 2048 })).toThrow(RangeError);
    expect(() => capture.attach('a-name-longer-than-15', 'auto')).toThrow(RangeError);
    expect(() => capture.attach('../etc', 'auto')).toThrow(RangeError);
    expect(() => capture.attach('lo', 'fast' as never)).toThrow(RangeError);
    expect(() => capture.testRun(Buffer.alloc(10))).toThrow(RangeError);
  });

  it('rejects out-of-range limits in TypeScript, naming the bounds', () => {
    const rate = `sourceRate must be an integer in 0..${MAX_SOURCE_RATE}`;
    const burst = `sourceBurst must be an integer in ${MIN_SOURCE_BURST}..${MAX_SOURCE_BURST}`;
    const table = `sourceTableSize must be an integer in ${MIN_SOURCE_TABLE_SIZE}..${MAX_SOURCE_TABLE_SIZE}`;
    for (const sourceRate of [-1, MAX_SOURCE_RATE + 1, 1.5, Number.NaN, '20' as never]) {
      expect(() => XdpCapture.open({ listenPort: PORT, sourceRate })).toThrow(new RangeError(`${rate}, got ${String(sourceRate)}`));
    }
    for (const sourceBurst of [MIN_SOURCE_BURST - 1, MAX_SOURCE_BURST + 1, 2.5]) {
      expect(() => XdpCapture.open({ listenPort: PORT, sourceBurst })).toThrow(new RangeError(`${burst}, got ${sourceBurst}`));
    }
    for (const sourceTableSize of [MIN_SOURCE_TABLE_SIZE - 1, MAX_SOURCE_TABLE_SIZE + 1, Infinity]) {
      expect(() => XdpCapture.open({ listenPort: PORT, sourceTableSize })).toThrow(new RangeError(`${table}, got ${sourceTableSize}`));
    }
  });

  it('checks the limits again in C++', () => {
    const { Capture } = loadAddon();
    const open = (rate: number, burst: number, table: number) => new Capture(DEFAULT_OBJECT_PATH, PORT, 4096, rate, burst, table);
    expect(() => open(MAX_SOURCE_RATE + 1, DEFAULT_SOURCE_BURST, DEFAULT_SOURCE_TABLE_SIZE)).toThrow(`source rate ${MAX_SOURCE_RATE + 1} not in 0..${MAX_SOURCE_RATE}`);
    expect(() => open(DEFAULT_SOURCE_RATE, 0, DEFAULT_SOURCE_TABLE_SIZE)).toThrow(`source burst 0 not in ${MIN_SOURCE_BURST}..${MAX_SOURCE_BURST}`);
    expect(() => open(DEFAULT_SOURCE_RATE, DEFAULT_SOURCE_BURST, MAX_SOURCE_TABLE_SIZE + 1)).toThrow(`source table size ${MAX_SOURCE_TABLE_SIZE + 1} not in`);
    expect(() => open(-1, DEFAULT_SOURCE_BURST, DEFAULT_SOURCE_TABLE_SIZE)).toThrow(/sourceRate out of range/);
    open(0, MIN_SOURCE_BURST, MIN_SOURCE_TABLE_SIZE).close();
  });

  it('reports libbpf errors with the interface name', () => {
    expect(() => capture.attach('xa-nosuchdev', 'generic')).toThrow(/attach xdp to xa-nosuchdev: No such device/);
  });

  it('close is idempotent and later calls fail clearly', () => {
    const c = XdpCapture.open({ listenPort: PORT, ringBytes: 4096 });
    c.close();
    c.close();
    expect(() => c.stats()).toThrow(/closed/);
  });
});

/* ---- random and mutated frames, through BPF_PROG_TEST_RUN ---- */

const UDP_HEADER = 8;

/** Whether a record is the UDP datagram it claims: the initiation follows a UDP header to PORT of the right length. */
function capturedFaithfully(frame: Buffer, message: Uint8Array, sport: number): boolean {
  for (let at = frame.indexOf(message); at >= 0; at = frame.indexOf(message, at + 1)) {
    if (at < UDP_HEADER) continue;
    const h = at - UDP_HEADER;
    if (frame.readUInt16BE(h) === sport && frame.readUInt16BE(h + 2) === PORT && frame.readUInt16BE(h + 4) === UDP_HEADER + MESSAGE_INITIATION_SIZE) return true;
  }
  return false;
}

const SEEDS = [
  v4Frame(),
  v4Frame({ ihl: 7 }),
  v6Frame(),
  v6ExtFrame([HOP_BY_HOP, DEST_OPTS]),
  vlanEth([ETH_P_8021Q], ETH_P_IP, ipv4(udp(INIT))),
  vlanEth([ETH_P_8021AD, ETH_P_8021Q], ETH_P_IPV6, ipv6(udp(INIT))),
];

const mutatedFrame = fc
  .record({
    seed: fc.constantFrom(...SEEDS),
    // Mostly in the headers, where the parser's decisions are.
    edits: fc.array(fc.record({ at: fc.nat(120), xor: fc.integer({ min: 1, max: 255 }) }), { maxLength: 4 }),
    cut: fc.option(fc.nat(260), { nil: undefined }),
    extra: fc.uint8Array({ maxLength: 16 }),
  })
  .map(({ seed, edits, cut, extra }) => {
    const f = Buffer.concat([seed, extra]);
    for (const { at, xor } of edits) if (at < f.length) f[at]! ^= xor;
    return cut === undefined ? f : f.subarray(0, Math.max(MIN_TEST_FRAME, Math.min(cut, f.length)));
  });
const randomFrame = fc.uint8Array({ minLength: MIN_TEST_FRAME, maxLength: 400 }).map((b) => Buffer.from(b));

describe.skipIf(skipReason !== null)('XDP program on random and mutated frames', () => {
  let capture: XdpCapture;
  beforeAll(() => {
    capture = XdpCapture.open({ listenPort: PORT, ringBytes: 1 << 16, sourceRate: 0 });
  });
  afterAll(() => capture?.close());

  it('always passes the frame, counts it exactly once, and captures only a well-formed initiation, byte for byte', () => {
    let captured = 0;
    fc.assert(
      fc.property(fc.oneof(mutatedFrame, randomFrame), (frame) => {
        const before = capture.stats();
        const { retval, events } = capture.testRun(frame);
        const counted = Object.values(diff(before, capture.stats()));
        expect(retval).toBe(XDP_PASS);
        expect(counted).toEqual([1n]);
        expect(events.length).toBeLessThanOrEqual(1);
        const e = events[0];
        if (e === undefined) return;
        captured++;
        expect(diff(before, capture.stats())).toEqual({ captured: 1n });
        expect([...e.message.subarray(0, 4)]).toEqual([1, 0, 0, 0]);
        expect(capturedFaithfully(frame, e.message, e.src.port)).toBe(true);
      }),
      { numRuns: 3_000 },
    );
    // The mutations must leave some frames intact enough to be captured, or the byte checks prove nothing.
    expect(captured).toBeGreaterThan(50);
  });
});

/* ---- the per-source limit, through BPF_PROG_TEST_RUN ---- */

/** Nanoseconds of credit one initiation costs at the default rate. */
const COST_NS = 1_000_000_000n / BigInt(DEFAULT_SOURCE_RATE);

/** Runs each frame once; each must pass and count exactly one reason, which is returned. */
function runAll(c: XdpCapture, frames: Buffer[]): { reasons: CaptureStatName[]; elapsedNs: bigint } {
  const reasons: CaptureStatName[] = [];
  const t0 = process.hrtime.bigint();
  for (const frame of frames) {
    const before = c.stats();
    const { retval, events } = c.testRun(frame);
    const counted = Object.entries(diff(before, c.stats()));
    expect(retval).toBe(XDP_PASS);
    expect(counted.length).toBe(1);
    expect(counted[0]![1]).toBe(1n);
    const reason = counted[0]![0] as CaptureStatName;
    expect(events.length).toBe(reason === 'captured' ? 1 : 0);
    reasons.push(reason);
  }
  return { reasons, elapsedNs: process.hrtime.bigint() - t0 };
}

/** Tokens that can have come back while frames were being sent: 0 unless the machine stalled for 50 ms. */
const refilled = (elapsedNs: bigint): number => Number(elapsedNs / COST_NS);

/**
 * n initiations from one source, into a bucket that holds `tokens`: the
 * first `tokens` are captured, the rest rate_limited, give or take the
 * tokens that came back meanwhile.
 */
function expectBurst(c: XdpCapture, frame: Buffer, n: number, tokens = DEFAULT_SOURCE_BURST): void {
  const { reasons, elapsedNs } = runAll(c, Array<Buffer>(n).fill(frame));
  expect(reasons.slice(0, tokens)).toEqual(Array(tokens).fill('captured'));
  const late = reasons.slice(tokens);
  expect(late.every((r) => r === 'captured' || r === 'rate_limited')).toBe(true);
  expect(late.filter((r) => r === 'captured').length).toBeLessThanOrEqual(refilled(elapsedNs));
}

describe.skipIf(skipReason !== null)('per-source rate limit through BPF_PROG_TEST_RUN', () => {
  let c: XdpCapture;
  beforeEach(() => {
    // The production defaults: DEFAULT_SOURCE_RATE, DEFAULT_SOURCE_BURST, DEFAULT_SOURCE_TABLE_SIZE.
    c = XdpCapture.open({ listenPort: PORT, ringBytes: 1 << 16 });
  });
  afterEach(() => c.close());

  it('captures a burst from one IPv4 source, then counts rate_limited and still passes', () => {
    expectBurst(c, v4Frame({ src: '192.0.2.10' }), 2 * DEFAULT_SOURCE_BURST);
  });

  it('keeps one bucket per IPv4 address', () => {
    expectBurst(c, v4Frame({ src: '192.0.2.10' }), DEFAULT_SOURCE_BURST + 3);
    expectBurst(c, v4Frame({ src: '192.0.2.11' }), DEFAULT_SOURCE_BURST + 3);
    // 32.1.13.184 is 20 01 0d b8, as 2001:db8::/64 begins: two sources all the same.
    expectBurst(c, v4Frame({ src: '32.1.13.184' }), DEFAULT_SOURCE_BURST + 1);
    expectBurst(c, v6Frame({}, INIT, Buffer.from('20010db8000000000000000000000001', 'hex')), DEFAULT_SOURCE_BURST + 1);
  });

  it('keeps one bucket per IPv6 /64', () => {
    const sameA = Buffer.from('20010db8000000050000000000000001', 'hex');
    const sameB = Buffer.from('20010db800000005ffffffffffffffff', 'hex');
    const other = Buffer.from('20010db8000000060000000000000001', 'hex');
    const { reasons, elapsedNs } = runAll(c, [
      ...Array<Buffer>(3).fill(v6Frame({}, INIT, sameA)),
      ...Array<Buffer>(DEFAULT_SOURCE_BURST - 3).fill(v6Frame({}, INIT, sameB)),
      v6Frame({}, INIT, sameB),
      v6Frame({}, INIT, sameA),
    ]);
    expect(reasons.slice(0, DEFAULT_SOURCE_BURST)).toEqual(Array(DEFAULT_SOURCE_BURST).fill('captured'));
    // The /64 has spent its burst, whichever address asks.
    expect(reasons.slice(DEFAULT_SOURCE_BURST).filter((r) => r === 'captured').length).toBeLessThanOrEqual(refilled(elapsedNs));
    expect(reasons.slice(DEFAULT_SOURCE_BURST).filter((r) => r === 'rate_limited').length).toBeGreaterThanOrEqual(2 - refilled(elapsedNs));
    expectBurst(c, v6Frame({}, INIT, other), DEFAULT_SOURCE_BURST + 2);
  });

  it('gives tokens back at the rate, never more than the burst', async () => {
    const frame = v4Frame({ src: '192.0.2.20' });
    expectBurst(c, frame, DEFAULT_SOURCE_BURST + 1);
    // 120 ms is about 2.4 tokens at 20/s; assert only that some came back.
    await new Promise((r) => setTimeout(r, 120));
    const { reasons } = runAll(c, Array<Buffer>(2 * DEFAULT_SOURCE_BURST).fill(frame));
    const captured = reasons.filter((r) => r === 'captured').length;
    expect(captured).toBeGreaterThanOrEqual(1);
    expect(captured).toBeLessThanOrEqual(DEFAULT_SOURCE_BURST);
    expect(reasons[0]).toBe('captured');
  });

  it('does not count frames that are not initiations against the source', () => {
    const src = '192.0.2.30';
    const { reasons } = runAll(c, [
      ...Array<Buffer>(5).fill(v4Frame({ src }, {}, message(148, 4))),
      ...Array<Buffer>(5).fill(v4Frame({ src }, { dport: PORT + 1 })),
      v4Frame({ src }, {}, message(MESSAGE_RESPONSE_SIZE, 2)),
      v4Frame({ src }, {}, message(148, 1, [0, 0, 1])),
    ]);
    expect(reasons).toEqual([...Array(5).fill('not_initiation'), ...Array(5).fill('other_port'), 'wrong_size', 'bad_reserved']);
    expectBurst(c, v4Frame({ src }), DEFAULT_SOURCE_BURST);
  });

  it('limits nothing with rate 0', () => {
    const off = XdpCapture.open({ listenPort: PORT, ringBytes: 1 << 16, sourceRate: 0 });
    try {
      const { reasons } = runAll(off, Array<Buffer>(50).fill(v4Frame({ src: '192.0.2.40' })));
      expect(reasons).toEqual(Array(50).fill('captured'));
    } finally {
      off.close();
    }
  });

  it('follows the burst the loader set', () => {
    const wide = XdpCapture.open({ listenPort: PORT, ringBytes: 1 << 16, sourceRate: 1, sourceBurst: 12 });
    try {
      expectBurst(wide, v4Frame({ src: '192.0.2.50' }), 15, 12);
    } finally {
      wide.close();
    }
  });

  it('keeps working when more sources come than the table holds (least recent out)', () => {
    const small = XdpCapture.open({ listenPort: PORT, ringBytes: 1 << 16, sourceTableSize: MIN_SOURCE_TABLE_SIZE });
    try {
      const before = small.stats();
      for (let i = 0; i < 100; i++) expect(small.testRun(v4Frame({ src: `198.18.${i >> 8}.${i & 0xff}` })).events.length).toBe(1);
      expect(diff(before, small.stats())).toEqual({ captured: 100n });
      // And still limits: the newest source has a bucket of its own.
      expectBurst(small, v4Frame({ src: '198.18.1.1' }), DEFAULT_SOURCE_BURST + 2);
    } finally {
      small.close();
    }
  });
});

/* ---- live capture on a veth ---- */

const GW = 'xa-gw';
const CL = 'xa-cl';
const GW4 = '10.201.0.1';
const CL4 = '10.201.0.2';
const GW6 = 'fd00:201::1';
const CL6 = 'fd00:201::2';
const CL_PORT4 = 40001;
const CL_PORT6 = 40002;

const GATEWAY_CHILD = `
import dgram from 'node:dgram';
import { XdpCapture } from '${REPO_ROOT}/src/capture/addon.js';
import { formatAddress } from '${REPO_ROOT}/src/net/address.js';
const port = Number(process.env.PORT);
// Events cross to the test as JSON, with their endpoints spelled as people read them.
const text = (endpoint) => ({ address: formatAddress(endpoint.address), port: endpoint.port });
const capture = XdpCapture.open({ listenPort: port, ringBytes: 1 << 16 });
const attached = capture.attach(process.env.DEV, 'native');
capture.start((events) => emit({ type: 'events', events: events.map((e) => ({ ...e, src: text(e.src), dst: text(e.dst) })) }));
const sockets = [['udp4', '0.0.0.0'], ['udp6', '::']].map(([type, addr]) => {
  const s = dgram.createSocket(type === 'udp6' ? { type, ipv6Only: true } : { type });
  s.on('message', (msg, rinfo) => emit({ type: 'udp', size: msg.length, first: msg[0], address: rinfo.address, port: rinfo.port }));
  return new Promise((res, rej) => { s.once('error', rej); s.bind(port, addr, () => res(s)); });
});
await Promise.all(sockets);
emit({ type: 'ready', attached });
for await (const line of commands) {
  const cmd = JSON.parse(line);
  if (cmd.cmd === 'stats') emit({ type: 'stats', stats: capture.stats() });
  if (cmd.cmd === 'close') { capture.close(); capture.close(); emit({ type: 'closed' }); process.exit(0); }
}
`;

/* Sends each datagram from a fixed source port, one socket per family. */
const CLIENT_CHILD = `
import dgram from 'node:dgram';
const plan = JSON.parse(process.env.PLAN);
for (const { type, from, to, port, hex } of plan) {
  const s = dgram.createSocket(type);
  await new Promise((res) => s.bind(from, res));
  await new Promise((res, rej) => s.send(Buffer.from(hex, 'hex'), port, to, (err) => (err ? rej(err) : res())));
  s.close();
}
emit({ type: 'sent', count: plan.length });
`;

/* Sends `count` copies of one datagram at once from one socket, per entry. */
const BURST_CHILD = `
import dgram from 'node:dgram';
const plan = JSON.parse(process.env.PLAN);
const elapsed = [];
for (const { type, from, to, port, hex, count } of plan) {
  const s = dgram.createSocket(type);
  await new Promise((res) => s.bind(from, res));
  const msg = Buffer.from(hex, 'hex');
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: count }, () => new Promise((res, rej) => s.send(msg, port, to, (err) => (err ? rej(err) : res())))));
  elapsed.push(process.hrtime.bigint() - t0);
  s.close();
}
emit({ type: 'sent', elapsed });
`;

describe.skipIf(skipReason !== null)('XDP capture on a veth in namespaces', () => {
  let gw: NsChild | null = null;

  beforeAll(() => {
    createNamespaces(GW, CL);
    createVeth({ nsA: GW, ifA: 'xa-gw0', nsB: CL, ifB: 'xa-cl0', addrsA: [`${GW4}/24`, `${GW6}/64`], addrsB: [`${CL4}/24`, `${CL6}/64`] });
  });

  afterAll(async () => {
    await gw?.stop();
    deleteNamespaces(GW, CL);
  });

  it('delivers exactly the initiations, and every datagram still reaches the socket', async () => {
    gw = NsChild.spawn(GW, GATEWAY_CHILD, { PORT: String(PORT), DEV: 'xa-gw0' });
    const ready = await gw.next<Message & { attached: { ifindex: number; mode: string } }>((m) => m.type === 'ready');
    expect(ready.attached.mode).toBe('native');

    const payloads = [
      message(), // the initiation
      message(148, 2),
      message(147),
      message(149),
      message(MESSAGE_RESPONSE_SIZE, 2),
      message(148, 1, [0, 1, 0]),
    ];
    const plan = [
      ...payloads.map((m) => ({ type: 'udp4', from: CL_PORT4, to: GW4, port: PORT, hex: m.toString('hex') })),
      ...payloads.map((m) => ({ type: 'udp6', from: CL_PORT6, to: GW6, port: PORT, hex: m.toString('hex') })),
      { type: 'udp4', from: CL_PORT4, to: GW4, port: PORT + 1, hex: INIT.toString('hex') },
    ];
    const client = NsChild.spawn(CL, CLIENT_CHILD, { PLAN: JSON.stringify(plan) });
    await client.next((m) => m.type === 'sent');
    await client.stop();

    // XDP_PASS: all 12 datagrams to PORT reach the UDP sockets.
    const received: Message[] = [];
    for (let i = 0; i < 2 * payloads.length; i++) received.push(await gw.next((m) => m.type === 'udp'));
    expect(received.filter((m) => m['address'] === CL4 && m['port'] === CL_PORT4).length).toBe(payloads.length);
    expect(received.filter((m) => m['address'] === CL6 && m['port'] === CL_PORT6).length).toBe(payloads.length);

    const events: Array<Record<string, unknown>> = [];
    while (events.length < 2) {
      const batch = await gw.next<Message & { events: Array<Record<string, unknown>> }>((m) => m.type === 'events');
      events.push(...batch.events);
    }
    const byFamily = new Map(events.map((e) => [e['family'], e]));
    expect(events.length).toBe(2);
    for (const [family, src, dst, port] of [
      [4, CL4, GW4, CL_PORT4],
      [6, CL6, GW6, CL_PORT6],
    ] as const) {
      const e = byFamily.get(family)!;
      expect(e).toBeDefined();
      expect(e['src']).toEqual({ address: src, port });
      expect(e['dst']).toEqual({ address: dst, port: PORT });
      expect(e['ifindex']).toBe(ready.attached.ifindex);
      expect(e['message']).toBe(INIT.toString('hex'));
    }

    gw.send({ cmd: 'stats' });
    const { stats } = await gw.next<Message & { stats: Record<CaptureStatName, string> }>((m) => m.type === 'stats');
    expect(stats.captured).toBe('2');
    expect(stats.wrong_size).toBe('6');
    expect(stats.not_initiation).toBe('2');
    expect(stats.bad_reserved).toBe('2');
    expect(Number(stats.other_port)).toBeGreaterThanOrEqual(1);
    // No more capture events arrived than the two initiations.
    expect(gw.messages.filter((m) => m.type === 'events').flatMap((m) => m['events'] as unknown[]).length).toBe(2);

    gw.send({ cmd: 'close' });
    await gw.next((m) => m.type === 'closed');
    expect(await gw.exited()).toBe(0);
  });

  it('captures a burst from one source up to its limit; every datagram still reaches the socket', async () => {
    // The gateway child opens the capture with the production defaults.
    gw = NsChild.spawn(GW, GATEWAY_CHILD, { PORT: String(PORT), DEV: 'xa-gw0' });
    await gw.next((m) => m.type === 'ready');
    const count = 20;
    const plan = [
      { type: 'udp4', from: CL_PORT4, to: GW4, port: PORT, hex: INIT.toString('hex'), count },
      { type: 'udp6', from: CL_PORT6, to: GW6, port: PORT, hex: INIT.toString('hex'), count },
    ];
    const client = NsChild.spawn(CL, BURST_CHILD, { PLAN: JSON.stringify(plan) });
    const sent = await client.next<Message & { elapsed: string[] }>((m) => m.type === 'sent');
    await client.stop();

    // XDP_PASS: all 40 reach the sockets, limited or not.
    const received: Message[] = [];
    for (let i = 0; i < 2 * count; i++) received.push(await gw.next((m) => m.type === 'udp'));
    expect(received.filter((m) => m['address'] === CL4 && m['first'] === 1).length).toBe(count);
    expect(received.filter((m) => m['address'] === CL6 && m['first'] === 1).length).toBe(count);

    // DEFAULT_SOURCE_BURST records per source, plus what refilled while sending (0 unless it took 50 ms).
    const extra = sent.elapsed.map((ns) => refilled(BigInt(ns)));
    const expected = 2 * DEFAULT_SOURCE_BURST;
    const events: Array<Record<string, unknown>> = [];
    while (events.length < expected) {
      const batch = await gw.next<Message & { events: Array<Record<string, unknown>> }>((m) => m.type === 'events');
      events.push(...batch.events);
    }
    gw.send({ cmd: 'stats' });
    const { stats } = await gw.next<Message & { stats: Record<CaptureStatName, string> }>((m) => m.type === 'stats');
    const all = gw.messages.filter((m) => m.type === 'events').flatMap((m) => m['events'] as Array<Record<string, unknown>>);
    for (const [i, family] of [4, 6].entries()) {
      const n = all.filter((e) => e['family'] === family).length;
      expect(n).toBeGreaterThanOrEqual(DEFAULT_SOURCE_BURST);
      expect(n).toBeLessThanOrEqual(DEFAULT_SOURCE_BURST + extra[i]!);
    }
    expect(Number(stats.captured)).toBe(all.length);
    expect(Number(stats.captured) + Number(stats.rate_limited)).toBe(2 * count);

    gw.send({ cmd: 'close' });
    await gw.next((m) => m.type === 'closed');
    expect(await gw.exited()).toBe(0);
  });

  it('close() stops the watcher so the process can end by itself, and detaches', async () => {
    const child = NsChild.spawn(GW, `
      import { execFileSync } from 'node:child_process';
      import { XdpCapture } from '${REPO_ROOT}/src/capture/addon.js';
      const capture = XdpCapture.open({ listenPort: ${PORT}, ringBytes: 4096 });
      capture.attach('xa-gw0', 'native');
      capture.start(() => {});
      emit({ type: 'xdp', link: execFileSync('ip', ['-d', 'link', 'show', 'xa-gw0'], { encoding: 'utf8' }) });
      capture.close();
    `);
    const shown = await child.next((m) => m.type === 'xdp');
    expect(String(shown['link'])).toMatch(/prog\/xdp/);
    // No process.exit in the child: only a closed uv handle lets it end.
    expect(await child.exited()).toBe(0);
    expect(ipIn(GW, '-d', 'link', 'show', 'xa-gw0')).not.toMatch(/prog\/xdp/);
  });

  it('attaches in generic mode on request, and auto picks native on a veth', async () => {
    const child = NsChild.spawn(GW, `
      import { execFileSync } from 'node:child_process';
      import { XdpCapture } from '${REPO_ROOT}/src/capture/addon.js';
      const show = () => execFileSync('ip', ['-d', 'link', 'show', 'xa-gw0'], { encoding: 'utf8' });
      const capture = XdpCapture.open({ listenPort: ${PORT}, ringBytes: 4096 });
      const generic = capture.attach('xa-gw0', 'generic');
      const genericLink = show();
      let twice = null;
      try { capture.attach('xa-gw0', 'generic'); } catch (err) { twice = err.message; }
      capture.detach('xa-gw0');
      const detachedLink = show();
      const auto = capture.attach('xa-gw0', 'auto');
      capture.close();
      emit({ type: 'modes', generic, genericLink, twice, detachedLink, auto, closedLink: show() });
    `);
    const m = await child.next((msg) => msg.type === 'modes');
    expect((m['generic'] as { mode: string }).mode).toBe('generic');
    expect(String(m['genericLink'])).toMatch(/xdpgeneric/);
    expect(String(m['twice'])).toMatch(/attach xdp to xa-gw0: File exists/);
    expect(String(m['detachedLink'])).not.toMatch(/prog\/xdp/);
    expect((m['auto'] as { mode: string }).mode).toBe('native');
    expect(String(m['closedLink'])).not.toMatch(/prog\/xdp/);
    expect(await child.exited()).toBe(0);
  });

  it('health() reports a link whose interface went away, and whether the ring is watched', async () => {
    // A second veth pair, inside the gateway namespace, to delete under the capture.
    ipIn(GW, 'link', 'add', 'xa-tmp0', 'type', 'veth', 'peer', 'name', 'xa-tmp1');
    const child = NsChild.spawn(GW, `
      import { execFileSync } from 'node:child_process';
      import { XdpCapture } from '${REPO_ROOT}/src/capture/addon.js';
      const capture = XdpCapture.open({ listenPort: ${PORT}, ringBytes: 4096 });
      capture.attach('xa-gw0', 'native');
      capture.attach('xa-tmp0', 'generic');
      const before = capture.health();
      capture.start(() => {});
      const started = capture.health();
      execFileSync('ip', ['link', 'del', 'xa-tmp0']);
      const gone = capture.health();
      capture.close();
      const str = (h) => ({ ...h, captured: String(h.captured), delivered: String(h.delivered) });
      emit({ type: 'health', before: str(before), started: str(started), gone: str(gone) });
    `);
    const m = await child.next((msg) => msg.type === 'health');
    expect(await child.exited()).toBe(0);
    type Health = { polling: boolean; links: Array<{ ifname: string; live: boolean }> };
    const live = (h: Health) => Object.fromEntries(h.links.map((l) => [l.ifname, l.live]));
    const [before, started, gone] = [m['before'], m['started'], m['gone']] as Health[];
    expect(before!.polling).toBe(false);
    expect(live(before!)).toEqual({ 'xa-gw0': true, 'xa-tmp0': true });
    expect(started!.polling).toBe(true);
    expect(live(gone!)).toEqual({ 'xa-gw0': true, 'xa-tmp0': false });
  });

  it('a process that dies without closing leaves no program attached (BPF link)', async () => {
    const child = NsChild.spawn(GW, `
      import { XdpCapture } from '${REPO_ROOT}/src/capture/addon.js';
      const capture = XdpCapture.open({ listenPort: ${PORT}, ringBytes: 4096 });
      capture.attach('xa-gw0', 'native');
      capture.start(() => {});
      emit({ type: 'attached' });
    `);
    await child.next((m) => m.type === 'attached');
    expect(ipIn(GW, '-d', 'link', 'show', 'xa-gw0')).toMatch(/prog\/xdp/);
    child.proc.kill('SIGKILL');
    await child.exited();
    expect(ipIn(GW, '-d', 'link', 'show', 'xa-gw0')).not.toMatch(/prog\/xdp/);
  });
});
