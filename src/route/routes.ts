/**
 * Routes for installed peers (`wgjit run --route-table`): each allowed IP
 * of a peer the device holds is routed through the WireGuard interface in
 * one table, marked with wgjit's route protocol, so a routing daemon (BIRD)
 * can announce where each client is. Added at install, removed with the
 * peer, reconciled at start.
 *
 * One rtnetlink socket for one interface and table (addon/netlink_socket.cc,
 * messages from rtnetlink-protocol.ts). Many routes go in one exchange:
 * each message asks for an ack, and the kernel answers them in order, so a
 * route that fails is reported with its errno and the others of the batch
 * still apply. Requests run one at a time, in call order.
 *
 * The routes wgjit owns are those of its protocol, in its table, through
 * its interface: two gateways on one host (wg0 and wg1, one wgjit each) can
 * share a table, and neither touches the other's routes. Routes through an
 * interface that is deleted go with it (the kernel removes them).
 */
import { constants } from 'node:os';
import type { Cidr } from '../net/cidr.js';
import { checkAllowedIp, NetlinkParseError, parseAcks, parseReply, setSeq, type KernelError, type Reply } from '../install/netlink-protocol.js';
import { MAX_DUMP_ATTEMPTS } from '../install/netlink.js';
import { errnoOf, openNetlinkSocket, REQUEST_TIMEOUT_MS, type NetlinkSocket } from '../install/netlink-socket.js';
import { SerialQueue } from '../install/serial.js';
import {
  delRouteRequest,
  getAddressesRequest,
  getLinkRequest,
  getRoutesRequest,
  MAX_TABLE,
  newRouteRequest,
  NETLINK_ROUTE,
  parseAddresses,
  parseLinkIndex,
  parseRoutes,
  RT_TABLE_LOCAL,
  RT_TABLE_MAIN,
  type InterfaceAddress,
  type RouteTarget,
} from './rtnetlink-protocol.js';

/** wgjit's route protocol (`proto 249`; the package names it `wgjit` in rt_protos). */
export const ROUTE_PROTOCOL = 249;

/**
 * Route messages per exchange, at most. The kernel handles a whole send
 * before we read any of it, queueing every ack or error in our receive
 * buffer; each costs 768 bytes of it on Debian's 6.1 and 832 on 6.18
 * (x86-64), so 260 and 256 fit the default 208 KiB (net.core.rmem_default),
 * and past that the kernel drops them and the socket reports ENOBUFS. Half leaves room for a kernel whose
 * replies cost more or a host with a smaller buffer; larger batches bought
 * nothing measurable (bench/routes.ts: the kernel's own work is most of
 * the time). 128 routes are 6.5 to 8 KiB of requests.
 */
export const MAX_ROUTES_PER_EXCHANGE = 128;

export type RouteErrorCode = 'no_device' | 'not_permitted' | 'io' | 'protocol' | 'rejected';

/** A failure of the whole request, not of one route. */
export class RouteError extends Error {
  override name = 'RouteError';

  constructor(
    readonly code: RouteErrorCode,
    message: string,
    readonly errno?: number,
  ) {
    super(message);
  }
}

/** One route the kernel refused; the others of its batch are unaffected. */
export interface RouteFailure {
  cidr: Cidr;
  errno: number;
  /** The errno's name: ENETDOWN, EACCES, … */
  code: string;
  /** The kernel's extended-ack text, e.g. "Nexthop device is not up"; null if it gave none. */
  message: string | null;
}

export interface RouteChange {
  /** Routes added (or replaced), or removed. A removal of a route already gone is not counted, and not a failure. */
  changed: number;
  failed: RouteFailure[];
}

export interface ReconcileResult {
  added: number;
  removed: number;
  /** Wanted routes that were there already. */
  kept: number;
  failed: RouteFailure[];
}

export interface RouteOptions {
  /** Per-exchange receive timeout. Default REQUEST_TIMEOUT_MS. */
  timeoutMs?: number;
}

const { ENODEV, EPERM, EACCES, ESRCH, ENOENT, ENOBUFS, ETIMEDOUT } = constants.errno;
const ERRNO_NAMES = new Map<number, string>();
for (const [name, n] of Object.entries(constants.errno)) if (!ERRNO_NAMES.has(n)) ERRNO_NAMES.set(n, name);
const errnoName = (errno: number) => ERRNO_NAMES.get(errno) ?? `errno ${errno}`;

/**
 * `--route-table`: `off` → null, `main` → 254, or a table number. The local
 * table (255) is refused: the kernel keeps the host's own addresses there,
 * and a route in it would answer for a client's address itself. 0 is not a
 * table (the kernel reads it as "unspecified").
 */
export function parseRouteTable(text: string): number | null {
  if (text === 'off') return null;
  if (text === 'main') return RT_TABLE_MAIN;
  if (text === 'local' || text === String(RT_TABLE_LOCAL)) {
    throw new RangeError(`--route-table cannot be the local table (${RT_TABLE_LOCAL}): the kernel keeps the host's own addresses there; use main or a table of its own`);
  }
  if (text === '0') throw new RangeError('--route-table cannot be 0: the kernel reads table 0 as "unspecified"; use main or a table from 1');
  if (!/^[1-9]\d{0,9}$/.test(text) || Number(text) > MAX_TABLE) {
    throw new RangeError(`--route-table must be off, main or a table number from 1 to ${MAX_TABLE}, got ${JSON.stringify(text)}`);
  }
  return Number(text);
}

export class PeerRoutes {
  private readonly queue = new SerialQueue();
  private closed = false;
  private seq = 1;

  private constructor(
    readonly ifname: string,
    private readonly socket: NetlinkSocket,
    private readonly target: RouteTarget,
  ) {}

  get table(): number {
    return this.target.table;
  }

  get ifindex(): number {
    return this.target.ifindex;
  }

  /** Opens the socket and resolves `ifname`'s index, so a missing interface or permission fails here. */
  static async open(ifname: string, table: number, opts: RouteOptions = {}): Promise<PeerRoutes> {
    if (!Number.isInteger(table) || table < 1 || table > MAX_TABLE || table === RT_TABLE_LOCAL) {
      throw new RangeError(`route table must be an integer in 1..${MAX_TABLE} other than ${RT_TABLE_LOCAL}, got ${table}`);
    }
    const timeoutMs = opts.timeoutMs ?? REQUEST_TIMEOUT_MS;
    if (!Number.isInteger(timeoutMs) || timeoutMs < 1) throw new RangeError(`timeoutMs must be a positive integer, got ${timeoutMs}`);
    const link = getLinkRequest(ifname, 1); // checks the name first
    let socket: NetlinkSocket;
    try {
      socket = openNetlinkSocket(NETLINK_ROUTE, timeoutMs);
    } catch (err) {
      const { errno, text } = errnoOf(err);
      throw routeError(ifname, 'opening an rtnetlink socket', errno, text);
    }
    try {
      const reply = await exchange(socket, ifname, 'looking the interface up', link, 1);
      if (!reply.ok) throw kernelError(ifname, 'looking the interface up', reply.error);
      const ifindex = parse(ifname, 'looking the interface up', () => parseLinkIndex(reply.messages));
      return new PeerRoutes(ifname, socket, { table, ifindex, protocol: ROUTE_PROTOCOL });
    } catch (err) {
      socket.close();
      throw err;
    }
  }

  /** Routes `cidrs` through the interface (replacing a route of the same destination and metric in the table). */
  add(cidrs: readonly Cidr[]): Promise<RouteChange> {
    return this.enqueue(() => this.apply('add', cidrs, 'adding routes'));
  }

  /** Removes wgjit's routes to `cidrs`; one already gone is fine. */
  remove(cidrs: readonly Cidr[]): Promise<RouteChange> {
    return this.enqueue(() => this.apply('remove', cidrs, 'removing routes'));
  }

  /** The destinations of wgjit's routes in the table through the interface, IPv4 then IPv6. */
  list(): Promise<Cidr[]> {
    return this.enqueue(() => this.dump());
  }

  /**
   * Makes wgjit's routes in the table exactly `wanted`: removes the others
   * (of its protocol, through its interface: no one else's) and adds the
   * missing ones. Routes already there are not sent again.
   */
  reconcile(wanted: readonly Cidr[]): Promise<ReconcileResult> {
    return this.enqueue(async () => {
      if (!Array.isArray(wanted)) throw new TypeError('reconcile takes an array of CIDRs');
      const want = new Map(wanted.map((c) => [checkAllowedIp(c).text, c]));
      const present = await this.dump();
      const here = new Set(present.map((c) => c.text));
      const stray = present.filter((c) => !want.has(c.text));
      const missing = [...want.values()].filter((c) => !here.has(c.text));
      const removed = await this.apply('remove', stray, 'removing stray routes');
      const added = await this.apply('add', missing, 'adding missing routes');
      return { added: added.changed, removed: removed.changed, kept: present.length - stray.length, failed: [...removed.failed, ...added.failed] };
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.queue.idle();
    this.socket.close();
  }

  private enqueue<T>(task: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new RouteError('io', `routes of ${this.ifname} are closed`));
    return this.queue.run(task);
  }

  private nextSeq(): number {
    const seq = this.seq;
    this.seq = (this.seq + 1) >>> 0 || 1;
    return seq;
  }

  /**
   * Adds or removes the routes to `cidrs`, MAX_ROUTES_PER_EXCHANGE to an
   * exchange. Every message is built (every CIDR checked) before the first
   * is sent, so bad input changes nothing. A removal of a route already
   * gone is not a failure: ESRCH (6.18 answers that for a table that
   * does not exist too), or ENOENT. Errors no route can escape, the
   * interface gone or the permission missing, end the call.
   */
  private async apply(kind: 'add' | 'remove', cidrs: readonly Cidr[], what: string): Promise<RouteChange> {
    if (!Array.isArray(cidrs)) throw new TypeError('routes take an array of CIDRs');
    const build = kind === 'add' ? newRouteRequest : delRouteRequest;
    const messages = cidrs.map((c) => build(c, this.target, 0));
    const result: RouteChange = { changed: 0, failed: [] };
    for (let from = 0; from < messages.length; from += MAX_ROUTES_PER_EXCHANGE) {
      const batch = messages.slice(from, from + MAX_ROUTES_PER_EXCHANGE);
      const seq = this.nextSeq();
      for (const m of batch) setSeq(m, seq);
      const datagrams = await transport(this.socket, this.ifname, what, Buffer.concat(batch), seq, batch.length);
      const answers = parse(this.ifname, what, () => parseAcks(datagrams, seq, batch.length));
      for (const [i, error] of answers.entries()) {
        if (error === null) result.changed++;
        else if (error.errno === ENODEV || error.errno === EPERM) throw this.failure(what, error);
        else if (kind === 'add' || (error.errno !== ESRCH && error.errno !== ENOENT)) {
          result.failed.push({ cidr: cidrs[from + i]!, errno: error.errno, code: errnoName(error.errno), message: error.message });
        }
      }
    }
    return result;
  }

  /** A kernel error that ends a call; a vanished interface says which index it had. */
  private failure(what: string, error: KernelError): RouteError {
    if (error.errno !== ENODEV) return kernelError(this.ifname, what, error);
    const why = 'deleted, or deleted and created again under a new index (open the routes again); its routes went with it';
    return new RouteError('no_device', `${this.ifname}: no such interface (ifindex ${this.ifindex}) (${what}): ${why}`, ENODEV);
  }

  /** Both families' dumps, each started again while the kernel flags it interrupted. */
  private async dump(): Promise<Cidr[]> {
    const out: Cidr[] = [];
    for (const family of [4, 6] as const) {
      for (let attempt = 1; ; attempt++) {
        const seq = this.nextSeq();
        const datagrams = await transport(this.socket, this.ifname, 'listing routes', getRoutesRequest(family, this.target, seq), seq, 1);
        const reply = parse(this.ifname, 'listing routes', () => parseReply(datagrams, seq));
        if (!reply.ok) {
          // A table that never held a route of this family does not exist yet.
          if (reply.error.errno === ENOENT) break;
          throw this.failure('listing routes', reply.error);
        }
        if (!reply.interrupted) {
          for (const r of parse(this.ifname, 'listing routes', () => parseRoutes(reply.messages))) {
            // Filtered again: a kernel without strict checking sends every route.
            if (r.protocol === this.target.protocol && r.table === this.target.table && r.oif === this.target.ifindex) out.push(r.cidr);
          }
          break;
        }
        if (attempt >= MAX_DUMP_ATTEMPTS) throw new RouteError('io', `${this.ifname}: the routes kept changing during ${MAX_DUMP_ATTEMPTS} dumps in a row (NLM_F_DUMP_INTR)`);
      }
    }
    return out;
  }
}

/** One errno, from a syscall or from the kernel's reply, as a RouteError a person can act on. */
function routeError(ifname: string, what: string, errno: number, detail: string): RouteError {
  switch (errno) {
    case ENODEV:
      return new RouteError('no_device', `${ifname}: no such interface (${what}): it is gone or was never created`, errno);
    case EPERM:
    case EACCES:
      return new RouteError('not_permitted', `${ifname}: not permitted (${what}): routes need CAP_NET_ADMIN in the interface's network namespace`, errno);
    case ENOBUFS:
      return new RouteError('io', `${ifname}: netlink buffer exhausted (${what}): the kernel dropped replies; try again`, errno);
    case ETIMEDOUT:
      return new RouteError('io', `${ifname}: no reply from the kernel within the timeout (${what})`, errno);
    default:
      return new RouteError('rejected', `${ifname}: the kernel refused ${what}: ${detail}`, errno);
  }
}

function kernelError(ifname: string, what: string, error: KernelError): RouteError {
  return routeError(ifname, what, error.errno, `${errnoName(error.errno)}${error.message === null ? '' : ` (${error.message})`}`);
}

/** A reply's parse, a malformed one as a RouteError. */
function parse<T>(ifname: string, what: string, read: () => T): T {
  try {
    return read();
  } catch (err) {
    if (err instanceof NetlinkParseError) throw new RouteError('protocol', `${ifname}: malformed rtnetlink reply (${what}): ${err.message}`);
    throw err;
  }
}

/** One exchange's datagrams, transport errors as RouteErrors. */
async function transport(socket: NetlinkSocket, ifname: string, what: string, request: Buffer, seq: number, terminals: number): Promise<Buffer[]> {
  try {
    return await socket.exchange(request, seq, terminals);
  } catch (err) {
    const { errno, text } = errnoOf(err);
    throw routeError(ifname, what, errno, text);
  }
}

async function exchange(socket: NetlinkSocket, ifname: string, what: string, request: Buffer, seq: number): Promise<Reply> {
  const datagrams = await transport(socket, ifname, what, request, seq, 1);
  return parse(ifname, what, () => parseReply(datagrams, seq));
}

/**
 * The addresses configured on `ifname` (IPv4 and IPv6, as `ip address
 * show dev IFNAME` lists them), read on a socket of its own that is closed
 * before this returns. Throws RouteError: no such interface, no permission.
 */
export async function interfaceAddresses(ifname: string, opts: RouteOptions = {}): Promise<InterfaceAddress[]> {
  const what = 'reading its addresses';
  const link = getLinkRequest(ifname, 1); // checks the name first
  let socket: NetlinkSocket;
  try {
    socket = openNetlinkSocket(NETLINK_ROUTE, opts.timeoutMs ?? REQUEST_TIMEOUT_MS);
  } catch (err) {
    const { errno, text } = errnoOf(err);
    throw routeError(ifname, 'opening an rtnetlink socket', errno, text);
  }
  try {
    const found = await exchange(socket, ifname, what, link, 1);
    if (!found.ok) throw kernelError(ifname, what, found.error);
    const ifindex = parse(ifname, what, () => parseLinkIndex(found.messages));
    for (let attempt = 1, seq = 2; ; attempt++, seq++) {
      const reply = await exchange(socket, ifname, what, getAddressesRequest(ifindex, seq), seq);
      if (!reply.ok) throw kernelError(ifname, what, reply.error);
      if (!reply.interrupted) return parse(ifname, what, () => parseAddresses(reply.messages, ifindex));
      if (attempt >= MAX_DUMP_ATTEMPTS) throw new RouteError('io', `${ifname}: the addresses kept changing during ${MAX_DUMP_ATTEMPTS} dumps in a row (NLM_F_DUMP_INTR)`);
    }
  } finally {
    socket.close();
  }
}
