/**
 * A fleet of WireGuard gateways in network namespaces, and a core router
 * that learns from them over BGP which gateway holds which client:
 *
 *   <p>-c1 [<p>v1] ─┐                   ┌─[<p>u1] <p>-g1 [<p>r1]──[<p>g1]─┐
 *   <p>-c2 [<p>v2] ─┼─ <p>-sw [<p>br] ──┤   WireGuard <p>w1, BIRD        ├─ <p>-core [<p>sc]──[<p>s] <p>-srv
 *       ...         │   (the internet)  └─[<p>u2] <p>-g2 [<p>r2]──[<p>g2]─┘   BIRD, redis-server
 *
 *   underlay  10.X.0.0/24  gateway i at 10.X.0.i, client j at 10.X.0.(10+j)
 *   tunnel    10.Y.0.0/16  every gateway 10.Y.0.1/32, client j at 10.Y.0.(10+j)
 *   core      10.Z.0.0/24  the core's own address 10.Z.0.1 (on lo: Redis, BGP router id);
 *                          link i is 10.Z.0.4i/30, the core at .4i+1, gateway i at .4i+2
 *   server    10.S.0.0/24  the core at .1, the server at .2
 *   Y = X + 1 unless given, Z = X + 2, S = X + 3
 *
 * Every gateway has the same WireGuard private key, so any of them can
 * serve any client, and its own uplink (where wgjit's capture attaches),
 * BIRD and, when started, wgjit daemon. A gateway routes each peer it holds
 * through its WireGuard with route protocol WGJIT_ROUTE_PROTOCOL (what
 * `wgjit run --route-table` does; addPeerRoute does it by hand); its BIRD
 * learns those routes from the kernel and announces them to the core's
 * BIRD over eBGP, which installs them in the core's table: a packet from
 * the server to a client's tunnel address goes to the gateway that holds
 * the client now.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nsRun, onExit, run, spawnIn, waitFor, type Spawned } from './exec.js';
import { addAddress, addBridge, addVethPair, attachToBridge, createNamespace, deleteNamespace, deleteNamespaceSync, linkUp, sysctl } from './netns.js';
import { kernelHasWireGuard, WgInterface, type WgKind, type WgLogLevel } from './wireguard.js';
import { createClient, HOST_OFFSET, MAX_CLIENTS, type ClientSite, type TestbedClient } from './client.js';
import { DEFAULT_LISTEN_PORT, DEFAULT_UNDERLAY_OCTET, MAX_PREFIX_LENGTH } from './topology.js';
import { REDIS_PORT, startRedisServer, startStack, type Stack, type StackOptions } from './stack.js';
import { generatePrivateKey } from '../noise/keys.js';
import { formatKey, publicKeyOf } from '../../src/handshake/keys.js';

/** Gateways sit at .1 .. .10 of the underlay, below the first client. */
export const MAX_GATEWAYS = HOST_OFFSET;
/** The route protocol (rtm_protocol) `wgjit run --route-table` marks the routes of its peers with. */
export const WGJIT_ROUTE_PROTOCOL = 249;
/** The kernel's main routing table, which `--route-table main` names. */
const MAIN_TABLE = 254;
/** The `ip rule` that sends traffic for the tunnel network to a numbered peer table first (it falls through to main on a miss). */
const PEER_TABLE_RULE_PRIORITY = 1000;

/** Private 16-bit AS numbers (RFC 6996): the core's, and gateway i's is GATEWAY_ASN_BASE + i (eBGP: each its own). */
export const CORE_ASN = 64512;
export const GATEWAY_ASN_BASE = 64600;
/**
 * BGP hold time, seconds: how long a gateway that went silent keeps its
 * routes in the core. 3 is the least RFC 4271 (and BIRD) allows; BIRD's
 * default of 240 would leave a hung gateway's clients unreachable for
 * minutes.
 */
export const BGP_HOLD_TIME_S = 3;
export const BGP_KEEPALIVE_TIME_S = 1;
/**
 * How soon BIRD opens a session and tries again: its defaults (5 s before
 * the first try, 120 s between tries, 60 s to 300 s after an error) would
 * leave a fleet without routes for minutes when one side starts first or
 * a session fails.
 */
const BGP_CONNECT_DELAY_S = 1;
const BGP_CONNECT_RETRY_S = 1;
const BGP_ERROR_WAIT_S = [1, 5] as const;
/**
 * Seconds between two scans of the kernel table by a gateway's BIRD. BIRD
 * learns a route the moment the kernel announces it (a netlink
 * notification: the same 7 ms with a scan every 60 s, TESTBED.md); the
 * scan only repairs what a lost notification missed.
 */
const KERNEL_SCAN_TIME_S = 2;
/**
 * The core's BIRD scans its kernel table every second for the wake-up, not
 * the scan: BIRD 2.0.12's main loop runs the events a timer schedules only
 * at its next wake-up, up to 3 s away when no other timer is due
 * (sysdep/unix/io.c: `poll_tout = (events ? 0 : 3000)`, decided before the
 * timers fire). A hold timer expiring on the core's last live session
 * schedules the notification and the withdrawal of the gateway's routes
 * so: measured 3 s late. A timer every second bounds that to 1 s.
 */
export const CORE_KERNEL_SCAN_TIME_S = 1;
/** BIRD starts in milliseconds; BGP sessions come up within BGP_CONNECT_DELAY_S plus a retry or two. */
const BIRD_START_TIMEOUT_MS = 10_000;
const BGP_ESTABLISH_TIMEOUT_MS = 15_000;

export interface FleetOptions {
  /** [a-z][a-z0-9]*, at most MAX_PREFIX_LENGTH: starts every namespace and interface name. */
  prefix: string;
  /** 1..MAX_GATEWAYS. */
  gateways: number;
  clients: number;
  /** Which WireGuard the gateways and clients run (topology.ts's TestbedOptions.wgKind). Default 'userspace'. */
  wgKind?: WgKind | 'auto';
  /**
   * The table the gateways' peer routes go to, as `wgjit run --route-table`
   * is given it; a numbered table gets an `ip rule` for the tunnel network
   * (PEER_TABLE_RULE_PRIORITY) so forwarding sees it. Default 'main'.
   */
  routeTable?: 'main' | number;
  /** X in the underlay 10.X.0.0/24 (core and server networks follow it). Default DEFAULT_UNDERLAY_OCTET. */
  underlayOctet?: number;
  /** Y in the tunnel 10.Y.0.0/16. Default X + 1. */
  tunnelOctet?: number;
  /** LOG_LEVEL of every wireguard-go started here. Default 'error'. */
  logLevel?: WgLogLevel;
  /** Every line a wireguard-go of this fleet logs. */
  onWgLog?: (ifname: string, line: string) => void;
}

export interface FleetGateway {
  /** 1-based, as in every name and address. */
  readonly index: number;
  readonly ns: string;
  /** The uplink veth on the switch: where wgjit's capture attaches. */
  readonly uplink: string;
  /** Its underlay address, on `uplink`. */
  readonly address: string;
  /** WireGuard with the fleet's key, listen port and tunnel address. */
  readonly wg: WgInterface;
  /** Its end of the link to the core, and that end's address. */
  readonly coreLink: string;
  readonly linkAddress: string;
  readonly asn: number;
  /** The wgjit daemon once startDaemon has run, else null. */
  readonly stack: Stack | null;
  /** False once killGateway has taken it. */
  readonly alive: boolean;
  /** What `wgjit run --route-table` does for an installed peer: `cidr` through the WireGuard, protocol WGJIT_ROUTE_PROTOCOL, in the fleet's route table. */
  addPeerRoute(cidr: string): Promise<void>;
  removePeerRoute(cidr: string): Promise<void>;
  /**
   * Starts `wgjit run` in the gateway namespace (stack.ts) against the
   * fleet's Redis: per-gateway flags such as `--gateway-id g1
   * --route-table main` go in opts.runArgs. Stopped by destroy().
   */
  startDaemon(opts?: StackOptions): Promise<Stack>;
}

export interface FleetClient extends TestbedClient {
  /**
   * Sends the client to gateway `gateway` (1-based): its peer is removed
   * and added back (same key, pre-shared key and allowed IPs) with that
   * gateway's endpoint, so its next packet starts a handshake there. A bare
   * endpoint change would keep using the session of the old gateway, which
   * the new one cannot decrypt, and hand-shake again only after the 15 s
   * WireGuard waits for a reply.
   */
  moveTo(gateway: number): Promise<void>;
}

/** One BGP session as each side's BIRD sees it: 'Established', 'Active', 'Connect', ... (null: the gateway is gone or hung). */
export interface BgpSessionState {
  core: string;
  gateway: string | null;
}

export interface Fleet {
  readonly prefix: string;
  readonly switchNs: string;
  readonly coreNs: string;
  readonly serverNs: string;
  readonly wgKind: WgKind;
  readonly routeTable: 'main' | number;
  readonly listenPort: number;
  /** The gateways' WireGuard public key (one private key for the fleet). */
  readonly gatewayPublicKey: string;
  /** The tunnel address every gateway has (no prefix length). */
  readonly tunnelAddress: string;
  /** The core's own address, on its loopback: every gateway routes to it. */
  readonly coreAddress: string;
  readonly serverAddress: string;
  /** The server network, CIDR: clients route it through their tunnel. */
  readonly serverNetwork: string;
  /** The fleet's Redis, a redis-server in the core namespace on coreAddress: for `--redis`. */
  readonly redisUrl: string;
  /** gateways[i - 1] is gateway i. */
  readonly gateways: readonly FleetGateway[];
  readonly clients: readonly FleetClient[];
  /** Gateway `index` (1-based); throws on one the fleet does not have. */
  gateway(index: number): FleetGateway;
  addClient(): Promise<FleetClient>;
  /** The gateway the core forwards `address` to now (from `ip route get` in the core), or null when it has no route there. */
  coreNextHop(address: string): Promise<number | null>;
  /** One ping from the server to `address`: whether the reply came within `waitSeconds`. */
  serverPing(address: string, waitSeconds?: number): Promise<boolean>;
  /** The session between gateway `index` and the core, from both BIRDs. */
  bgpState(index: number): Promise<BgpSessionState>;
  /** `birdc` against the BIRD of namespace `ns` (a gateway's or the core's): its output. */
  birdc(ns: string, command: string): Promise<string>;
  /**
   * Gateway `index` lost: every process of it killed (SIGKILL: no clean-up,
   * no BGP notification) and its namespace deleted; its link to the core
   * goes with it, so the core's BIRD drops the session at once. Idempotent.
   */
  killGateway(index: number): Promise<void>;
  /**
   * Gateway `index` hung: every process of it stopped (SIGSTOP), links up,
   * so the core hears nothing more and only the BGP hold time
   * (BGP_HOLD_TIME_S) ends the session. (A kernel WireGuard has no process
   * and goes on working.) killGateway or destroy end it.
   */
  hangGateway(index: number): Promise<void>;
  /** Kills every process and deletes every namespace. Idempotent. */
  destroy(): Promise<void>;
}

interface GatewayState extends FleetGateway {
  stack: Stack | null;
  alive: boolean;
  bird: Spawned;
  /** Set by hangGateway: its processes are stopped. */
  hung: boolean;
}

function checkOctet(label: string, v: number): void {
  if (!Number.isInteger(v) || v < 0 || v > 255) throw new RangeError(`${label} must be in 0..255, got ${v}`);
}

function checkOptions(opts: FleetOptions): void {
  if (!new RegExp(`^[a-z][a-z0-9]{0,${MAX_PREFIX_LENGTH - 1}}$`).test(opts.prefix)) {
    throw new RangeError(`fleet prefix must match [a-z][a-z0-9]* with at most ${MAX_PREFIX_LENGTH} characters, got ${JSON.stringify(opts.prefix)}`);
  }
  if (!Number.isInteger(opts.gateways) || opts.gateways < 1 || opts.gateways > MAX_GATEWAYS) {
    throw new RangeError(`gateways must be an integer in 1..${MAX_GATEWAYS}`);
  }
  if (!Number.isInteger(opts.clients) || opts.clients < 0 || opts.clients > MAX_CLIENTS) {
    throw new RangeError(`clients must be an integer in 0..${MAX_CLIENTS}`);
  }
  const table = opts.routeTable;
  if (table !== undefined && table !== 'main' && (!Number.isInteger(table) || table < 1 || table > 0xffffffff)) {
    throw new RangeError(`routeTable must be 'main' or a table number in 1..${0xffffffff}`);
  }
}

/** The `BGP state:` line of `birdc show protocols all NAME`. */
function parseBgpState(text: string): string {
  const m = /^\s*BGP state:\s+(\S+)/m.exec(text);
  if (!m) throw new Error(`no BGP state in birdc output:\n${text}`);
  return m[1]!;
}

/** The BGP timers and retries of every session (see the constants). */
const BGP_TIMING = `
  hold time ${BGP_HOLD_TIME_S};
  keepalive time ${BGP_KEEPALIVE_TIME_S};
  connect delay time ${BGP_CONNECT_DELAY_S};
  connect retry time ${BGP_CONNECT_RETRY_S};
  error wait time ${BGP_ERROR_WAIT_S[0]}, ${BGP_ERROR_WAIT_S[1]};`;

/**
 * A gateway's BIRD: the kernel protocol learns the routes wgjit adds
 * (protocol WGJIT_ROUTE_PROTOCOL) in the peer table and nothing else; BGP
 * announces them to the core with this gateway as next hop, and takes
 * nothing from it (the default route to the core is static).
 */
function gatewayBirdConfig(g: { address: string; asn: number; linkAddress: string }, coreLinkAddress: string, table: number): string {
  return `router id ${g.address};
log stderr all;

protocol device {}

protocol kernel {
  kernel table ${table};
  learn;
  scan time ${KERNEL_SCAN_TIME_S};
  ipv4 {
    import filter { if krt_source = ${WGJIT_ROUTE_PROTOCOL} then accept; reject; };
    export none;
  };
}

protocol bgp core {
  local ${g.linkAddress} as ${g.asn};
  neighbor ${coreLinkAddress} as ${CORE_ASN};${BGP_TIMING}
  ipv4 {
    import none;
    export all;
    next hop self;
  };
}
`;
}

/** The core's BIRD: a session with every gateway, whatever they announce into the kernel's main table. */
function coreBirdConfig(routerId: string, gateways: readonly { index: number; asn: number; linkAddress: string }[], coreLinkAddress: (i: number) => string): string {
  const sessions = gateways.map(
    (g) => `
protocol bgp gateway${g.index} from gateways {
  local ${coreLinkAddress(g.index)} as ${CORE_ASN};
  neighbor ${g.linkAddress} as ${g.asn};
}
`,
  );
  return `router id ${routerId};
log stderr all;

protocol device {}

protocol kernel {
  scan time ${CORE_KERNEL_SCAN_TIME_S};
  ipv4 {
    import none;
    export all;
  };
}

template bgp gateways {${BGP_TIMING}
  ipv4 {
    import all;
    export none;
  };
}
${sessions.join('')}`;
}

/** A veth between two namespaces, an address on each end, both up. */
async function pointToPoint(a: { ns: string; name: string; cidr: string }, b: { ns: string; name: string; cidr: string }): Promise<void> {
  await addVethPair(a, b);
  for (const end of [a, b]) {
    await addAddress(end.ns, end.name, end.cidr);
    await linkUp(end.ns, end.name);
  }
}

/** SIGKILL, then wait until it is gone. */
async function killHard(proc: Spawned): Promise<void> {
  if (proc.isRunning()) {
    try {
      process.kill(proc.pid, 'SIGKILL');
    } catch {
      // exited in between
    }
  }
  await proc.kill();
}

/** Builds the fleet, BGP sessions up; on failure everything built so far is torn down. */
export async function createFleet(opts: FleetOptions): Promise<Fleet> {
  checkOptions(opts);
  const p = opts.prefix;
  const x = opts.underlayOctet ?? DEFAULT_UNDERLAY_OCTET;
  const y = opts.tunnelOctet ?? (x + 1) % 256;
  const z = x + 2;
  const s = x + 3;
  checkOctet('underlayOctet', x);
  checkOctet('tunnelOctet', y);
  checkOctet('the core network octet (underlayOctet + 2)', z);
  checkOctet('the server network octet (underlayOctet + 3)', s);
  if (new Set([x, y, z, s]).size !== 4) throw new RangeError(`the tunnel octet ${y} collides with the underlay, core or server network (${x}, ${z}, ${s})`);

  const routeTable = opts.routeTable ?? 'main';
  const tableId = routeTable === 'main' ? MAIN_TABLE : routeTable;
  const listenPort = DEFAULT_LISTEN_PORT;
  const switchNs = `${p}-sw`;
  const coreNs = `${p}-core`;
  const serverNs = `${p}-srv`;
  const bridge = `${p}br`;
  const tunnelAddress = `10.${y}.0.1`;
  const tunnelNetwork = `10.${y}.0.0/16`;
  const coreAddress = `10.${z}.0.1`;
  const coreLinkAddress = (i: number) => `10.${z}.0.${4 * i + 1}`;
  const serverNetwork = `10.${s}.0.0/24`;
  const serverAddress = `10.${s}.0.2`;
  const redisUrl = `redis://${coreAddress}:${REDIS_PORT}`;
  const privateKey = generatePrivateKey();
  const gatewayPublicKey = formatKey(publicKeyOf(privateKey));

  const wgKind: WgKind = opts.wgKind === 'auto' ? ((await kernelHasWireGuard()) ? 'kernel' : 'userspace') : (opts.wgKind ?? 'userspace');
  const dir = mkdtempSync(join(tmpdir(), 'wgjit-fleet-'));
  const namespaces = new Set<string>();
  const processes = new Set<{ stop(): Promise<void> }>();
  const gateways: GatewayState[] = [];
  const clients: FleetClient[] = [];
  let coreBird: Spawned | null = null;
  let destroyed = false;
  const unregister = onExit(() => {
    // Processes registered their own exit kills; namespaces go last.
    for (const ns of namespaces) deleteNamespaceSync(ns);
    rmSync(dir, { recursive: true, force: true });
  });

  /** A namespace with forwarding on and reverse-path filtering off (set before any link exists, so `default` covers them all). */
  async function addNamespace(ns: string, router = false): Promise<void> {
    namespaces.add(ns);
    await createNamespace(ns);
    if (!router) return;
    await sysctl(ns, 'net.ipv4.ip_forward', 1);
    // A client's packets can reach a gateway through its WireGuard before
    // the gateway has a route back to the client there (its route is still
    // the default one, to the core), and the core can see a client that
    // moved answer through another gateway than its route for a moment.
    await sysctl(ns, 'net.ipv4.conf.all.rp_filter', 0);
    await sysctl(ns, 'net.ipv4.conf.default.rp_filter', 0);
  }

  const controlSocket = (ns: string) => join(dir, `${ns}.ctl`);

  async function birdc(ns: string, command: string): Promise<string> {
    return (await run('birdc', ['-s', controlSocket(ns), ...command.split(/\s+/).filter((w) => w !== '')])).stdout;
  }

  /** BIRD in `ns` with `config`, up once its control socket answers. */
  async function startBird(ns: string, config: string): Promise<Spawned> {
    const conf = join(dir, `${ns}.conf`);
    writeFileSync(conf, config);
    const bird = spawnIn(ns, 'bird', ['-f', '-c', conf, '-s', controlSocket(ns), '-P', join(dir, `${ns}.pid`)]);
    processes.add({ stop: () => bird.kill() });
    await waitFor(
      `BIRD in ${ns} to answer on its control socket`,
      async () => {
        if (!bird.isRunning()) throw new Error(`BIRD in ${ns} exited: ${bird.stderrTail().trim() || '(no stderr)'}`);
        return birdc(ns, 'show status').then(
          () => true,
          () => false,
        );
      },
      BIRD_START_TIMEOUT_MS,
      50,
    );
    return bird;
  }

  function gatewayAt(index: number): GatewayState {
    const g = gateways[index - 1];
    if (!Number.isInteger(index) || g === undefined) throw new RangeError(`the fleet has gateways 1..${gateways.length}, not ${index}`);
    return g;
  }

  async function bgpState(index: number): Promise<BgpSessionState> {
    const g = gatewayAt(index);
    return {
      core: parseBgpState(await birdc(coreNs, `show protocols all gateway${index}`)),
      gateway: g.alive && !g.hung ? parseBgpState(await birdc(g.ns, 'show protocols all core')) : null,
    };
  }

  async function addGateway(index: number): Promise<GatewayState> {
    const ns = `${p}-g${index}`;
    const uplink = `${p}u${index}`;
    const coreLink = `${p}r${index}`;
    const address = `10.${x}.0.${index}`;
    const linkAddress = `10.${z}.0.${4 * index + 2}`;
    const asn = GATEWAY_ASN_BASE + index;
    await addNamespace(ns, true);
    await attachToBridge({ ns, name: uplink }, switchNs, bridge, [`${address}/24`]);
    await pointToPoint({ ns, name: coreLink, cidr: `${linkAddress}/30` }, { ns: coreNs, name: `${p}g${index}`, cidr: `${coreLinkAddress(index)}/30` });
    await nsRun(ns, 'ip', ['route', 'add', 'default', 'via', coreLinkAddress(index)]);
    if (routeTable !== 'main') {
      await nsRun(ns, 'ip', ['rule', 'add', 'to', tunnelNetwork, 'lookup', String(tableId), 'priority', String(PEER_TABLE_RULE_PRIORITY)]);
    }
    const wgIfname = `${p}w${index}`;
    const wg = await WgInterface.open(wgKind, {
      ns,
      ifname: wgIfname,
      privateKey,
      listenPort,
      addresses: [`${tunnelAddress}/32`],
      logLevel: opts.logLevel,
      onLog: opts.onWgLog ? (line) => opts.onWgLog!(wgIfname, line) : undefined,
    });
    processes.add(wg);
    const bird = await startBird(ns, gatewayBirdConfig({ address, asn, linkAddress }, coreLinkAddress(index), tableId));
    const peerRoute = (verb: 'add' | 'del', cidr: string) =>
      nsRun(ns, 'ip', ['route', verb, cidr, 'dev', wgIfname, 'proto', String(WGJIT_ROUTE_PROTOCOL), 'table', String(tableId)]).then(() => undefined);
    const g: GatewayState = {
      index,
      ns,
      uplink,
      address,
      wg,
      coreLink,
      linkAddress,
      asn,
      stack: null,
      alive: true,
      bird,
      hung: false,
      addPeerRoute: (cidr) => peerRoute('add', cidr),
      removePeerRoute: (cidr) => peerRoute('del', cidr),
      async startDaemon(o: StackOptions = {}): Promise<Stack> {
        if (!g.alive) throw new Error(`gateway ${index} is gone`);
        if (g.stack !== null) throw new Error(`gateway ${index} runs a daemon already`);
        g.stack = await startStack({ gatewayNs: ns, gateway: wg, uplink, gatewayAddress: address }, { redisUrl, ...o });
        return g.stack;
      },
    };
    gateways.push(g);
    return g;
  }

  const site: ClientSite = {
    prefix: p,
    underlayOctet: x,
    tunnelOctet: y,
    ipv6: false,
    switchNs,
    bridge,
    listenPort,
    gatewayAddress: `10.${x}.0.1`,
    gatewayAddress6: null,
    tunnelRoutes: [`${tunnelAddress}/32`, serverNetwork],
    wgKind,
    logLevel: opts.logLevel,
    onWgLog: opts.onWgLog,
    gatewayPublicKey: () => gatewayPublicKey,
    addNamespace: (ns) => addNamespace(ns),
    track: (proc) => processes.add(proc),
  };

  async function addClient(): Promise<FleetClient> {
    if (destroyed) throw new Error('fleet destroyed');
    const base = await createClient(site, clients.length + 1);
    const client: FleetClient = Object.assign(base, {
      async moveTo(index: number): Promise<void> {
        const w = base.wireguard;
        if (w === null) throw new Error(`client ${base.index} runs no WireGuard: startWireguard first`);
        const target = gatewayAt(index);
        const [peer] = (await w.wg.dump()).peers;
        if (peer === undefined) throw new Error(`client ${base.index}'s WireGuard has no peer`);
        await w.wg.removePeer(peer.publicKey);
        await w.wg.setPeers([
          {
            publicKey: peer.publicKey,
            presharedKey: peer.presharedKey ?? undefined,
            endpoint: `${target.address}:${listenPort}`,
            allowedIPs: peer.allowedIPs,
          },
        ]);
      },
    });
    clients.push(client);
    return client;
  }

  /** Kills a gateway's processes, hard when it is lost or hung, and deletes its namespace. */
  async function stopGateway(g: GatewayState, lost: boolean): Promise<void> {
    if (!g.alive) return;
    g.alive = false;
    const hard = lost || g.hung;
    if (g.stack !== null) {
      if (hard) await g.stack.stopDaemon('SIGKILL');
      await g.stack.stop();
    }
    await (hard ? killHard(g.bird) : g.bird.kill());
    if (hard && g.wg.kind === 'userspace' && g.wg.isRunning()) process.kill(g.wg.pid, 'SIGKILL');
    await g.wg.stop();
    await deleteNamespace(g.ns).catch(() => deleteNamespaceSync(g.ns));
    namespaces.delete(g.ns);
  }

  async function hangGateway(index: number): Promise<void> {
    const g = gatewayAt(index);
    if (!g.alive) throw new Error(`gateway ${index} is gone`);
    g.hung = true;
    const pids = [g.bird.pid, ...(g.wg.kind === 'userspace' ? [g.wg.pid] : []), ...(g.stack ? [g.stack.daemon.pid] : [])];
    for (const pid of pids) process.kill(pid, 'SIGSTOP');
  }

  async function destroy(): Promise<void> {
    if (destroyed) return;
    destroyed = true;
    for (const g of gateways) await stopGateway(g, false).catch(() => undefined);
    await Promise.all([...processes].map((proc) => proc.stop().catch(() => undefined)));
    processes.clear();
    for (const ns of namespaces) await deleteNamespace(ns).catch(() => deleteNamespaceSync(ns));
    namespaces.clear();
    rmSync(dir, { recursive: true, force: true });
    unregister();
  }

  try {
    await addNamespace(switchNs);
    await addBridge(switchNs, bridge);
    await addNamespace(coreNs, true);
    await addAddress(coreNs, 'lo', `${coreAddress}/32`);
    await addNamespace(serverNs);
    await pointToPoint({ ns: serverNs, name: `${p}s`, cidr: `${serverAddress}/24` }, { ns: coreNs, name: `${p}sc`, cidr: `10.${s}.0.1/24` });
    await nsRun(serverNs, 'ip', ['route', 'add', 'default', 'via', `10.${s}.0.1`]);
    const redis = await startRedisServer(coreNs, coreAddress, REDIS_PORT, dir);
    processes.add({ stop: () => redis.kill() });

    for (let i = 1; i <= opts.gateways; i++) await addGateway(i);
    coreBird = await startBird(coreNs, coreBirdConfig(coreAddress, gateways, coreLinkAddress));
    await waitFor(
      'every BGP session to be established',
      async () => {
        if (!coreBird!.isRunning()) throw new Error(`the core's BIRD exited: ${coreBird!.stderrTail()}`);
        const states = await Promise.all(gateways.map((g) => bgpState(g.index)));
        return states.every((st) => st.core === 'Established' && st.gateway === 'Established');
      },
      BGP_ESTABLISH_TIMEOUT_MS,
      100,
    );
    for (let i = 0; i < opts.clients; i++) await addClient();
  } catch (e) {
    await destroy();
    throw e;
  }

  return {
    prefix: p,
    switchNs,
    coreNs,
    serverNs,
    wgKind,
    routeTable,
    listenPort,
    gatewayPublicKey,
    tunnelAddress,
    coreAddress,
    serverAddress,
    serverNetwork,
    redisUrl,
    gateways,
    clients,
    gateway: gatewayAt,
    addClient,
    async coreNextHop(address: string): Promise<number | null> {
      let routes: { gateway?: string }[];
      try {
        routes = JSON.parse((await nsRun(coreNs, 'ip', ['-j', 'route', 'get', address])).stdout) as { gateway?: string }[];
      } catch (e) {
        if (/unreachable/i.test(String(e))) return null;
        throw e;
      }
      const via = routes[0]?.gateway;
      return gateways.find((g) => g.linkAddress === via)?.index ?? null;
    },
    async serverPing(address: string, waitSeconds = 2): Promise<boolean> {
      try {
        await nsRun(serverNs, 'ping', ['-c', '1', '-W', String(waitSeconds), address]);
        return true;
      } catch (e) {
        // ping exits 1 when no reply came, 2 on an error of its own.
        if (/\(exit 1\)/.test(String(e))) return false;
        throw e;
      }
    },
    bgpState,
    birdc,
    killGateway: (index) => stopGateway(gatewayAt(index), true),
    hangGateway,
    destroy,
  };
}
