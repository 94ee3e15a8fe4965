/**
 * WireGuardDevice over the cross-platform userspace API: the UNIX stream
 * socket `<dir>/<ifname>.sock` that wireguard-go (and boringtun) serve.
 *
 * One connection per request: wireguard-go would serve several requests on
 * one connection, but after a rejected `set` it reads the rest of that
 * request's lines as new operations and hangs up, so a fresh connection per
 * request keeps one failure from leaking into the next. Requests run one at
 * a time per device, in call order.
 */
import { connect } from 'node:net';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { DeviceError, type DeviceInfo, type PeerConfig, type PeerStatus, type WireGuardDevice } from './device.js';
import {
  batches,
  GET_REQUEST,
  isCompleteReply,
  parseGetReply,
  parseReply,
  serializeRemovePeers,
  serializeSetPeers,
} from './uapi-protocol.js';

export const DEFAULT_SOCKET_DIR = '/var/run/wireguard';
/** Peers per `set` request. wireguard-go applies 10,000 peers in ≈ 0.65 s on
 *  the test host; 5,000 keeps each request well inside REQUEST_TIMEOUT_MS
 *  even on a slow machine while costing only a handful of round trips. */
export const DEFAULT_BATCH_SIZE = 5_000;
/** A device that does not answer within this is treated as broken, never waited on. */
export const REQUEST_TIMEOUT_MS = 5_000;
/** Linux IFNAMSIZ - 1; also keeps the name from walking out of the socket dir. */
const INTERFACE_NAME = /^[A-Za-z0-9_.=+-]{1,15}$/;

export interface UapiOptions {
  /** Where the `<name>.sock` sockets live. Default /var/run/wireguard. */
  socketDir?: string;
  /** Most peers in one set request. Default DEFAULT_BATCH_SIZE. */
  batchSize?: number;
  /** Per-request timeout. Default REQUEST_TIMEOUT_MS. */
  timeoutMs?: number;
}

function errorFromSocket(err: NodeJS.ErrnoException, path: string): DeviceError {
  switch (err.code) {
    case 'ENOENT':
    case 'ECONNREFUSED':
      return new DeviceError('no_device', `no WireGuard userspace API at ${path} (${err.code}): is wireguard-go running for this interface?`);
    case 'EACCES':
    case 'EPERM':
      return new DeviceError('not_permitted', `not permitted to open ${path} (${err.code}): run as root or with access to the socket`);
    default:
      return new DeviceError('io', `userspace API ${path}: ${err.message}`);
  }
}

/** Sends one request on a fresh connection and resolves with the whole reply text. */
function exchange(path: string, request: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: string[] = [];
    let tail = '';
    let settled = false;
    const socket = connect({ path });
    socket.setEncoding('utf8');
    const finish = (err: DeviceError | null, reply?: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(reply ?? '');
    };
    const timer = setTimeout(
      () => finish(new DeviceError('io', `userspace API ${path}: no complete reply within ${timeoutMs} ms`)),
      timeoutMs,
    );
    socket.on('connect', () => socket.write(request));
    socket.on('data', (chunk: string) => {
      chunks.push(chunk);
      // The reply ends at its only blank line; look across the chunk boundary.
      tail = (tail + chunk).slice(-2);
      if (isCompleteReply(tail)) finish(null, chunks.join(''));
    });
    socket.on('error', (err) => finish(errorFromSocket(err, path)));
    socket.on('close', () =>
      finish(new DeviceError('io', `userspace API ${path}: connection closed before the reply was complete`)),
    );
  });
}

/** Connects and hangs up without a request: proves someone serves the socket. */
function probe(path: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect({ path });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new DeviceError('io', `userspace API ${path}: connect did not complete within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on('connect', () => {
      clearTimeout(timer);
      socket.end();
      resolve();
    });
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(errorFromSocket(err, path));
    });
  });
}

export class UapiDevice implements WireGuardDevice {
  readonly kind = 'uapi' as const;
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  private constructor(
    readonly name: string,
    readonly socketPath: string,
    private readonly batchSize: number,
    readonly timeoutMs: number,
  ) {}

  /** Opens the device; fails with DeviceError('no_device') if nothing serves its socket. */
  static async open(name: string, opts: UapiOptions = {}): Promise<UapiDevice> {
    if (!INTERFACE_NAME.test(name)) throw new DeviceError('no_device', `invalid interface name ${JSON.stringify(name)}`);
    const batchSize = opts.batchSize ?? DEFAULT_BATCH_SIZE;
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`batchSize must be a positive integer, got ${batchSize}`);
    const path = join(opts.socketDir ?? DEFAULT_SOCKET_DIR, `${name}.sock`);
    try {
      const st = await stat(path);
      if (!st.isSocket()) throw new DeviceError('no_device', `${path} exists but is not a socket`);
    } catch (e) {
      if (e instanceof DeviceError) throw e;
      throw errorFromSocket(e as NodeJS.ErrnoException, path);
    }
    const device = new UapiDevice(name, path, batchSize, opts.timeoutMs ?? REQUEST_TIMEOUT_MS);
    // A socket left behind by a killed daemon refuses connections: find out now.
    await probe(path, device.timeoutMs);
    return device;
  }

  getDevice(): Promise<DeviceInfo> {
    return this.enqueue(async () => this.readDevice());
  }

  async listPeers(): Promise<PeerStatus[]> {
    const device = await this.getDevice();
    device.privateKey.fill(0);
    return device.peers;
  }

  async setPeers(peers: readonly PeerConfig[]): Promise<void> {
    // Serialise every batch before sending any, so invalid input changes nothing.
    const requests = batches(peers, this.batchSize).map(serializeSetPeers);
    return this.enqueue(() => this.sendAll(requests));
  }

  async removePeers(publicKeys: readonly string[]): Promise<void> {
    const requests = batches(publicKeys, this.batchSize).map(serializeRemovePeers);
    return this.enqueue(() => this.sendAll(requests));
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.queue.catch(() => undefined);
  }

  private enqueue<T>(task: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new DeviceError('io', `device ${this.name} is closed`));
    const run = this.queue.then(task, task);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private request(request: string): Promise<string> {
    return exchange(this.socketPath, request, this.timeoutMs);
  }

  private async readDevice(): Promise<DeviceInfo> {
    const text = await this.request(GET_REQUEST);
    const parsed = parseGetReply(this.name, text);
    if (!parsed.ok) {
      const errno = parseReply(text);
      if (errno.ok && errno.errno !== 0) {
        throw new DeviceError('rejected', `${this.name}: get answered errno=${errno.errno}`, errno.errno);
      }
      throw new DeviceError('protocol', `${this.name}: unparseable get reply: ${parsed.error}`);
    }
    return parsed.device;
  }

  private async sendAll(requests: string[]): Promise<void> {
    for (const [i, request] of requests.entries()) {
      const reply = parseReply(await this.request(request));
      if (!reply.ok) throw new DeviceError('protocol', `${this.name}: unparseable set reply: ${reply.error}`);
      if (reply.errno !== 0) {
        const where = requests.length > 1 ? ` (batch ${i + 1} of ${requests.length}; earlier batches were applied)` : '';
        throw new DeviceError('rejected', `${this.name}: set rejected with errno=${reply.errno}${where}`, reply.errno);
      }
    }
  }
}
