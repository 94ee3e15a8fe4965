/**
 * Network namespace plumbing with iproute2: namespaces, veth pairs placed
 * straight into their namespaces (so no name ever exists in the root
 * namespace), bridges, addresses, sysctls.
 */
import { execFileSync } from 'node:child_process';
import { isIP } from 'node:net';
import { nsRun, run } from './exec.js';
import { IFNAME_RULE, isValidIfname } from '../../src/net/ifname.js';

export function checkIfname(name: string): string {
  if (!isValidIfname(name)) {
    throw new RangeError(`invalid interface name ${JSON.stringify(name)} (${IFNAME_RULE})`);
  }
  return name;
}

export async function listNamespaces(): Promise<string[]> {
  const { stdout } = await run('ip', ['netns', 'list']);
  // Lines look like "name" or "name (id: 3)".
  return stdout
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((n) => n !== '');
}

/** Creates `name` with loopback up. A leftover namespace of that name is replaced. */
export async function createNamespace(name: string): Promise<void> {
  await deleteNamespace(name);
  await run('ip', ['netns', 'add', name]);
  await nsRun(name, 'ip', ['link', 'set', 'lo', 'up']);
}

/** Deletes `name` if it exists. */
export async function deleteNamespace(name: string): Promise<void> {
  if ((await listNamespaces()).includes(name)) await run('ip', ['netns', 'delete', name]);
}

/** The same, synchronously, for exit handlers. */
export function deleteNamespaceSync(name: string): void {
  try {
    execFileSync('ip', ['netns', 'delete', name], { stdio: 'ignore' });
  } catch {
    // not there
  }
}

export interface LinkEnd {
  ns: string;
  name: string;
}

/** A veth pair with one end in each namespace (both may be the same one). */
export async function addVethPair(a: LinkEnd, b: LinkEnd): Promise<void> {
  checkIfname(a.name);
  checkIfname(b.name);
  await run('ip', ['link', 'add', 'dev', a.name, 'netns', a.ns, 'type', 'veth', 'peer', 'name', b.name, 'netns', b.ns]);
}

/**
 * Plugs `end` into `bridge` in `switchNs` through a veth whose switch side
 * is named `<end.name>b`, puts `cidrs` on `end` and brings both sides up.
 */
export async function attachToBridge(end: LinkEnd, switchNs: string, bridge: string, cidrs: readonly string[]): Promise<void> {
  const port = `${end.name}b`;
  await addVethPair(end, { ns: switchNs, name: port });
  await setMaster(switchNs, port, bridge);
  await linkUp(switchNs, port);
  for (const cidr of cidrs) await addAddress(end.ns, end.name, cidr);
  await linkUp(end.ns, end.name);
}

export async function addBridge(ns: string, name: string): Promise<void> {
  checkIfname(name);
  await nsRun(ns, 'ip', ['link', 'add', 'dev', name, 'type', 'bridge']);
  await linkUp(ns, name);
}

export async function setMaster(ns: string, dev: string, bridge: string): Promise<void> {
  await nsRun(ns, 'ip', ['link', 'set', 'dev', dev, 'master', bridge]);
}

export async function linkUp(ns: string, dev: string): Promise<void> {
  await nsRun(ns, 'ip', ['link', 'set', 'dev', dev, 'up']);
}

/** Adds `cidr` to `dev`. IPv6 addresses skip duplicate address detection, so they work at once. */
export async function addAddress(ns: string, dev: string, cidr: string): Promise<void> {
  const family = isIP(cidr.split('/')[0] ?? '');
  if (family === 0) throw new RangeError(`not an address: ${cidr}`);
  await nsRun(ns, 'ip', ['address', 'add', cidr, 'dev', dev, ...(family === 6 ? ['nodad'] : [])]);
}

export async function addRoute(ns: string, cidr: string, dev: string): Promise<void> {
  const family = isIP(cidr.split('/')[0] ?? '');
  await nsRun(ns, 'ip', [family === 6 ? '-6' : '-4', 'route', 'add', cidr, 'dev', dev]);
}

export async function sysctl(ns: string, key: string, value: string | number): Promise<void> {
  await nsRun(ns, 'sysctl', ['-q', '-w', `${key}=${value}`]);
}
