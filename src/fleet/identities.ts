/**
 * What no peer record may take: the public key and the addresses of a
 * gateway's WireGuard interface (src/authorize/peer.ts refuses them). A
 * gateway knows its own from the device and the kernel; the others' come
 * with their heartbeats (gateways.ts), read through the fleet's list, which
 * serves the writes for IDENTITIES_CACHE_MS so that a create does not cost
 * a read of the whole list, nor an import one per record.
 */
import type { GatewaySelf } from '../authorize/peer.js';
import { formatAddress, parseAddress, type IpAddress } from '../net/address.js';
import type { Logger } from '../telemetry/log.js';
import type { GatewayBeat, Gateways } from './gateways.js';

/** How long one read of the fleet's list serves the writes after it. A gateway that joins is known to them within this. */
export const IDENTITIES_CACHE_MS = 2_000;
/** How often a gateway reads its interface's addresses again (an operator may add one while it runs). */
export const INTERFACE_READ_INTERVAL_MS = 30_000;

/**
 * A gateway's beat (or its entry in `GET /v1/gateways`, which spells the
 * same fields alike) as a write sees it; addresses that do not parse (a
 * beat is the store's text) are left out.
 */
export function selfOfBeat(beat: Pick<GatewayBeat, 'id' | 'publicKey' | 'interface' | 'addresses'>): GatewaySelf {
  const addresses: IpAddress[] = [];
  for (const text of Array.isArray(beat.addresses) ? beat.addresses : []) {
    const r = typeof text === 'string' ? parseAddress(text) : null;
    if (r?.ok) addresses.push(r.address);
  }
  return { gateway: beat.id, interface: beat.interface ?? 'WireGuard interface', publicKey: beat.publicKey || null, addresses };
}

export interface IdentitiesDeps {
  gateways: Pick<Gateways, 'list'>;
  /** This process's own gateway (`wgjit run`), known without the store; absent in `wgjit api`. */
  local?: () => GatewaySelf;
  cacheMs?: number;
  /** Monotonic clock, ms. */
  now?: () => number;
}

/** The gateways whose interfaces no record may take: this one's, and every one the fleet lists (gone ones too: they may come back). */
export class GatewayIdentities {
  private readonly cacheMs: number;
  private readonly now: () => number;
  private cached: { at: number; selves: Promise<GatewaySelf[]> } | null = null;

  constructor(private readonly deps: IdentitiesDeps) {
    this.cacheMs = deps.cacheMs ?? IDENTITIES_CACHE_MS;
    this.now = deps.now ?? (() => performance.now());
  }

  /** This gateway first, then the fleet's. Throws StoreUnavailableError: a write could not go ahead either. */
  async current(): Promise<GatewaySelf[]> {
    const local = this.deps.local?.();
    const fleet = await this.fleet();
    return local === undefined ? fleet : [local, ...fleet];
  }

  private fleet(): Promise<GatewaySelf[]> {
    const at = this.now();
    if (this.cached !== null && at - this.cached.at < this.cacheMs) return this.cached.selves;
    // One read for the writes that come meanwhile; a failed one is not kept.
    const selves = this.deps.gateways.list().then((entries) => entries.map(selfOfBeat));
    const entry = { at, selves };
    this.cached = entry;
    selves.catch(() => {
      if (this.cached === entry) this.cached = null;
    });
    return selves;
  }
}

/**
 * This gateway's interface addresses, read at start and every
 * INTERFACE_READ_INTERVAL_MS (src/route/routes.ts interfaceAddresses). A
 * read that fails keeps the last ones and is logged once until one works.
 */
export class InterfaceAddresses {
  private current: readonly IpAddress[] = [];
  private texts: readonly string[] = [];
  private timer: NodeJS.Timeout | null = null;
  private failing = false;

  constructor(
    private readonly ifname: string,
    private readonly read: () => Promise<ReadonlyArray<{ address: IpAddress }>>,
    private readonly log: Logger,
  ) {}

  get addresses(): readonly IpAddress[] {
    return this.current;
  }

  /** The addresses as a heartbeat carries them. */
  get spelled(): readonly string[] {
    return this.texts;
  }

  async refresh(): Promise<void> {
    try {
      const found = await this.read();
      this.current = found.map((a) => a.address);
      this.texts = this.current.map(formatAddress);
      if (this.failing) this.log.info({ interface: this.ifname, addresses: this.texts }, 'interface addresses read again');
      this.failing = false;
    } catch (err) {
      if (!this.failing) {
        this.log.warn({ interface: this.ifname, err: (err as Error).message }, "cannot read the interface's addresses: peers' allowed IPs are not checked against them until a read works");
      }
      this.failing = true;
    }
  }

  start(intervalMs = INTERFACE_READ_INTERVAL_MS): void {
    const tick = () => {
      void this.refresh().finally(() => {
        if (this.timer !== null) this.timer = setTimeout(tick, intervalMs);
      });
    };
    this.timer = setTimeout(tick, intervalMs);
  }

  stop(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }
}
