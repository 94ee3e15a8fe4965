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
import { deleteNamespaceSync, addAddress, addBridge, addRoute, addVethPair, createNamespace, deleteNamespace, linkUp, setMaster } from './netns.js';
import { onExit } from './exec.js';
import { kernelHasWireGuard, WgInterface, type WgKind, type WgLogLevel } from './wireguard.js';
import { startHandshakeSniffer, type HandshakeSniffer } from './sniff.js';

/** Interface names are `<prefix>` + up to 5 characters (`v200b`): IFNAMSIZ allows 15. */
export const MAX_PREFIX_LENGTH = 8;
/** Client addresses are .11 .. .210 in one /24. */
export const MAX_CLIENTS = 200;
export const DEFAULT_LISTEN_PORT = 51820;
export const DEFAULT_UNDERLAY_OCTET = 77;
const HOST_OFFSET = 10;

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

export interface ClientWireguardOptions {
  /** Default: the testbed gateway's key (requires gatewayWg). */
  gatewayPublicKey?: string;
  /** `addr:port` / `[v6]:port`. Default: gateway underlay IPv4 (IPv6 with `useIpv6`) and listen port. */
  endpoint?: string;
  useIpv6?: boolean;
  /** Default: the client's slot in the tunnel network (`client.tunnelAddress`). */
  tunnelAddress?: string;
  presharedKey?: string;
}

export interface ClientWireguard {
  privateKey: Uint8Array;
  publicKey: string;
  ifname: string;
  tunnelAddress: string;
  wg: WgInterface;
}

export interface TestbedClient {
  readonly index: number;
  readonly ns: string;
  /** The client's underlay veth, inside `ns`: capture its handshakes here. */
  readonly veth: string;
  readonly address: string;
  readonly address6: string | null;
  /** Default tunnel address for this client (no prefix length). */
  readonly tunnelAddress: string;
  /** The interface name its wireguard-go gets. */
  readonly wgIfname: string;
  /** Set once startWireguard has run. */
  wireguard: ClientWireguard | null;
  /**
   * Starts the client's wireguard-go with a fresh key pair and one peer, the
   * gateway: its endpoint, allowed IPs the gateway tunnel address /32,
   * keepalive off (so nothing is sent before the first packet).
   */
  startWireguard(opts?: ClientWireguardOptions): Promise<ClientWireguard>;
  /** Starts a handshake sniffer on `veth` (stopped by destroy()). */
  sniff(): Promise<HandshakeSniffer>;
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

  const log = (ifname: string) => (opts.onWgLog ? (line: string) => opts.onWgLog!(ifname, line) : undefined);

  const clients: TestbedClient[] = [];
  let gateway: WgInterface | null = null;

  async function addClient(): Promise<TestbedClient> {
    if (destroyed) throw new Error('testbed destroyed');
    const index = clients.length + 1;
    if (index > MAX_CLIENTS) throw new RangeError(`at most ${MAX_CLIENTS} clients`);
    const ns = `${p}-c${index}`;
    const veth = `${p}v${index}`;
    const host = HOST_OFFSET + index;
    const address = `10.${x}.0.${host}`;
    const address6 = ipv6 ? `fd00:${x}::${host}` : null;
    await addNamespace(ns);
    await addVethPair({ ns, name: veth }, { ns: switchNs, name: `${veth}b` });
    await setMaster(switchNs, `${veth}b`, bridge);
    await linkUp(switchNs, `${veth}b`);
    await addAddress(ns, veth, `${address}/24`);
    if (address6) await addAddress(ns, veth, `${address6}/64`);
    await linkUp(ns, veth);

    const client: TestbedClient = {
      index,
      ns,
      veth,
      address,
      address6,
      tunnelAddress: `10.${y}.0.${host}`,
      wgIfname: `${p}c${index}`,
      wireguard: null,
      async startWireguard(o: ClientWireguardOptions = {}): Promise<ClientWireguard> {
        if (client.wireguard) throw new Error(`client ${index} already runs WireGuard`);
        const gatewayPublicKey = o.gatewayPublicKey ?? gateway?.publicKey;
        if (!gatewayPublicKey) throw new Error('no gateway public key: pass gatewayPublicKey or build the testbed with gatewayWg');
        const endpoint =
          o.endpoint ?? (o.useIpv6 && gatewayAddress6 ? `[${gatewayAddress6}]:${listenPort}` : `${gatewayAddress}:${listenPort}`);
        const tunnelAddress = o.tunnelAddress ?? client.tunnelAddress;
        const wg = await WgInterface.open(wgKind, {
          ns,
          ifname: client.wgIfname,
          logLevel: opts.logLevel,
          onLog: log(client.wgIfname),
          addresses: [`${tunnelAddress}/32`],
          peers: [
            {
              publicKey: gatewayPublicKey,
              presharedKey: o.presharedKey,
              endpoint,
              allowedIPs: [`${gatewayTunnelAddress}/32`],
            },
          ],
        });
        processes.add(wg);
        await addRoute(ns, `${gatewayTunnelAddress}/32`, client.wgIfname);
        client.wireguard = { privateKey: wg.privateKey, publicKey: wg.publicKey, ifname: wg.ifname, tunnelAddress, wg };
        return client.wireguard;
      },
      async sniff(): Promise<HandshakeSniffer> {
        const sniffer = await startHandshakeSniffer({ ns, ifname: veth, port: listenPort });
        processes.add(sniffer);
        return sniffer;
      },
    };
    clients.push(client);
    return client;
  }

  try {
    await addNamespace(switchNs);
    await addNamespace(gatewayNs);
    await addBridge(switchNs, bridge);
    await addVethPair({ ns: gatewayNs, name: uplink }, { ns: switchNs, name: `${uplink}b` });
    await setMaster(switchNs, `${uplink}b`, bridge);
    await linkUp(switchNs, `${uplink}b`);
    await addAddress(gatewayNs, uplink, `${gatewayAddress}/24`);
    if (gatewayAddress6) await addAddress(gatewayNs, uplink, `${gatewayAddress6}/64`);
    await linkUp(gatewayNs, uplink);
    for (let i = 0; i < opts.clients; i++) await addClient();
    if (opts.gatewayWg) {
      const ifname = `${p}gw0`;
      gateway = await WgInterface.open(wgKind, {
        ns: gatewayNs,
        ifname,
        listenPort,
        addresses: [`${gatewayTunnelAddress}/16`],
        logLevel: opts.logLevel,
        onLog: log(ifname),
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
