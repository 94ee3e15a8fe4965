/**
 * WireGuardDevice over the cross-platform userspace API: the UNIX stream
 * socket `<dir>/<ifname>.sock` that wireguard-go (and boringtun) serve.
 *
 * One connection, kept open and reused; after a rejected `set` wireguard-go
 * reads the rest of that request's lines as new operations and hangs up, so
 * any failure or rejection drops the connection and the next request opens
 * a fresh one. Requests run one at a time per device, in call order.
 */
import { connect, type Socket } from 'node:net';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { SerialQueue } from './serial.js';
import { isValidIfname } from '../net/ifname.js';
import { DeviceError, type DeviceInfo, type PeerConfig, type PeerStatus, type WireGuardDevice } from './device.js';
import type { PublicKey } from '../handshake/keys.js';
import {
  batches,
  GET_REQUEST,
  isCompleteReply,
  parseGetReply,
  parseReply,
  REPLY_END,
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

/**
 * One connection to the device, kept open between requests: a fresh
 * connection per request costs the device an accept and a new goroutine,
 * about half a millisecond on the admission path. Any failure, and any
 * rejected request (after which wireguard-go misreads the rest of the
 * stream), closes it; the next request opens a new one.
 */
class Connection {
  private socket: Socket | null = null;
  private pending: { resolve: (reply: string) => void; reject: (err: DeviceError) => void; chunks: Buffer[]; tail: string } | null = null;

  constructor(private readonly path: string) {}

  /** Sends one request and resolves with the whole reply text. One at a time. */
  exchange(request: string, timeoutMs: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.fail(new DeviceError('io', `userspace API ${this.path}: no complete reply within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending = {
        resolve: (reply) => {
          clearTimeout(timer);
          resolve(reply);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
        chunks: [],
        tail: '',
      };
      this.open().write(request);
    });
  }

  /** Drops the connection; the next request reconnects. */
  reset(): void {
    this.socket?.destroy();
    this.socket = null;
  }

  private open(): Socket {
    if (this.socket !== null) return this.socket;
    const socket = connect({ path: this.path });
    // Kept as bytes and decoded once: a dump of 100,000 peers is over 30 MB,
    // and as strings its chunks would be copied by every young-generation GC
    // until the reply is complete.
    socket.on('data', (chunk: Buffer) => {
      const p = this.pending;
      if (p === null) return;
      p.chunks.push(chunk);
      // The reply ends at its only blank line; look across the chunk boundary.
      p.tail = (p.tail + chunk.toString('latin1', Math.max(0, chunk.length - REPLY_END.length))).slice(-REPLY_END.length);
      if (isCompleteReply(p.tail)) {
        this.pending = null;
        p.resolve(Buffer.concat(p.chunks).toString('utf8'));
      }
    });
    socket.on('error', (err) => this.fail(errorFromSocket(err, this.path), socket));
    socket.on('close', () =>
      this.fail(new DeviceError('io', `userspace API ${this.path}: connection closed before the reply was complete`), socket),
    );
    this.socket = socket;
    return socket;
  }

  private fail(err: DeviceError, socket: Socket | null = this.socket): void {
    if (socket !== this.socket) return;
    this.reset();
    const p = this.pending;
    this.pending = null;
    p?.reject(err);
  }
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
  private readonly queue = new SerialQueue();
  private closed = false;
  private readonly connection: Connection;

  private constructor(
    readonly name: string,
    readonly socketPath: string,
    private readonly batchSize: number,
    readonly timeoutMs: number,
  ) {
    this.connection = new Connection(socketPath);
  }

  /** Opens the device; fails with DeviceError('no_device') if nothing serves its socket. */
  static async open(name: string, opts: UapiOptions = {}): Promise<UapiDevice> {
    // Also keeps the name from walking out of the socket dir.
    if (!isValidIfname(name)) throw new DeviceError('no_device', `invalid interface name ${JSON.stringify(name)}`);
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

  async removePeers(publicKeys: readonly PublicKey[]): Promise<void> {
    const requests = batches(publicKeys, this.batchSize).map(serializeRemovePeers);
    return this.enqueue(() => this.sendAll(requests));
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.queue.idle();
    this.connection.reset();
  }

  private enqueue<T>(task: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new DeviceError('io', `device ${this.name} is closed`));
    return this.queue.run(task);
  }

  /**
   * Every request wgjit sends is idempotent (sets name the full peer state,
   * removals of absent peers are no-ops), so a reused connection that the
   * device had closed while idle is retried once on a fresh one.
   */
  private async request(request: string): Promise<string> {
    try {
      return await this.connection.exchange(request, this.timeoutMs);
    } catch (err) {
      if (!(err instanceof DeviceError) || err.code !== 'io' || err.message.includes('no complete reply')) throw err;
      return this.connection.exchange(request, this.timeoutMs);
    }
  }

  private async readDevice(): Promise<DeviceInfo> {
    const text = await this.request(GET_REQUEST);
    const parsed = parseGetReply(this.name, text);
    if (!parsed.ok) {
      this.connection.reset();
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
      if (!reply.ok) {
        this.connection.reset();
        throw new DeviceError('protocol', `${this.name}: unparseable set reply: ${reply.error}`);
      }
      if (reply.errno !== 0) {
        this.connection.reset();
        const where = requests.length > 1 ? ` (batch ${i + 1} of ${requests.length}; earlier batches were applied)` : '';
        throw new DeviceError('rejected', `${this.name}: set rejected with errno=${reply.errno}${where}`, reply.errno);
      }
    }
  }
}
