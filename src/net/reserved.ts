/**
 * Address ranges that are never a WireGuard client's: the host's own
 * loopback, multicast groups, link-local addresses and the unspecified
 * address. An allowed IP in one of them, or over one, would route the
 * gateway's own or other hosts' traffic into a tunnel (or let a client
 * send as such an address), so records with one are refused where they are
 * written. The default routes (0.0.0.0/0, ::/0) cover everything and are a
 * policy of their own (a full-tunnel peer), not a mistake: left to it.
 */
import { parseCidr, cidrsOverlap, type Cidr } from './cidr.js';

export interface ReservedRange {
  readonly cidr: Cidr;
  /** What the range is, for a message: `loopback`. */
  readonly what: string;
}

/** The table: the range, and what it is. */
const RANGES: ReadonlyArray<[string, string]> = [
  ['0.0.0.0/32', 'the unspecified address'],
  ['127.0.0.0/8', 'loopback'],
  ['169.254.0.0/16', 'link-local'],
  ['224.0.0.0/4', 'multicast'],
  ['::/128', 'the unspecified address'],
  ['::1/128', 'loopback'],
  ['fe80::/10', 'link-local'],
  ['ff00::/8', 'multicast'],
];

export const RESERVED_RANGES: readonly ReservedRange[] = RANGES.map(([text, what]) => {
  const r = parseCidr(text);
  if (!r.ok) throw new Error(`reserved range ${text}: ${r.message}`);
  return { cidr: r.cidr, what };
});

/** Whether `cidr` is a default route (prefix 0): it overlaps every range, and is a policy, not a class. */
export function isDefaultRoute(cidr: Cidr): boolean {
  return cidr.prefix === 0;
}

/**
 * Why `cidr` may not be a client's allowed IP, for a message
 * (`is loopback (127.0.0.0/8)`, `overlaps multicast (224.0.0.0/4)`); null
 * when it touches no reserved range, and for the default routes.
 */
export function reservedRangeProblem(cidr: Cidr): string | null {
  if (isDefaultRoute(cidr)) return null;
  for (const r of RESERVED_RANGES) {
    if (!cidrsOverlap(cidr, r.cidr)) continue;
    return `${cidr.prefix >= r.cidr.prefix ? 'is' : 'overlaps'} ${r.what} (${r.cidr.text})`;
  }
  return null;
}
