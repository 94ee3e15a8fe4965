/**
 * Which backend serves an interface. `auto` uses netlink when the interface
 * is a kernel WireGuard link and the userspace API when its socket exists;
 * a forced backend that does not fit the interface fails with the reason.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { WireGuardDevice } from './device.js';
import { isKernelWireGuard, NetlinkDevice } from './netlink.js';
import { UapiDevice } from './uapi.js';

export const BACKEND_CHOICES = ['auto', 'uapi', 'netlink'] as const;
export type BackendChoice = (typeof BACKEND_CHOICES)[number];

/** No backend fits the interface as asked: the operator's choice or setup is wrong, not the device. */
export class NoBackendError extends Error {
  override readonly name = 'NoBackendError';
}

export interface InterfaceFacts {
  /** sysfs says DEVTYPE=wireguard. */
  kernelLink: boolean;
  /** `<uapiDir>/<ifname>.sock` exists. */
  uapiSocket: boolean;
}

/** The backend to open, or a message saying why none fits. Pure. */
export function chooseBackend(ifname: string, choice: BackendChoice, facts: InterfaceFacts, socketPath: string): { backend: 'uapi' | 'netlink' } | { error: string } {
  switch (choice) {
    case 'netlink':
      return facts.kernelLink
        ? { backend: 'netlink' }
        : { error: `--backend netlink: ${ifname} is not a kernel WireGuard interface${facts.uapiSocket ? ` (a userspace WireGuard serves it at ${socketPath}: use --backend uapi or auto)` : ''}` };
    case 'uapi':
      return facts.uapiSocket
        ? { backend: 'uapi' }
        : { error: `--backend uapi: no userspace WireGuard API socket for ${ifname} at ${socketPath}${facts.kernelLink ? ` (${ifname} is a kernel WireGuard interface: use --backend netlink or auto)` : ': start wireguard-go or boringtun for that interface'}` };
    case 'auto':
      if (facts.kernelLink) return { backend: 'netlink' };
      if (facts.uapiSocket) return { backend: 'uapi' };
      return { error: `${ifname} is neither a kernel WireGuard interface nor served by a userspace WireGuard (no socket at ${socketPath}): create it with "ip link add ${ifname} type wireguard" or start wireguard-go ${ifname}` };
  }
}

export async function openDevice(opts: { interface: string; backend: BackendChoice; uapiDir: string }): Promise<WireGuardDevice> {
  const socketPath = join(opts.uapiDir, `${opts.interface}.sock`);
  const facts = { kernelLink: await isKernelWireGuard(opts.interface), uapiSocket: existsSync(socketPath) };
  const chosen = chooseBackend(opts.interface, opts.backend, facts, socketPath);
  if ('error' in chosen) throw new NoBackendError(chosen.error);
  return chosen.backend === 'netlink' ? NetlinkDevice.open(opts.interface) : UapiDevice.open(opts.interface, { socketDir: opts.uapiDir });
}
