/**
 * Typed facade over the native addon (addon/build/Release/wgjit.node): the
 * XDP capture program and the raw-socket sender. Every argument is checked
 * here before it crosses into C++; the C++ side checks types again but
 * reports less helpfully.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { REPO_ROOT, requireAddon } from '../native-addon.js';
import { bytesForFamily } from '../net/address.js';
import { isValidIfname } from '../net/ifname.js';
import { parseRecord, RECORD_SIZE } from './record.js';
import type { CaptureEvent } from './types.js';

export const DEFAULT_OBJECT_PATH = resolve(REPO_ROOT, 'bpf/xdp_capture.bpf.o');

/** The ring must be a power-of-two number of pages; 4 KiB pages here. */
export const MIN_RING_BYTES = 4096;
/** Far above any sane need (a record is 216 bytes in the ring) but bounded. */
export const MAX_RING_BYTES = 1 << 30;
export const DEFAULT_RING_BYTES = 1 << 20;
/** BPF_PROG_TEST_RUN wants at least an Ethernet header... */
export const MIN_TEST_FRAME = 14;
/** ...and fits in a page with XDP head and tail room; an MTU-sized frame is plenty. */
export const MAX_TEST_FRAME = 1514;
/** The XDP verdict the program always returns. */
export const XDP_PASS = 2;

/*
 * The XDP program's bounds (bpf/capture_limits.h has the same numbers;
 * loadAddon checks they agree).
 */
/** VLAN tags stepped over (802.1Q and 802.1ad, QinQ); more are counted as vlan_limit. */
export const MAX_VLAN_TAGS = 2;
/** IPv6 hop-by-hop, routing and destination options headers walked to reach UDP; more are ipv6_ext_limit. */
export const MAX_IPV6_EXT_HEADERS = 4;
/** Initiations per second captured from one source (IPv4 address or IPv6 /64): WireGuard's INITIATIONS_PER_SECOND. */
export const DEFAULT_SOURCE_RATE = 20;
/** 0 turns the per-source limit off. */
export const MAX_SOURCE_RATE = 1_000_000;
/** Initiations a source may send at once: WireGuard's INITIATIONS_BURSTABLE. */
export const DEFAULT_SOURCE_BURST = 5;
export const MIN_SOURCE_BURST = 1;
export const MAX_SOURCE_BURST = 1_000_000;
/** Sources remembered at once, least recent out (preallocated kernel memory, about 90 bytes each: 5.5 MiB by default). */
export const DEFAULT_SOURCE_TABLE_SIZE = 65_536;
export const MIN_SOURCE_TABLE_SIZE = 16;
export const MAX_SOURCE_TABLE_SIZE = 1 << 22;

const CAPTURE_LIMITS = {
  maxVlanTags: MAX_VLAN_TAGS,
  maxIpv6ExtHeaders: MAX_IPV6_EXT_HEADERS,
  defaultSourceRate: DEFAULT_SOURCE_RATE,
  maxSourceRate: MAX_SOURCE_RATE,
  defaultSourceBurst: DEFAULT_SOURCE_BURST,
  minSourceBurst: MIN_SOURCE_BURST,
  maxSourceBurst: MAX_SOURCE_BURST,
  defaultSourceTableSize: DEFAULT_SOURCE_TABLE_SIZE,
  minSourceTableSize: MIN_SOURCE_TABLE_SIZE,
  maxSourceTableSize: MAX_SOURCE_TABLE_SIZE,
} as const;

/** Names of the XDP program's exit counters, in enum capture_stat order. */
export const CAPTURE_STAT_NAMES = [
  'captured',
  'rate_limited',
  'source_table_error',
  'ringbuf_full',
  'truncated',
  'vlan_limit',
  'not_ip',
  'bad_ip_header',
  'fragment',
  'ipv6_ext_limit',
  'not_udp',
  'other_port',
  'wrong_size',
  'not_initiation',
  'bad_reserved',
] as const;
export type CaptureStatName = (typeof CAPTURE_STAT_NAMES)[number];
export type CaptureStats = Record<CaptureStatName, bigint>;

export type XdpMode = 'auto' | 'native' | 'generic';

/** What the kernel says of one attachment now. */
export interface LinkHealth {
  ifname: string;
  ifindex: number;
  /** Its BPF link still holds the interface (false once the interface went away or someone detached it). */
  live: boolean;
}

/** Whether the capture is working, from cheap reads (no packet, one syscall per attachment and per counter). */
export interface CaptureHealth {
  /** The ring buffer is watched: start() ran and close() did not. */
  polling: boolean;
  links: LinkHealth[];
  /** Records the XDP program put into the ring (its `captured` counter). */
  captured: bigint;
  /** Records taken out of the ring so far (start()'s deliveries and testRun()'s drains). */
  delivered: bigint;
}
export interface Attached {
  ifindex: number;
  mode: 'native' | 'generic';
}

/* The native module's shape (addon/wgjit.cc). */
interface NativeCapture {
  attach(ifname: string, mode: XdpMode): Attached;
  detach(ifname: string): void;
  start(callback: (records: Buffer[]) => void): void;
  stats(): bigint[];
  health(): { polling: boolean; links: LinkHealth[] };
  testRun(frame: Buffer, drain: boolean): { retval: number; records: Buffer[] };
  close(): void;
}
interface NativeAddon {
  Capture: new (
    objectPath: string,
    listenPort: number,
    ringBytes: number,
    sourceRate: number,
    sourceBurst: number,
    sourceTableSize: number,
  ) => NativeCapture;
  rawSend(family: 4 | 6, packet: Buffer, dstAddress: Buffer): void;
  statNames: string[];
  recordSize: number;
  /* Absent from an addon built before the limits existed. */
  captureLimits?: Record<keyof typeof CAPTURE_LIMITS, number>;
}

let native: NativeAddon | null = null;

/** Loads the addon once, and checks it was built from the same layout as this file. */
export function loadAddon(): NativeAddon {
  if (native !== null) return native;
  const mod = requireAddon() as unknown as NativeAddon;
  if (mod.recordSize !== RECORD_SIZE) {
    throw new Error(`addon record size ${mod.recordSize} != ${RECORD_SIZE}: rebuild with make`);
  }
  if (mod.statNames.join() !== CAPTURE_STAT_NAMES.join()) {
    throw new Error(`addon stat names [${mod.statNames.join()}] differ from [${CAPTURE_STAT_NAMES.join()}]: rebuild with make`);
  }
  if (typeof (mod.Capture.prototype as Partial<NativeCapture>).health !== 'function') {
    throw new Error('addon has no Capture.health: rebuild with make');
  }
  for (const [name, value] of Object.entries(CAPTURE_LIMITS)) {
    const built = mod.captureLimits?.[name as keyof typeof CAPTURE_LIMITS];
    if (built !== value) throw new Error(`addon limit ${name} is ${built}, not ${value}: rebuild with make`);
  }
  native = mod;
  return mod;
}

function checkWhole(value: unknown, label: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`${label} must be an integer in ${min}..${max}, got ${String(value)}`);
  }
  return value;
}

function checkRingBytes(bytes: unknown): number {
  if (
    typeof bytes !== 'number' ||
    !Number.isInteger(bytes) ||
    bytes < MIN_RING_BYTES ||
    bytes > MAX_RING_BYTES ||
    (bytes & (bytes - 1)) !== 0
  ) {
    throw new RangeError(`ringBytes must be a power of two in ${MIN_RING_BYTES}..${MAX_RING_BYTES}, got ${String(bytes)}`);
  }
  return bytes;
}

function checkIfname(name: unknown): string {
  if (!isValidIfname(name)) throw new RangeError(`bad interface name ${JSON.stringify(name)}`);
  return name;
}

function checkMode(mode: unknown): XdpMode {
  if (mode !== 'auto' && mode !== 'native' && mode !== 'generic') {
    throw new RangeError(`XDP mode must be auto, native or generic, got ${String(mode)}`);
  }
  return mode;
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export interface CaptureOptions {
  /** Default: bpf/xdp_capture.bpf.o in the repository. */
  objectPath?: string;
  /** The WireGuard listen port whose initiations are captured. */
  listenPort: number;
  /** Ring buffer size in bytes, a power of two. Default DEFAULT_RING_BYTES. */
  ringBytes?: number;
  /**
   * Initiations per second captured from one source (an IPv4 address, an
   * IPv6 /64); more are counted as rate_limited and not captured (the
   * packets still pass). 0..MAX_SOURCE_RATE, 0 turns the limit off.
   * Default DEFAULT_SOURCE_RATE (20).
   */
  sourceRate?: number;
  /** Initiations a source may send at once. MIN_SOURCE_BURST..MAX_SOURCE_BURST, default DEFAULT_SOURCE_BURST (5). */
  sourceBurst?: number;
  /**
   * Sources remembered, least recent out. MIN_SOURCE_TABLE_SIZE..
   * MAX_SOURCE_TABLE_SIZE, default DEFAULT_SOURCE_TABLE_SIZE (65,536).
   */
  sourceTableSize?: number;
}

export interface TestRunResult {
  /** The XDP verdict: always XDP_PASS for this program. */
  retval: number;
  events: CaptureEvent[];
  /** Raw records as the ring held them, for layout checks. */
  records: Buffer[];
}

/**
 * The loaded XDP program. Open → attach → start; close() detaches and frees
 * everything (attachments are BPF links, so the kernel also removes them if
 * the process dies).
 */
export class XdpCapture {
  #native: NativeCapture | null;
  #badRecords = 0;
  #delivered = 0n;

  private constructor(n: NativeCapture) {
    this.#native = n;
  }

  static open(opts: CaptureOptions): XdpCapture {
    const objectPath = opts.objectPath ?? DEFAULT_OBJECT_PATH;
    if (typeof objectPath !== 'string' || objectPath.length === 0) throw new TypeError('objectPath must be a non-empty string');
    const port = checkWhole(opts.listenPort, 'listenPort', 1, 65535);
    const ring = checkRingBytes(opts.ringBytes ?? DEFAULT_RING_BYTES);
    const rate = checkWhole(opts.sourceRate ?? DEFAULT_SOURCE_RATE, 'sourceRate', 0, MAX_SOURCE_RATE);
    const burst = checkWhole(opts.sourceBurst ?? DEFAULT_SOURCE_BURST, 'sourceBurst', MIN_SOURCE_BURST, MAX_SOURCE_BURST);
    const table = checkWhole(opts.sourceTableSize ?? DEFAULT_SOURCE_TABLE_SIZE, 'sourceTableSize', MIN_SOURCE_TABLE_SIZE, MAX_SOURCE_TABLE_SIZE);
    const addon = loadAddon();
    if (!existsSync(objectPath)) throw new Error(`BPF object not built (${objectPath}): run make`);
    return new XdpCapture(new addon.Capture(objectPath, port, ring, rate, burst, table));
  }

  #handle(): NativeCapture {
    if (this.#native === null) throw new Error('capture is closed');
    return this.#native;
  }

  attach(ifname: string, mode: XdpMode = 'auto'): Attached {
    return this.#handle().attach(checkIfname(ifname), checkMode(mode));
  }

  detach(ifname: string): void {
    this.#handle().detach(checkIfname(ifname));
  }

  /**
   * Delivers captured initiations, one call per ring-buffer wakeup (at most
   * 1024 events each). A record that does not parse is counted in
   * badRecords and skipped.
   */
  start(onEvents: (events: CaptureEvent[]) => void): void {
    if (typeof onEvents !== 'function') throw new TypeError('onEvents must be a function');
    this.#handle().start((records) => {
      const events = this.#parse(records);
      if (events.length > 0) onEvents(events);
    });
  }

  /** Exit counters of the XDP program, summed over CPUs. */
  stats(): CaptureStats {
    const values = this.#handle().stats();
    const out = {} as CaptureStats;
    CAPTURE_STAT_NAMES.forEach((name, i) => {
      out[name] = values[i] ?? 0n;
    });
    return out;
  }

  /**
   * Attachments, ring watcher and ring traffic, for readiness: a record
   * captured and not yet delivered is waiting in the ring (or the watcher
   * is stuck: src/daemon/readiness.ts tells the two apart over time).
   */
  health(): CaptureHealth {
    const n = this.#handle();
    const { polling, links } = n.health();
    return { polling, links, captured: this.stats().captured, delivered: this.#delivered };
  }

  /** close() ran. */
  get closed(): boolean {
    return this.#native === null;
  }

  /** Records the addon delivered that did not parse (none expected). */
  get badRecords(): number {
    return this.#badRecords;
  }

  /**
   * Runs one frame through the program (BPF_PROG_TEST_RUN) and returns the
   * verdict and what it put in the ring. If start() is running, records
   * captured from live traffic at the same moment may show up here too.
   * With drain false the records stay in the ring (to fill it on purpose).
   */
  testRun(frame: Uint8Array, opts: { drain?: boolean } = {}): TestRunResult {
    if (!(frame instanceof Uint8Array)) throw new TypeError('frame must be a Uint8Array');
    if (frame.length < MIN_TEST_FRAME || frame.length > MAX_TEST_FRAME) {
      throw new RangeError(`frame must be ${MIN_TEST_FRAME}..${MAX_TEST_FRAME} bytes, got ${frame.length}`);
    }
    const drain = opts.drain ?? true;
    if (typeof drain !== 'boolean') throw new TypeError('drain must be a boolean');
    const { retval, records } = this.#handle().testRun(asBuffer(frame), drain);
    return { retval, records, events: this.#parse(records) };
  }

  /** Idempotent. */
  close(): void {
    if (this.#native === null) return;
    const n = this.#native;
    this.#native = null;
    n.close();
  }

  #parse(records: Buffer[]): CaptureEvent[] {
    const events: CaptureEvent[] = [];
    this.#delivered += BigInt(records.length);
    for (const r of records) {
      const parsed = parseRecord(r);
      if (parsed.ok) events.push(parsed.event);
      else this.#badRecords++;
    }
    return events;
  }
}

/**
 * Sends a complete IP packet (header included) through a raw socket, so the
 * kernel delivers it as if it had arrived; `dstAddress` is the destination's
 * network-order bytes (4 for IPv4, 16 for IPv6). Throws with the errno text.
 */
export function rawSend(family: 4 | 6, packet: Uint8Array, dstAddress: Uint8Array): void {
  if (family !== 4 && family !== 6) throw new RangeError(`family must be 4 or 6, got ${String(family)}`);
  if (!(packet instanceof Uint8Array) || packet.length === 0 || packet.length > 65535) {
    throw new RangeError('packet must be a Uint8Array of 1..65535 bytes');
  }
  if (!(dstAddress instanceof Uint8Array) || dstAddress.length !== bytesForFamily(family)) {
    throw new RangeError(`dstAddress must be the ${bytesForFamily(family)} bytes of an IPv${family} address`);
  }
  loadAddon().rawSend(family, asBuffer(packet), asBuffer(dstAddress));
}
