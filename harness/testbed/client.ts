/**
 * A testbed client: a namespace of its own, plugged into the testbed's
 * switch, that runs a WireGuard when asked. Shared by the one-gateway
 * testbed (topology.ts) and the fleet (fleet.ts); the site it joins says
 * where its gateway is and what goes through the tunnel.
 *
 *   underlay  client i at 10.X.0.(10+i), fd00:X::(10+i) with ipv6
 *   tunnel    client i at 10.Y.0.(10+i)
 *
 * Names: namespace `<prefix>-c<i>`, veth `<prefix>v<i>` (its switch side
 * `<prefix>v<i>b`), WireGuard `<prefix>c<i>`.
 */
import { addRoute, attachToBridge } from './netns.js';
import { WgInterface, type WgKind, type WgLogLevel } from './wireguard.js';
import { startHandshakeSniffer, type HandshakeSniffer } from './sniff.js';

/** Client i is host HOST_OFFSET + i in the underlay and the tunnel: .1 to .10 are left to gateways. */
export const HOST_OFFSET = 10;
/** Client addresses are .11 .. .210 in one /24. */
export const MAX_CLIENTS = 200;

/** What a client needs of the testbed it joins, and how it hands over what it creates. */
export interface ClientSite {
  readonly prefix: string;
  /** X in the underlay 10.X.0.0/24 and fd00:X::/64. */
  readonly underlayOctet: number;
  /** Y in the tunnel 10.Y.0.0/16. */
  readonly tunnelOctet: number;
  readonly ipv6: boolean;
  readonly switchNs: string;
  readonly bridge: string;
  /** The gateway's WireGuard port: the default endpoint's, and where a sniffer looks. */
  readonly listenPort: number;
  /** The underlay addresses of the gateway a client's WireGuard talks to unless told otherwise. */
  readonly gatewayAddress: string;
  readonly gatewayAddress6: string | null;
  /** The peer's allowed IPs on a client, each also routed through the client's WireGuard. */
  readonly tunnelRoutes: readonly string[];
  readonly wgKind: WgKind;
  readonly logLevel?: WgLogLevel;
  readonly onWgLog?: (ifname: string, line: string) => void;
  /** The gateway's public key; throws, saying why, while the site has none. */
  gatewayPublicKey(): string;
  /** Creates a namespace the site deletes when it is destroyed. */
  addNamespace(ns: string): Promise<void>;
  /** Hands over a process the site stops when it is destroyed. */
  track(proc: { stop(): Promise<void> }): void;
}

export interface ClientWireguardOptions {
  /** Default: the site's gateway key. */
  gatewayPublicKey?: string;
  /** `addr:port` / `[v6]:port`. Default: the site's gateway underlay IPv4 (IPv6 with `useIpv6`) and listen port. */
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
   * Starts the client's WireGuard with a fresh key pair and one peer, the
   * gateway: its endpoint, allowed IPs the site's tunnel routes (each routed
   * through the interface), keepalive off (so nothing is sent before the
   * first packet).
   */
  startWireguard(opts?: ClientWireguardOptions): Promise<ClientWireguard>;
  /** Starts a handshake sniffer on `veth` (stopped with the site). */
  sniff(): Promise<HandshakeSniffer>;
}

/** Creates client `index` (1-based) of `site`: its namespace and its veth on the switch. */
export async function createClient(site: ClientSite, index: number): Promise<TestbedClient> {
  if (!Number.isInteger(index) || index < 1 || index > MAX_CLIENTS) throw new RangeError(`client index must be in 1..${MAX_CLIENTS}`);
  const p = site.prefix;
  const ns = `${p}-c${index}`;
  const veth = `${p}v${index}`;
  const host = HOST_OFFSET + index;
  const address = `10.${site.underlayOctet}.0.${host}`;
  const address6 = site.ipv6 ? `fd00:${site.underlayOctet}::${host}` : null;
  await site.addNamespace(ns);
  await attachToBridge({ ns, name: veth }, site.switchNs, site.bridge, [`${address}/24`, ...(address6 ? [`${address6}/64`] : [])]);

  const client: TestbedClient = {
    index,
    ns,
    veth,
    address,
    address6,
    tunnelAddress: `10.${site.tunnelOctet}.0.${host}`,
    wgIfname: `${p}c${index}`,
    wireguard: null,
    async startWireguard(o: ClientWireguardOptions = {}): Promise<ClientWireguard> {
      if (client.wireguard) throw new Error(`client ${index} already runs WireGuard`);
      const gatewayPublicKey = o.gatewayPublicKey ?? site.gatewayPublicKey();
      const endpoint =
        o.endpoint ??
        (o.useIpv6 && site.gatewayAddress6 ? `[${site.gatewayAddress6}]:${site.listenPort}` : `${site.gatewayAddress}:${site.listenPort}`);
      const tunnelAddress = o.tunnelAddress ?? client.tunnelAddress;
      const ifname = client.wgIfname;
      const wg = await WgInterface.open(site.wgKind, {
        ns,
        ifname,
        logLevel: site.logLevel,
        onLog: site.onWgLog ? (line) => site.onWgLog!(ifname, line) : undefined,
        addresses: [`${tunnelAddress}/32`],
        peers: [{ publicKey: gatewayPublicKey, presharedKey: o.presharedKey, endpoint, allowedIPs: [...site.tunnelRoutes] }],
      });
      site.track(wg);
      for (const cidr of site.tunnelRoutes) await addRoute(ns, cidr, ifname);
      client.wireguard = { privateKey: wg.privateKey, publicKey: wg.publicKey, ifname: wg.ifname, tunnelAddress, wg };
      return client.wireguard;
    },
    async sniff(): Promise<HandshakeSniffer> {
      const sniffer = await startHandshakeSniffer({ ns, ifname: veth, port: site.listenPort });
      site.track(sniffer);
      return sniffer;
    },
  };
  return client;
}
