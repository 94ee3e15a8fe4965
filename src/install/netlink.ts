/**
 * WireGuardDevice over kernel generic netlink: the "wireguard" family, one
 * socket per device (addon/netlink_socket.cc), exchanges on libuv's thread
 * pool so a 10,000-peer set or a 100,000-peer dump never blocks the event
 * loop. Messages are built and parsed in netlink-protocol.ts.
 *
 * Requests run one at a time per device, in call order. Every exchange is
 * bounded by a receive timeout; no failure is retried here except an
 * interrupted dump (the peer list changed under it), a bounded number of
 * times. Callers count and log what fails.
 */
import { readFile } from 'node:fs/promises';
import { errnoOf, openNetlinkSocket, REQUEST_TIMEOUT_MS, type NetlinkSocket } from './netlink-socket.js';
import { SerialQueue } from './serial.js';
import { DeviceError, type DeviceInfo, type PeerConfig, type PeerStatus, type WireGuardDevice } from './device.js';
import type { PublicKey } from '../handshake/keys.js';
import {
  checkInterfaceName,
  checkMaxMessageBytes,
  DEFAULT_MAX_MESSAGE_BYTES,
  getDeviceRequest,
  getFamilyRequest,
  NETLINK_GENERIC,
  NetlinkParseError,
  parseDevice,
  parseFamilyId,
  parseReply,
  removePeersRequests,
  setPeersRequests,
  setSeq,
  WG_GENL_NAME,
  type KernelError,
  type NetlinkMessage,
} from './netlink-protocol.js';

/** Dumps restarted because the peer list changed during them, at most. */
export const MAX_DUMP_ATTEMPTS = 5;

export interface NetlinkOptions {
  /** Largest set message. Default DEFAULT_MAX_MESSAGE_BYTES. */
  maxMessageBytes?: number;
  /** Per-exchange receive timeout. Default REQUEST_TIMEOUT_MS. */
  timeoutMs?: number;
}

const ENOENT = 2;
const EPERM = 1;
const EACCES = 13;
const ENODEV = 19;
const EOPNOTSUPP = 95;
const ENOBUFS = 105;

/** One errno, from a syscall or from the kernel's reply, as a DeviceError a person can act on. */
function deviceError(name: string, what: string, errno: number, detail: string): DeviceError {
  switch (errno) {
    case ENODEV:
      return new DeviceError('no_device', `${name}: no such device (${what}): the interface is gone or was never created`, errno);
    case EOPNOTSUPP:
      return new DeviceError('no_device', `${name} is not a kernel WireGuard interface (${what})`, errno);
    case EPERM:
    case EACCES:
      return new DeviceError('not_permitted', `${name}: not permitted (${what}): needs CAP_NET_ADMIN in the interface's network namespace`, errno);
    case ENOBUFS:
      return new DeviceError('io', `${name}: netlink buffer exhausted (${what}): the kernel dropped replies; try again`, errno);
    default:
      return new DeviceError('rejected', `${name}: the kernel refused ${what}: ${detail}`, errno);
  }
}

/** Whether `ifname` is a kernel WireGuard link (sysfs says DEVTYPE=wireguard). */
export async function isKernelWireGuard(ifname: string, sysfs = '/sys/class/net'): Promise<boolean> {
  try {
    checkInterfaceName(ifname);
    const uevent = await readFile(`${sysfs}/${ifname}/uevent`, 'utf8');
    return /^DEVTYPE=wireguard$/m.test(uevent);
  } catch {
    return false;
  }
}

export class NetlinkDevice implements WireGuardDevice {
  readonly kind = 'netlink' as const;
  private readonly queue = new SerialQueue();
  private closed = false;
  /** 1 went to the family lookup. */
  private seq = 2;
  /** Dumps started again because the kernel flagged them interrupted. */
  dumpRestarts = 0;

  private constructor(
    readonly name: string,
    private readonly socket: NetlinkSocket,
    private readonly familyId: number,
    private readonly maxMessageBytes: number,
  ) {}

  /**
   * Resolves the family and reads the device once, so a missing module, a
   * missing interface or missing permission fails here with a clear error.
   */
  static async open(name: string, opts: NetlinkOptions = {}): Promise<NetlinkDevice> {
    try {
      checkInterfaceName(name);
    } catch (e) {
      throw new DeviceError('no_device', (e as Error).message);
    }
    const maxMessageBytes = opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    try {
      checkMaxMessageBytes(maxMessageBytes);
    } catch (e) {
      throw new RangeError((e as Error).message);
    }
    const timeoutMs = opts.timeoutMs ?? REQUEST_TIMEOUT_MS;
    if (!Number.isInteger(timeoutMs) || timeoutMs < 1) throw new RangeError(`timeoutMs must be a positive integer, got ${timeoutMs}`);
    let socket: NetlinkSocket;
    try {
      socket = openNetlinkSocket(NETLINK_GENERIC, timeoutMs);
    } catch (err) {
      const { errno, text } = errnoOf(err);
      throw deviceError(name, 'opening a netlink socket', errno, text);
    }
    try {
      const family = await exchange(socket, name, 'resolving the wireguard family', getFamilyRequest(WG_GENL_NAME, 1), 1);
      if (!family.ok) {
        if (family.error.errno === ENOENT) {
          throw new DeviceError('no_device', `${name}: this kernel has no WireGuard (no "${WG_GENL_NAME}" generic netlink family; is the wireguard module loaded?)`, ENOENT);
        }
        throw kernelError(name, 'resolving the wireguard family', family.error);
      }
      const device = new NetlinkDevice(name, socket, parseFamilyId(family.messages), maxMessageBytes);
      (await device.getDevice()).privateKey.fill(0);
      return device;
    } catch (err) {
      socket.close();
      if (err instanceof NetlinkParseError) throw new DeviceError('protocol', `${name}: malformed family reply: ${err.message}`);
      throw err;
    }
  }

  getDevice(): Promise<DeviceInfo> {
    return this.enqueue(() => this.dump());
  }

  async listPeers(): Promise<PeerStatus[]> {
    const device = await this.getDevice();
    device.privateKey.fill(0);
    return device.peers;
  }

  setPeers(peers: readonly PeerConfig[]): Promise<void> {
    return this.enqueue(() => {
      // Built whole before the first is sent, so invalid input changes nothing.
      const requests = setPeersRequests(this.familyId, this.name, peers, this.maxMessageBytes);
      return this.sendAll(requests, `setting ${peers.length} peers`);
    });
  }

  removePeers(publicKeys: readonly PublicKey[]): Promise<void> {
    return this.enqueue(() => {
      const requests = removePeersRequests(this.familyId, this.name, publicKeys, this.maxMessageBytes);
      return this.sendAll(requests, `removing ${publicKeys.length} peers`);
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.queue.idle();
    this.socket.close();
  }

  private enqueue<T>(task: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new DeviceError('io', `device ${this.name} is closed`));
    return this.queue.run(task);
  }

  private nextSeq(): number {
    const seq = this.seq;
    this.seq = (this.seq + 1) >>> 0 || 1;
    return seq;
  }

  private async sendAll(requests: Buffer[], what: string): Promise<void> {
    for (const [i, request] of requests.entries()) {
      const seq = this.nextSeq();
      setSeq(request, seq);
      const reply = await exchange(this.socket, this.name, what, request, seq);
      if (!reply.ok) {
        const part = requests.length > 1 ? ` (message ${i + 1} of ${requests.length}; the earlier ones were applied)` : '';
        throw kernelError(this.name, `${what}${part}`, reply.error);
      }
    }
  }

  private async dump(): Promise<DeviceInfo> {
    for (let attempt = 1; ; attempt++) {
      const seq = this.nextSeq();
      const reply = await exchange(this.socket, this.name, 'reading the device', getDeviceRequest(this.familyId, this.name, seq), seq);
      if (!reply.ok) throw kernelError(this.name, 'reading the device', reply.error);
      if (!reply.interrupted) return parseOrThrow(this.name, reply.messages);
      this.dumpRestarts++;
      if (attempt >= MAX_DUMP_ATTEMPTS) {
        throw new DeviceError('io', `${this.name}: the peer list kept changing during ${MAX_DUMP_ATTEMPTS} dumps in a row (NLM_F_DUMP_INTR)`);
      }
    }
  }
}

function kernelError(name: string, what: string, error: KernelError): DeviceError {
  return deviceError(name, what, error.errno, error.message ?? `errno ${error.errno}`);
}

function parseOrThrow(name: string, messages: NetlinkMessage[]): DeviceInfo {
  try {
    return parseDevice(name, messages);
  } catch (err) {
    if (err instanceof NetlinkParseError) throw new DeviceError('protocol', `${name}: unparseable device dump: ${err.message}`);
    throw err;
  }
}

/** One request and its reply, with transport errors as DeviceErrors. */
async function exchange(socket: NetlinkSocket, name: string, what: string, request: Buffer, seq: number) {
  let datagrams: Buffer[];
  try {
    datagrams = await socket.exchange(request, seq);
  } catch (err) {
    const { errno, text } = errnoOf(err);
    if ((err as NodeJS.ErrnoException).code === 'ETIMEDOUT') {
      throw new DeviceError('io', `${name}: no reply from the kernel within the timeout (${what})`, errno);
    }
    throw deviceError(name, what, errno, text);
  }
  try {
    return parseReply(datagrams, seq);
  } catch (err) {
    if (err instanceof NetlinkParseError) throw new DeviceError('protocol', `${name}: malformed netlink reply (${what}): ${err.message}`);
    throw err;
  }
}
