/**
 * WireGuard interfaces in network namespaces, configured with `wg`: either
 * wireguard-go (userspace) or the kernel's own (`ip link add … type
 * wireguard`, where the running kernel has it: in the test VM).
 *
 * wireguard-go's run directory (/var/run/wireguard) is shared by every
 * namespace, so interface names must be unique across all of them: the
 * socket `<ifname>.sock` is the only handle on the device.
 */
import { existsSync, rmSync, unlinkSync } from 'node:fs';
import { mkdtemp, rm, unlink, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatKey, publicKeyOf } from '../../src/handshake/keys.js';
import { generatePrivateKey } from '../noise/keys.js';
import { nsRun, onExit, spawnIn, waitFor, type Spawned } from './exec.js';
import { addAddress, checkIfname, createNamespace, deleteNamespace, linkUp } from './netns.js';

export const WG_RUN_DIR = '/var/run/wireguard';
/** wireguard-go creates its TUN device and socket in a few ms; seconds mean it failed. */
export const WG_START_TIMEOUT_MS = 10_000;
/**
 * Peers one wireguard-go device holds at most (its device.MaxPeers, 1 << 16);
 * a `set` adding one more is answered errno=-22. Kernel WireGuard allows
 * 1 << 20 (MAX_PEERS_PER_DEVICE).
 */
export const WIREGUARD_GO_MAX_PEERS = 1 << 16;

export type WgLogLevel = 'verbose' | 'error' | 'silent';
/** Which WireGuard: the kernel's, wireguard-go, or the kernel's where it exists. */
export type WgKind = 'kernel' | 'userspace';

let kernelProbe: Promise<boolean> | null = null;

/** Whether this kernel can create WireGuard links (tried once, in a scratch namespace). */
export function kernelHasWireGuard(): Promise<boolean> {
  kernelProbe ??= (async () => {
    const ns = `wgprobe${process.pid}`;
    try {
      await createNamespace(ns);
    } catch {
      return false;
    }
    try {
      await nsRun(ns, 'ip', ['link', 'add', 'wgprobe0', 'type', 'wireguard']);
      return true;
    } catch {
      return false;
    } finally {
      await deleteNamespace(ns).catch(() => undefined);
    }
  })();
  return kernelProbe;
}

export interface WgPeerSpec {
  publicKey: string;
  presharedKey?: string;
  /** `a.b.c.d:port` or `[v6]:port`. */
  endpoint?: string;
  allowedIPs?: string[];
  /** Seconds; omitted or 0 = off. */
  persistentKeepalive?: number;
}

export interface WgSetOptions {
  privateKey?: Uint8Array;
  listenPort?: number;
  peers?: WgPeerSpec[];
}

let secretDir: Promise<string> | null = null;

/** A private (0700) directory for key files handed to `wg set`. */
function secretsDir(): Promise<string> {
  secretDir ??= mkdtemp(join(tmpdir(), 'wgjit-keys-')).then((dir) => {
    onExit(() => rmSync(dir, { recursive: true, force: true }));
    return dir;
  });
  return secretDir;
}

async function withKeyFiles<T>(keys: string[], fn: (paths: string[]) => Promise<T>): Promise<T> {
  const dir = await secretsDir();
  const paths = keys.map((_, i) => join(dir, `k${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}-${i}`));
  try {
    await Promise.all(keys.map((k, i) => writeFile(paths[i]!, `${k}\n`, { mode: 0o600 })));
    return await fn(paths);
  } finally {
    await Promise.all(paths.map((p) => rm(p, { force: true })));
  }
}

/** `wg set IFNAME ...`: keys go through 0600 files, never the command line. */
export async function wgSet(ns: string, ifname: string, opts: WgSetOptions): Promise<void> {
  const secrets: string[] = [];
  const slot = (secret: string) => secrets.push(secret) - 1;
  const plan: (string | { secret: number })[] = [];
  if (opts.privateKey) plan.push('private-key', { secret: slot(formatKey(opts.privateKey)) });
  if (opts.listenPort !== undefined) plan.push('listen-port', String(opts.listenPort));
  for (const p of opts.peers ?? []) {
    plan.push('peer', p.publicKey);
    if (p.presharedKey) plan.push('preshared-key', { secret: slot(p.presharedKey) });
    if (p.endpoint) plan.push('endpoint', p.endpoint);
    if (p.allowedIPs?.length) plan.push('allowed-ips', p.allowedIPs.join(','));
    if (p.persistentKeepalive !== undefined) plan.push('persistent-keepalive', p.persistentKeepalive ? String(p.persistentKeepalive) : 'off');
  }
  if (plan.length === 0) return;
  await withKeyFiles(secrets, (paths) =>
    nsRun(ns, 'wg', ['set', ifname, ...plan.map((a) => (typeof a === 'string' ? a : paths[a.secret]!))]),
  );
}

export interface WgDumpPeer {
  publicKey: string;
  presharedKey: string | null;
  endpoint: string | null;
  allowedIPs: string[];
  /** Unix seconds, 0 = never. */
  latestHandshake: number;
  rxBytes: bigint;
  txBytes: bigint;
  /** Seconds, 0 = off. */
  persistentKeepalive: number;
}

export interface WgDump {
  privateKey: string | null;
  publicKey: string | null;
  listenPort: number;
  fwmark: number;
  peers: WgDumpPeer[];
}

const none = (v: string | undefined) => (v === undefined || v === '(none)' ? null : v);

/** Parses `wg show IFNAME dump`. */
export function parseWgDump(text: string): WgDump {
  const lines = text.split('\n').filter((l) => l !== '');
  const head = (lines.shift() ?? '').split('\t');
  if (head.length < 4) throw new Error(`unexpected wg dump header: ${JSON.stringify(head.slice(2))}`);
  return {
    privateKey: none(head[0]),
    publicKey: none(head[1]),
    listenPort: Number(head[2]),
    fwmark: head[3] === 'off' ? 0 : Number(head[3]),
    peers: lines.map((line) => {
      const f = line.split('\t');
      if (f.length < 8) throw new Error(`unexpected wg dump peer line with ${f.length} fields`);
      const allowed = none(f[3]);
      return {
        publicKey: f[0]!,
        presharedKey: none(f[1]),
        endpoint: none(f[2]),
        allowedIPs: allowed === null ? [] : allowed.split(','),
        latestHandshake: Number(f[4]),
        rxBytes: BigInt(f[5]!),
        txBytes: BigInt(f[6]!),
        persistentKeepalive: f[7] === 'off' ? 0 : Number(f[7]),
      };
    }),
  };
}

export async function wgShowDump(ns: string, ifname: string): Promise<WgDump> {
  const { stdout } = await nsRun(ns, 'wg', ['show', ifname, 'dump']);
  return parseWgDump(stdout);
}

export function socketPath(ifname: string): string {
  return join(WG_RUN_DIR, `${ifname}.sock`);
}

/** Whether something accepts connections on the interface's UAPI socket. */
export function socketAlive(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ path });
    s.on('connect', () => {
      s.end();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

export interface StartWireguardOptions extends WgSetOptions {
  ns: string;
  ifname: string;
  /** Addresses (CIDR) put on the interface before it is brought up. */
  addresses?: string[];
  /** wireguard-go LOG_LEVEL; default 'error'. */
  logLevel?: WgLogLevel;
  /** Each line wireguard-go logs (it logs to stdout). */
  onLog?: (line: string) => void;
}

/** A running WireGuard interface: wireguard-go (proc set) or a kernel link. */
export class WgInterface {
  private unregisterSocket: () => void = () => undefined;

  private constructor(
    readonly ns: string,
    readonly ifname: string,
    /** The interface's private key (a secret: never log it). */
    readonly privateKey: Uint8Array,
    readonly publicKey: string,
    readonly listenPort: number | undefined,
    /** wireguard-go; null for a kernel link. */
    private readonly proc: Spawned | null,
  ) {}

  get kind(): WgKind {
    return this.proc === null ? 'kernel' : 'userspace';
  }

  get socketPath(): string {
    return socketPath(this.ifname);
  }

  get pid(): number {
    if (this.proc === null) throw new Error(`${this.ifname} is a kernel link: there is no process`);
    return this.proc.pid;
  }

  isRunning(): boolean {
    return this.proc === null || this.proc.isRunning();
  }

  /** A kernel WireGuard link `ifname` in `ns`, configured like start() does. */
  static async create(opts: StartWireguardOptions): Promise<WgInterface> {
    const { ns, ifname } = opts;
    checkIfname(ifname);
    await nsRun(ns, 'ip', ['link', 'add', ifname, 'type', 'wireguard']);
    const privateKey = opts.privateKey ?? generatePrivateKey();
    const wg = new WgInterface(ns, ifname, privateKey, formatKey(publicKeyOf(privateKey)), opts.listenPort, null);
    try {
      await wg.configure(opts);
    } catch (e) {
      await wg.stop();
      throw e;
    }
    return wg;
  }

  /** Key, port and peers with `wg set`, then the addresses, then the link up. */
  private async configure(opts: StartWireguardOptions): Promise<void> {
    await wgSet(this.ns, this.ifname, { privateKey: this.privateKey, listenPort: opts.listenPort, peers: opts.peers });
    for (const a of opts.addresses ?? []) await addAddress(this.ns, this.ifname, a);
    await linkUp(this.ns, this.ifname);
  }

  /** The kernel's WireGuard or wireguard-go, as `kind` says. */
  static open(kind: WgKind, opts: StartWireguardOptions): Promise<WgInterface> {
    return kind === 'kernel' ? WgInterface.create(opts) : WgInterface.start(opts);
  }

  /**
   * Starts `wireguard-go -f IFNAME` in `ns` (a child we can kill), waits for
   * its socket, sets key (a fresh one unless given), port and peers with
   * `wg set`, adds the addresses and brings the link up.
   */
  static async start(opts: StartWireguardOptions): Promise<WgInterface> {
    const { ns, ifname } = opts;
    checkIfname(ifname);
    const path = socketPath(ifname);
    if (existsSync(path)) {
      if (await socketAlive(path)) {
        throw new Error(`${path} is in use: another wireguard-go serves interface ${ifname} (names are shared by all namespaces)`);
      }
      await unlink(path).catch(() => undefined);
    }
    let log = '';
    const proc = spawnIn(ns, 'wireguard-go', ['-f', ifname], {
      env: { ...process.env, LOG_LEVEL: opts.logLevel ?? 'error', WG_PROCESS_FOREGROUND: '1' },
      onStdout: (chunk) => {
        log += chunk;
        let nl: number;
        while ((nl = log.indexOf('\n')) >= 0) {
          opts.onLog?.(log.slice(0, nl));
          log = log.slice(nl + 1);
        }
      },
    });
    const privateKey = opts.privateKey ?? generatePrivateKey();
    const wg = new WgInterface(ns, ifname, privateKey, formatKey(publicKeyOf(privateKey)), opts.listenPort, proc);
    // Killed at exit with SIGKILL, wireguard-go cannot remove its socket itself.
    wg.unregisterSocket = onExit(() => {
      try {
        unlinkSync(path);
      } catch {
        // gone already
      }
    });
    try {
      await waitFor(
        `wireguard-go ${ifname} in ${ns} to serve ${path}`,
        async () => {
          if (!proc.isRunning()) {
            throw new Error(`wireguard-go ${ifname} in ${ns} exited: ${proc.stderrTail().trim() || '(no stderr)'}`);
          }
          return existsSync(path) && (await socketAlive(path));
        },
        WG_START_TIMEOUT_MS,
      );
      await wg.configure(opts);
    } catch (e) {
      await wg.stop();
      throw e;
    }
    return wg;
  }

  setPeers(peers: WgPeerSpec[]): Promise<void> {
    return wgSet(this.ns, this.ifname, { peers });
  }

  async removePeer(publicKey: string): Promise<void> {
    await nsRun(this.ns, 'wg', ['set', this.ifname, 'peer', publicKey, 'remove']);
  }

  dump(): Promise<WgDump> {
    return wgShowDump(this.ns, this.ifname);
  }

  /** Kills wireguard-go and removes its socket if it left one, or deletes the kernel link. Idempotent. */
  async stop(): Promise<void> {
    if (this.proc === null) {
      await nsRun(this.ns, 'ip', ['link', 'del', this.ifname]).catch(() => undefined);
      return;
    }
    await this.proc.kill();
    await unlink(this.socketPath).catch(() => undefined);
    this.unregisterSocket();
  }
}
