/**
 * The lifecycle's timings and defaults, named once: how often the device
 * is swept and reconciled with the store, how long a peer may stay idle or
 * unconfirmed, and how fresh a device read must be to answer the readiness
 * probe. The settings (src/cli/settings.ts) and the daemon's wiring take them
 * from here; the stages take them as arguments.
 */

/** Between sweeps: one device read each, which confirms and expires peers (sweeper.ts). */
export const SWEEP_INTERVAL_MS = 10_000;

/**
 * A device read (the sweeper's, the reconciler's) this recent answers the
 * readiness probe without a read of its own: three sweeps, so one slow or
 * late pass does not make the probe pay for a whole read.
 */
export const DEVICE_READ_FRESH_MS = 3 * SWEEP_INTERVAL_MS;

/** A provisional peer that has not completed a handshake within this is removed (`unconfirmed`). */
export const PROVISIONAL_GRACE_MS = 15_000;

/**
 * A receive counter that has not moved for this long counts as still (sweep.ts):
 * half a sweep interval, so the periodic passes judge as they always did,
 * and a pass right after another cannot judge from a moment's look.
 */
export const RX_STILL_MS = SWEEP_INTERVAL_MS / 2;

/** Default idle timeout: a peer without a handshake this long, and whose receive counter is still, is removed (`idle`). */
export const IDLE_TIMEOUT_MS = 180_000;

/** Default interval between reconciliations: how stale the device may get if a store event is lost. */
export const RECONCILE_INTERVAL_MS = 30_000;

/** Wait between attempts to subscribe to store events while the store is unreachable (store-sync.ts). */
export const SUBSCRIBE_RETRY_MS = 2_000;
