/**
 * A WireGuard testbed in network namespaces:
 *
 *   <prefix>-c1  [<p>v1] ──┐
 *   <prefix>-c2  [<p>v2] ──┤  <prefix>-sw            <prefix>-gw
 *        ...               ├─ [<p>br] bridge ── [<p>upb]──[<p>up]  (+ WireGuard <p>gw0)
 *   <prefix>-cN  [<p>vN] ──┘
 *
 *   underlay  10.X.0.0/24: gateway .1, client i at .(10+i)
 *             fd00:X::/64 with ipv6: gateway ::1, client i at ::(10+i)
 *   tunnel    10.Y.0.0/16: gateway 10.Y.0.1, client i at 10.Y.0.(10+i)
 *
 * `<p>up` in the gateway namespace is the uplink: the XDP program attaches
 * there and sees every client's packets. Each client runs its own
 * WireGuard `<p>c<i>` when asked (wireguard-go, or the kernel's: wgKind).
 * wireguard-go's socket directory is shared by all namespaces, hence the
 * prefix on every interface name too.
 */
import { deleteNamespaceSync, addBridge, attachToBridge, createNamespace, deleteNamespace } from './netns.js';
import { onExit } from './exec.js';
import { kernelHasWireGuard, WgInterface, type WgKind, type WgLogLevel } from './wireguard.js';
import { createClient, MAX_CLIENTS, type ClientSite, type TestbedClient } from './client.js';

export { MAX_CLIENTS, type ClientWireguard, type ClientWireguardOptions, type TestbedClient } from './client.js';

/** Interface names are `<prefix>` + up to 5 characters (`v200b`): IFNAMSIZ allows 15. */
export const MAX_PREFIX_LENGTH = 8;
export const DEFAULT_LISTEN_PORT = 51820;
export const DEFAULT_UNDERLAY_OCTET = 77;

export interface TestbedOptions {
  /** [a-z][a-z0-9]*, at most MAX_PREFIX_LENGTH: starts every namespace and interface name. */
  prefix: string;
  clients: number;
  ipv6?: boolean;
  /** The gateway's WireGuard port. Default DEFAULT_LISTEN_PORT. */
  listenPort?: number;
  /** Start WireGuard on the gateway (no peers). Default false. */
  gatewayWg?: boolean;
  /**
   * Which WireGuard the gateway and the clients run: the kernel's,
   * wireguard-go, or 'auto' (the kernel's where the running kernel has it).
   * Default 'userspace'.
   */
  wgKind?: WgKind | 'auto';
  /** X in 10.X.0.0/24 and fd00:X::/64. Default DEFAULT_UNDERLAY_OCTET. */
  underlayOctet?: number;
  /** Y in the tunnel 10.Y.0.0/16. Default X + 1. */
  tunnelOctet?: number;
  /** LOG_LEVEL of every wireguard-go started here. Default 'error'. */
  logLevel?: WgLogLevel;
  /** Every line a wireguard-go of this testbed logs. */
  onWgLog?: (ifname: string, line: string) => void;
}

export interface Testbed {
  readonly prefix: string;
  readonly switchNs: string;
  readonly gatewayNs: string;
  /** Gateway uplink veth in gatewayNs: where XDP attaches. */
  readonly uplink: string;
  readonly gatewayAddress: string;
  readonly gatewayAddress6: string | null;
  readonly listenPort: number;
  /** The gateway's tunnel address (no prefix length); the tunnel is a /16. */
  readonly gatewayTunnelAddress: string;
  /** The gateway's WireGuard when gatewayWg, else null. */
  readonly gateway: WgInterface | null;
  /** What the gateway and clients run. */
  readonly wgKind: WgKind;
  readonly clients: TestbedClient[];
  /** Adds client N+1 to the running testbed. */
  addClient(): Promise<TestbedClient>;
  /** Kills every process and deletes every namespace. Idempotent. */
  destroy(): Promise<void>;
}

function checkOptions(opts: TestbedOptions): void {
  if (!new RegExp(`^[a-z][a-z0-9]{0,${MAX_PREFIX_LENGTH - 1}}$`).test(opts.prefix)) {
    throw new RangeError(`testbed prefix must match [a-z][a-z0-9]* with at most ${MAX_PREFIX_LENGTH} characters, got ${JSON.stringify(opts.prefix)}`);
  }
  if (!Number.isInteger(opts.clients) || opts.clients < 0 || opts.clients > MAX_CLIENTS) {
    throw new RangeError(`clients must be an integer in 0..${MAX_CLIENTS}`);
  }
  for (const [label, v] of [['underlayOctet', opts.underlayOctet], ['tunnelOctet', opts.tunnelOctet]] as const) {
    if (v !== undefined && (!Number.isInteger(v) || v < 0 || v > 255)) throw new RangeError(`${label} must be in 0..255`);
  }
}

/** Builds the testbed; on failure everything built so far is torn down. */
export async function createTestbed(opts: TestbedOptions): Promise<Testbed> {
  checkOptions(opts);
  const p = opts.prefix;
  const x = opts.underlayOctet ?? DEFAULT_UNDERLAY_OCTET;
  const y = opts.tunnelOctet ?? (x + 1) % 256;
  const ipv6 = opts.ipv6 ?? false;
  const listenPort = opts.listenPort ?? DEFAULT_LISTEN_PORT;
  const switchNs = `${p}-sw`;
  const gatewayNs = `${p}-gw`;
  const bridge = `${p}br`;
  const uplink = `${p}up`;
  const gatewayAddress = `10.${x}.0.1`;
  const gatewayAddress6 = ipv6 ? `fd00:${x}::1` : null;
  const gatewayTunnelAddress = `10.${y}.0.1`;

  const wgKind: WgKind = opts.wgKind === 'auto' ? ((await kernelHasWireGuard()) ? 'kernel' : 'userspace') : (opts.wgKind ?? 'userspace');
  const namespaces = new Set<string>();
  const processes = new Set<{ stop(): Promise<void> }>();
  let destroyed = false;
  const unregister = onExit(() => {
    // Processes registered their own exit kills; namespaces go last.
    for (const ns of namespaces) deleteNamespaceSync(ns);
  });

  async function addNamespace(ns: string): Promise<void> {
    namespaces.add(ns);
    await createNamespace(ns);
  }

  async function destroy(): Promise<void> {
    if (destroyed) return;
    destroyed = true;
    await Promise.all([...processes].map((proc) => proc.stop().catch(() => undefined)));
    processes.clear();
    for (const ns of namespaces) await deleteNamespace(ns).catch(() => deleteNamespaceSync(ns));
    namespaces.clear();
    unregister();
  }

  const clients: TestbedClient[] = [];
  let gateway: WgInterface | null = null;
  const site: ClientSite = {
    prefix: p,
    underlayOctet: x,
    tunnelOctet: y,
    ipv6,
    switchNs,
    bridge,
    listenPort,
    gatewayAddress,
    gatewayAddress6,
    tunnelRoutes: [`${gatewayTunnelAddress}/32`],
    wgKind,
    logLevel: opts.logLevel,
    onWgLog: opts.onWgLog,
    gatewayPublicKey() {
      if (gateway === null) throw new Error('no gateway public key: pass gatewayPublicKey or build the testbed with gatewayWg');
      return gateway.publicKey;
    },
    addNamespace,
    track: (proc) => processes.add(proc),
  };

  async function addClient(): Promise<TestbedClient> {
    if (destroyed) throw new Error('testbed destroyed');
    const client = await createClient(site, clients.length + 1);
    clients.push(client);
    return client;
  }

  try {
    await addNamespace(switchNs);
    await addNamespace(gatewayNs);
    await addBridge(switchNs, bridge);
    await attachToBridge({ ns: gatewayNs, name: uplink }, switchNs, bridge, [`${gatewayAddress}/24`, ...(gatewayAddress6 ? [`${gatewayAddress6}/64`] : [])]);
    for (let i = 0; i < opts.clients; i++) await addClient();
    if (opts.gatewayWg) {
      const ifname = `${p}gw0`;
      gateway = await WgInterface.open(wgKind, {
        ns: gatewayNs,
        ifname,
        listenPort,
        addresses: [`${gatewayTunnelAddress}/16`],
        logLevel: opts.logLevel,
        onLog: opts.onWgLog ? (line) => opts.onWgLog!(ifname, line) : undefined,
      });
      processes.add(gateway);
    }
  } catch (e) {
    await destroy();
    throw e;
  }

  return {
    prefix: p,
    switchNs,
    gatewayNs,
    uplink,
    gatewayAddress,
    gatewayAddress6,
    listenPort,
    gatewayTunnelAddress,
    get gateway() {
      return gateway;
    },
    wgKind,
    clients,
    addClient,
    destroy,
  };
}
