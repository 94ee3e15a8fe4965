/**
 * The addon's netlink socket (addon/netlink_socket.cc), typed: a request
 * buffer out, the reply datagrams of its sequence number back, the wait on
 * libuv's thread pool so the event loop never blocks on the kernel. Both
 * netlink users open theirs here: the WireGuard device (generic netlink,
 * netlink.ts) and the peer routes (rtnetlink, src/route/routes.ts).
 */
import { requireAddon } from '../native-addon.js';

/** A kernel that does not answer within this is treated as broken, never waited on. */
export const REQUEST_TIMEOUT_MS = 5_000;

export interface NetlinkSocket {
  /**
   * Sends `request` (every message in it numbered `seq`) and resolves with
   * the reply datagrams once `terminals` NLMSG_DONE or NLMSG_ERROR messages
   * have come: 1 for a request or a dump, N for N messages that each ask
   * for an ack. Rejects with an Error whose `code` is the errno name.
   */
  exchange(request: Buffer, seq: number, terminals?: number): Promise<Buffer[]>;
  /** Closes now, or once an exchange in flight ends. */
  close(): void;
}
type NetlinkSocketClass = new (protocol: number, timeoutMs: number) => NetlinkSocket;

/** A bound socket of `protocol` (NETLINK_GENERIC, NETLINK_ROUTE); throws the errno as an Error with `errno`. */
export function openNetlinkSocket(protocol: number, timeoutMs: number): NetlinkSocket {
  const cls = requireAddon()['NetlinkSocket'];
  if (typeof cls !== 'function') throw new Error('native addon has no NetlinkSocket: rebuild with make');
  return new (cls as NetlinkSocketClass)(protocol, timeoutMs);
}

/** The errno (positive) and text of an error the socket threw or rejected with; 0 if it has none. */
export function errnoOf(err: unknown): { errno: number; text: string } {
  const e = err as NodeJS.ErrnoException;
  return { errno: typeof e.errno === 'number' ? Math.abs(e.errno) : 0, text: e.message ?? String(err) };
}
