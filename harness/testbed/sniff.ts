/**
 * Watches one client's WireGuard handshakes on its underlay veth with
 * tcpdump, to answer the question wgjit exists for: was the client's FIRST
 * initiation answered (initiationsBeforeResponse === 1), and how long did
 * the answer take (firstResponseAt - firstInitiationAt, from capture
 * timestamps, so neither Node's nor tcpdump's scheduling adds to it).
 */
import { spawnIn, WAIT_SCALE, type Spawned } from './exec.js';

/** WireGuard message sizes and types (see REFERENCE.md). */
export const INITIATION_TYPE = 1;
export const INITIATION_SIZE = 148;
export const RESPONSE_TYPE = 2;
export const RESPONSE_SIZE = 92;
export const COOKIE_REPLY_TYPE = 3;
export const COOKIE_REPLY_SIZE = 64;
/** tcpdump opens the interface in well under a second; a few seconds means it failed. */
export const SNIFFER_START_TIMEOUT_MS = 5_000;

const IPV4_MIN_HEADER = 20;
const IPV6_HEADER = 40;
const UDP_HEADER = 8;
const IPPROTO_UDP = 17;

export type HandshakeKind = 'initiation' | 'response' | 'cookie';

export interface HandshakePacket {
  kind: HandshakeKind;
  /** Capture time, Unix milliseconds with microsecond precision. */
  at: number;
  srcPort: number;
  dstPort: number;
}

/**
 * Classifies one captured IP packet (bytes from the IP header on, as
 * `tcpdump -x` prints them) as a WireGuard handshake message to or from
 * `port`, or null. Only as many bytes as needed must be present: the
 * result is 'more' while too few have arrived to tell.
 */
export function classifyPacket(bytes: readonly number[], port: number, at: number): HandshakePacket | null | 'more' {
  if (bytes.length < 1) return 'more';
  const version = bytes[0]! >> 4;
  let udp: number;
  if (version === 4) {
    if (bytes.length < IPV4_MIN_HEADER) return 'more';
    if (bytes[9] !== IPPROTO_UDP) return null;
    udp = (bytes[0]! & 0x0f) * 4;
  } else if (version === 6) {
    if (bytes.length < IPV6_HEADER) return 'more';
    if (bytes[6] !== IPPROTO_UDP) return null; // extension headers: not WireGuard traffic we make
    udp = IPV6_HEADER;
  } else {
    return null;
  }
  if (bytes.length < udp + UDP_HEADER + 1) return 'more';
  const word = (i: number) => (bytes[i]! << 8) | bytes[i + 1]!;
  const srcPort = word(udp);
  const dstPort = word(udp + 2);
  const payload = word(udp + 4) - UDP_HEADER;
  const type = bytes[udp + UDP_HEADER]!;
  if (dstPort === port && payload === INITIATION_SIZE && type === INITIATION_TYPE) {
    return { kind: 'initiation', at, srcPort, dstPort };
  }
  if (srcPort === port && payload === RESPONSE_SIZE && type === RESPONSE_TYPE) return { kind: 'response', at, srcPort, dstPort };
  if (srcPort === port && payload === COOKIE_REPLY_SIZE && type === COOKIE_REPLY_TYPE) return { kind: 'cookie', at, srcPort, dstPort };
  return null;
}

const HEADER_LINE = /^(\d+)\.(\d{6}) /;
const HEX_LINE = /^\s+0x[0-9a-f]+:\s+([0-9a-f ]+)/;

/**
 * Incremental parser of `tcpdump -n -tt -x` output: feed it text as it
 * arrives, it calls `onPacket` for every handshake message as soon as its
 * first bytes are in (without waiting for the next packet's header).
 */
export class TcpdumpParser {
  private partial = '';
  private at = 0;
  private bytes: number[] = [];
  private decided = true;

  constructor(
    private readonly port: number,
    private readonly onPacket: (p: HandshakePacket) => void,
  ) {}

  push(text: string): void {
    this.partial += text;
    let nl: number;
    while ((nl = this.partial.indexOf('\n')) >= 0) {
      this.line(this.partial.slice(0, nl));
      this.partial = this.partial.slice(nl + 1);
    }
  }

  private line(line: string): void {
    const head = HEADER_LINE.exec(line);
    if (head) {
      this.at = Number(head[1]) * 1000 + Number(head[2]) / 1000;
      this.bytes = [];
      this.decided = false;
      return;
    }
    if (this.decided) return;
    const hex = HEX_LINE.exec(line);
    if (!hex) return;
    for (const group of hex[1]!.trim().split(/\s+/)) {
      for (let i = 0; i + 1 < group.length; i += 2) this.bytes.push(parseInt(group.slice(i, i + 2), 16));
    }
    const result = classifyPacket(this.bytes, this.port, this.at);
    if (result === 'more') return;
    this.decided = true;
    if (result) this.onPacket(result);
  }
}

export interface SnifferOptions {
  ns: string;
  ifname: string;
  /** The gateway's WireGuard listen port. */
  port: number;
}

export interface HandshakeSniffer {
  /** Every handshake message seen, in capture order. */
  readonly packets: readonly HandshakePacket[];
  readonly firstInitiationAt: number | null;
  readonly firstResponseAt: number | null;
  /** Initiations the client sent before the first response; null until one arrives. 1 = first one answered. */
  readonly initiationsBeforeResponse: number | null;
  readonly initiations: number;
  readonly responses: number;
  readonly cookieReplies: number;
  /** Resolves true once a response has been seen, false after `timeoutMs`. */
  waitForResponse(timeoutMs: number): Promise<boolean>;
  waitForInitiation(timeoutMs: number): Promise<boolean>;
  /** Stops tcpdump. Idempotent. */
  stop(): Promise<void>;
}

class Sniffer implements HandshakeSniffer {
  readonly packets: HandshakePacket[] = [];
  private waiters: (() => void)[] = [];
  proc: Spawned | null = null;

  private count(kind: HandshakeKind): number {
    return this.packets.filter((p) => p.kind === kind).length;
  }

  private first(kind: HandshakeKind): HandshakePacket | undefined {
    return this.packets.find((p) => p.kind === kind);
  }

  get firstInitiationAt(): number | null {
    return this.first('initiation')?.at ?? null;
  }

  get firstResponseAt(): number | null {
    return this.first('response')?.at ?? null;
  }

  get initiationsBeforeResponse(): number | null {
    const i = this.packets.findIndex((p) => p.kind === 'response');
    return i < 0 ? null : this.packets.slice(0, i).filter((p) => p.kind === 'initiation').length;
  }

  get initiations(): number {
    return this.count('initiation');
  }

  get responses(): number {
    return this.count('response');
  }

  get cookieReplies(): number {
    return this.count('cookie');
  }

  add(p: HandshakePacket): void {
    this.packets.push(p);
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  private async waitUntil(done: () => boolean, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!done()) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return true;
  }

  waitForResponse(timeoutMs: number): Promise<boolean> {
    return this.waitUntil(() => this.responses > 0, timeoutMs);
  }

  waitForInitiation(timeoutMs: number): Promise<boolean> {
    return this.waitUntil(() => this.initiations > 0, timeoutMs);
  }

  async stop(): Promise<void> {
    await this.proc?.kill();
  }
}

/** Starts tcpdump in `ns` on `ifname` and resolves once it is capturing. */
export async function startHandshakeSniffer(opts: SnifferOptions): Promise<HandshakeSniffer> {
  const sniffer = new Sniffer();
  const parser = new TcpdumpParser(opts.port, (p) => sniffer.add(p));
  let ready: () => void = () => undefined;
  const listening = new Promise<void>((resolve) => (ready = resolve));
  let stderr = '';
  const proc = spawnIn(opts.ns, 'tcpdump', ['-i', opts.ifname, '-n', '-tt', '-l', '-U', '-x', 'udp', 'port', String(opts.port)], {
    onStdout: (chunk) => parser.push(chunk),
    onStderr: (chunk) => {
      stderr += chunk;
      if (stderr.includes('listening on')) ready();
    },
  });
  sniffer.proc = proc;
  let timer: NodeJS.Timeout | undefined;
  const failed = Promise.race([
    proc.exited.then(() => {
      throw new Error(`tcpdump on ${opts.ifname} in ${opts.ns} exited: ${proc.stderrTail().trim() || '(no stderr)'}`);
    }),
    new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`tcpdump on ${opts.ifname} in ${opts.ns} not listening after ${SNIFFER_START_TIMEOUT_MS * WAIT_SCALE} ms`)),
        SNIFFER_START_TIMEOUT_MS * WAIT_SCALE,
      );
    }),
  ]);
  failed.catch(() => undefined);
  try {
    await Promise.race([listening, failed]);
  } catch (e) {
    await proc.kill();
    throw e;
  } finally {
    clearTimeout(timer);
  }
  return sniffer;
}
