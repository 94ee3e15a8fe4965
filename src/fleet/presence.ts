/**
 * This gateway's heartbeat in the fleet (gateways.ts): joins at start,
 * refusing an id that is alive elsewhere, then beats every
 * HEARTBEAT_INTERVAL_MS with its count of installed peers, and leaves at a
 * clean stop. A store that is away leaves the beats failing (logged once
 * per outage); the next beat after it is back joins again. An id taken
 * over by another instance meanwhile (this one's beats lapsed in an outage
 * and another started with the same id) is logged as an error and this
 * gateway stops beating until the other's marker lapses: two gateways never
 * take turns at one id.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from '../telemetry/log.js';
import { GatewayIdInUseError } from './gateway-id.js';
import { HEARTBEAT_INTERVAL_MS, HEARTBEAT_TTL_MS, type BeatResult, type GatewayBeat, type Gateways } from './gateways.js';

/** How often a start that found its id held looks again, within one TTL. */
const JOIN_POLL_MS = HEARTBEAT_INTERVAL_MS / 4;

export interface PresenceDeps {
  gateways: Pick<Gateways, 'beat' | 'leave'>;
  id: string;
  version: string;
  publicKey: string;
  /** The WireGuard interface, and its addresses as of each beat (src/fleet/identities.ts). */
  interface?: string;
  addresses?: () => readonly string[];
  installedPeers: () => number;
  log: Logger;
  /** Wall clock, unix ms. */
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export class Presence {
  readonly instance = randomBytes(8).toString('hex');
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly startedAt: string;
  private timer: NodeJS.Timeout | null = null;
  private beating: Promise<void> | null = null;
  /** What the last beat found, so that each change is logged once. */
  private state: 'joined' | 'unavailable' | 'taken' = 'joined';

  constructor(private readonly deps: PresenceDeps) {
    this.now = deps.now ?? Date.now;
    this.sleep = deps.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
    this.startedAt = new Date(this.now()).toISOString();
  }

  private entry(): GatewayBeat {
    return {
      id: this.deps.id,
      instance: this.instance,
      host: hostname(),
      pid: process.pid,
      version: this.deps.version,
      publicKey: this.deps.publicKey,
      ...(this.deps.interface !== undefined && { interface: this.deps.interface }),
      ...(this.deps.addresses !== undefined && { addresses: [...this.deps.addresses()] }),
      startedAt: this.startedAt,
      heartbeatAt: new Date(this.now()).toISOString(),
      installedPeers: this.deps.installedPeers(),
    };
  }

  /**
   * The first beat. An id held by another instance is waited on for one
   * TTL: a marker that lapses was a run of this gateway that died without
   * leaving; one that is renewed is a gateway alive elsewhere
   * (GatewayIdInUseError). A store that is away is not waited for (the
   * beats go on trying). Throws GatewayIdInUseError.
   */
  async join(): Promise<void> {
    const deadline = this.now() + HEARTBEAT_TTL_MS + HEARTBEAT_INTERVAL_MS;
    let first: GatewayBeat | null | undefined;
    for (;;) {
      let result: BeatResult;
      try {
        result = await this.deps.gateways.beat(this.entry());
      } catch (err) {
        this.deps.log.warn({ gatewayId: this.deps.id, err: (err as Error).message }, 'cannot join the fleet now (peer store unavailable); the heartbeat keeps trying');
        this.state = 'unavailable';
        return;
      }
      if (result.ok) {
        this.deps.log.info({ gatewayId: this.deps.id, instance: this.instance }, 'joined the fleet');
        return;
      }
      const other = result.other.entry;
      if (first === undefined) first = other;
      else if (other !== null && other.heartbeatAt !== first?.heartbeatAt) throw inUse(this.deps.id, other, this.now());
      if (this.now() >= deadline) throw inUse(this.deps.id, other, this.now());
      await this.sleep(JOIN_POLL_MS);
    }
  }

  /** Beats every HEARTBEAT_INTERVAL_MS until stop(). */
  start(): void {
    const tick = () => {
      this.beating = this.beat().finally(() => {
        this.beating = null;
        if (this.timer !== null) this.timer = setTimeout(tick, HEARTBEAT_INTERVAL_MS);
      });
    };
    this.timer = setTimeout(tick, HEARTBEAT_INTERVAL_MS);
  }

  /** Stops beating and leaves (a clean stop: `GET /v1/gateways` shows it gone at once). */
  async stop(): Promise<void> {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    await this.beating;
    if (this.state === 'joined') await this.deps.gateways.leave(this.deps.id, this.instance);
  }

  private async beat(): Promise<void> {
    const { log, id } = this.deps;
    let result: BeatResult;
    try {
      result = await this.deps.gateways.beat(this.entry());
    } catch (err) {
      if (this.state !== 'unavailable') log.warn({ gatewayId: id, err: (err as Error).message }, 'fleet heartbeat failed (peer store unavailable)');
      this.state = 'unavailable';
      return;
    }
    if (result.ok) {
      if (this.state !== 'joined') log.info({ gatewayId: id }, 'fleet heartbeat restored');
      this.state = 'joined';
      return;
    }
    if (this.state !== 'taken') {
      const other = result.other.entry;
      log.error(
        { gatewayId: id, otherHost: other?.host, otherPid: other?.pid },
        'another gateway took this --gateway-id while our heartbeat lapsed: not beating until it goes; give one of them another id',
      );
    }
    this.state = 'taken';
  }
}

function inUse(id: string, other: GatewayBeat | null, now: number): GatewayIdInUseError {
  const where = other === null ? 'another instance' : `host ${other.host}, pid ${other.pid}, last heartbeat ${((now - Date.parse(other.heartbeatAt)) / 1000).toFixed(1)} s ago`;
  return new GatewayIdInUseError(`--gateway-id ${id} is in use by a gateway alive elsewhere (${where}): stop that one, or give this gateway another --gateway-id`);
}
