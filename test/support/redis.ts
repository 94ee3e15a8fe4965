/**
 * Real, throwaway Redis for tests, all on 127.0.0.1 with free ports and no
 * persistence:
 * - `startRedis()`: one redis-server. `startRedis({ port })` starts one on a
 *   given port again (to test reconnects after an outage).
 * - `startSentinelSet()`: a primary, its replica and three sentinels.
 * - `startCluster()`: three primaries, with or without a replica each.
 * - `startUnformedCluster()`: Cluster nodes never formed into one.
 * Every process dies with the test process. The sets keep their files in a
 * temporary directory that stop() removes.
 *
 * A set or a cluster can run in a network namespace instead (`netns`), for a
 * daemon that runs there: the addresses they return (and the ones Sentinel
 * and Cluster hand out) are then that namespace's 127.0.0.1, and the test
 * process, outside it, reaches each server through a UNIX socket in the
 * set's directory (a socket's path is the same in every namespace).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';

export interface TestRedis {
  url: string;
  port: number;
  stop(): Promise<void>;
}

export interface Address {
  host: string;
  port: number;
}

/** Where the test process reaches a server: a TCP port on loopback, or a UNIX socket. */
type Dial = number | { path: string };

const connectOptions = (dial: Dial) => (typeof dial === 'number' ? { host: LOOPBACK, port: dial } : { path: dial.path });

const LOOPBACK = '127.0.0.1';
const READY_TIMEOUT_MS = 10_000;
const STOP_GRACE_MS = 3_000;
const START_ATTEMPTS = 3;
/** How often a wait below asks again. */
const POLL_INTERVAL_MS = 100;
/** Connecting for, and answering, one admin command (INFO, SENTINEL, CLUSTER). */
const COMMAND_TIMEOUT_MS = 2_000;

const hasSetpriv = existsSync('/usr/bin/setpriv') || existsSync('/bin/setpriv');

// If the test process dies without calling stop(), do not leave servers or
// their files behind.
const live = new Set<ChildProcess>();
const liveDirs = new Set<string>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
  for (const dir of liveDirs) rmSync(dir, { recursive: true, force: true });
});

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, LOOPBACK, () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/**
 * Asks `probe` every POLL_INTERVAL_MS until it returns something other than
 * undefined. A probe that throws counts as "not yet"; its message is kept.
 * Fails after `timeoutMs`, naming what it waited for and the last thing seen,
 * also when a probe is still unanswered then (a client command that hangs).
 */
export async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  for (;;) {
    try {
      const value = await withDeadline(probe(), deadline);
      if (value !== undefined) return value;
      last = 'not yet';
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${last})`);
    await sleep(POLL_INTERVAL_MS);
  }
}

/** `promise`, or a rejection once `deadline` (ms since the epoch) has passed. */
async function withDeadline<T>(promise: Promise<T>, deadline: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('the last probe was still unanswered')), Math.max(0, deadline - Date.now()));
  });
  try {
    return await Promise.race([promise, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/** One command to one process (its port on loopback, or its socket) over a connection of its own; throws on any failure, never retries. */
export async function redisCommand(dial: Dial, command: string, ...args: (string | number)[]): Promise<unknown> {
  const conn = new Redis({
    ...connectOptions(dial),
    lazyConnect: true,
    connectTimeout: COMMAND_TIMEOUT_MS,
    commandTimeout: COMMAND_TIMEOUT_MS,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    enableReadyCheck: false,
  });
  conn.on('error', () => {}); // the rejected promise below carries it
  try {
    await conn.connect();
    return await conn.call(command, ...args);
  } finally {
    conn.disconnect();
  }
}

/** `INFO section` as field → value. */
async function info(dial: Dial, section: string): Promise<Map<string, string>> {
  const fields = new Map<string, string>();
  for (const line of String(await redisCommand(dial, 'INFO', section)).split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0 && !line.startsWith('#')) fields.set(line.slice(0, colon), line.slice(colon + 1));
  }
  return fields;
}

// ---------------------------------------------------------------------------
// One process

function pingOnce(dial: Dial): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(connectOptions(dial));
    let reply = '';
    const finish = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => finish(false));
    socket.on('error', () => finish(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (d) => {
      reply += d.toString();
      if (reply.includes('\r\n')) finish(reply.startsWith('+PONG'));
    });
  });
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** Waits until `child` (listening on `port`) answers PING through `dial` and is the process that answers. */
async function waitUntilServing(child: ChildProcess, label: string, port: number, dial: Dial, spawnFailure: () => string | null, output: () => string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (!(await pingOnce(dial))) {
    const failure = spawnFailure();
    if (failure) throw new Error(failure);
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${label} on port ${port} exited: ${output()}`);
    if (Date.now() > deadline) throw new Error(`${label} on port ${port} did not answer PING within ${READY_TIMEOUT_MS} ms: ${output()}`);
    await sleep(50);
  }
  // Another run's server may have taken the port between our probe and this
  // start, and answered the PING; ours then exits with "Address in use".
  const pid = (await info(dial, 'server')).get('process_id');
  if (pid !== String(child.pid)) throw new Error(`${label} on port ${port}: the port is held by another process (pid ${pid}): ${output()}`);
}

/** A redis-server (data node or sentinel) this module started. */
interface ServerProcess {
  readonly port: number;
  /** How the test process reaches it. */
  readonly dial: Dial;
  running(): boolean;
  /** Sends `signal` and waits until the process is gone. */
  kill(signal: NodeJS.Signals): Promise<void>;
  /** SIGTERM, then SIGKILL after STOP_GRACE_MS. */
  stop(): Promise<void>;
}

/** A network namespace to run a server in, and the directory for its UNIX socket. */
interface InNamespace {
  netns: string;
  dir: string;
}

async function spawnServer(label: string, port: number, args: string[], inNs?: InNamespace): Promise<ServerProcess> {
  const socket = inNs && path.join(inNs.dir, 'redis.sock');
  const argv = ['redis-server', ...args, ...(socket ? ['--unixsocket', socket, '--unixsocketperm', '700'] : [])];
  // setpriv --pdeathsig: the kernel kills the server when the test process
  // dies in a way that runs no handler (a killed vitest worker). setpriv
  // and `ip netns exec` exec what follows, so the child's pid is the server's.
  const command = [...(inNs ? ['ip', 'netns', 'exec', inNs.netns] : []), ...(hasSetpriv ? ['setpriv', '--pdeathsig', 'KILL', '--'] : []), ...argv];
  const child = spawn(command[0]!, command.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  const dial: Dial = socket ? { path: socket } : port;
  live.add(child);
  child.once('exit', () => live.delete(child));
  let output = '';
  const keep = (d: Buffer) => {
    output = (output + d.toString()).slice(-4000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  let spawnError: Error | null = null;
  child.on('error', (err) => {
    spawnError = err;
  });
  const running = () => child.exitCode === null && child.signalCode === null;

  try {
    await waitUntilServing(child, label, port, dial, () => (spawnError ? `cannot run ${command[0]}: ${spawnError.message}` : null), () => output.trim());
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }

  const kill = async (signal: NodeJS.Signals) => {
    if (!running()) return;
    child.kill(signal);
    await exited(child);
  };
  return {
    port,
    dial,
    running,
    kill,
    async stop() {
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
      await kill('SIGTERM');
      clearTimeout(timer);
    },
  };
}

/** Runs `start` on a free port, again on another if the port was taken meanwhile. */
async function onFreePort<T>(start: (port: number) => Promise<T>): Promise<T> {
  let lastError: unknown;
  for (let i = 0; i < START_ATTEMPTS; i++) {
    try {
      return await start(await freePort());
    } catch (err) {
      lastError = err;
    }
  }
  throw lastError;
}

function dataNodeArgs(port: number, dir: string): string[] {
  return [
    '--port', String(port), '--bind', LOOPBACK, '--save', '', '--appendonly', 'no', '--dir', dir, '--loglevel', 'warning',
    // A primary waits this long (default 5 s) for more replicas to share a
    // full sync; our sets have one replica per primary, so start at once.
    '--repl-diskless-sync-delay', '0',
  ];
}

async function startOn(port: number): Promise<TestRedis> {
  const server = await spawnServer('redis-server', port, dataNodeArgs(port, os.tmpdir()));
  return { url: `redis://${LOOPBACK}:${port}`, port, stop: () => server.stop() };
}

export async function startRedis(opts: { port?: number } = {}): Promise<TestRedis> {
  if (opts.port !== undefined) return startOn(opts.port);
  return onFreePort(startOn);
}

/** The processes of one topology and the temporary directory they keep their files in. */
class ProcessGroup {
  readonly dir: string;
  private readonly members: ServerProcess[] = [];

  constructor(
    prefix: string,
    private readonly netns?: string,
  ) {
    this.dir = mkdtempSync(path.join(os.tmpdir(), prefix));
    liveDirs.add(this.dir);
  }

  /** Starts a redis-server on a free port; `argsFor` gets the port and a directory for that process alone. */
  async start(label: string, argsFor: (port: number, dir: string) => string[]): Promise<ServerProcess> {
    const server = await onFreePort((port) => {
      const dir = path.join(this.dir, `${label}-${port}`);
      mkdirSync(dir, { recursive: true });
      return spawnServer(label, port, argsFor(port, dir), this.netns === undefined ? undefined : { netns: this.netns, dir });
    });
    this.members.push(server);
    return server;
  }

  /** The member listening on `port` (an address a sentinel or a node named). */
  at(port: number): ServerProcess {
    const member = this.members.find((m) => m.port === port);
    if (!member) throw new Error(`port ${port} is not a node of this set`);
    return member;
  }

  async stop(): Promise<void> {
    await Promise.all(this.members.map((m) => m.stop()));
    rmSync(this.dir, { recursive: true, force: true });
    liveDirs.delete(this.dir);
  }
}

const at = (server: ServerProcess): Address => ({ host: LOOPBACK, port: server.port });

/** How long a new replica may take to connect to its primary and finish its first sync. */
const REPLICA_SYNC_TIMEOUT_MS = 10_000;

async function waitForReplicaLink(replica: ServerProcess, primary: ServerProcess): Promise<void> {
  await waitFor(`replica ${replica.port} to sync with primary ${primary.port}`, REPLICA_SYNC_TIMEOUT_MS, async () => {
    const fields = await info(replica.dial, 'replication');
    return fields.get('master_port') === String(primary.port) && fields.get('master_link_status') === 'up' ? true : undefined;
  });
}

// ---------------------------------------------------------------------------
// Sentinel: one primary, one replica (or more), three sentinels

export const SENTINEL_MASTER_NAME = 'wgjit-test';
const SENTINEL_COUNT = 3;
const SENTINEL_QUORUM = 2;
/**
 * How long a primary may stay silent before a sentinel calls it down
 * (Sentinel's default is 30 s). 1 s keeps a failover test to seconds; not
 * less, because this two-core machine also runs TCG VMs and other test runs,
 * which can stall a healthy process for a few hundred milliseconds, and a
 * false failover would make tests that kill nothing flaky.
 */
const SENTINEL_DOWN_AFTER_MS = 1_000;
/**
 * Sentinel's failover-timeout (default 3 min): an election or a promotion
 * not finished by then is abandoned, and the next attempt waits twice this.
 * Three sentinels can split their votes; 5 s brings the retry 10 s later,
 * not 6 min later, and still leaves a promotion on loopback (about a second:
 * sentinels ask the replica for INFO every second during a failover) ample
 * room to finish.
 */
const SENTINEL_FAILOVER_TIMEOUT_MS = 5_000;
/** Sentinels learn the replica from the primary's INFO (sent at once) and each other from hello messages (every 2 s). */
const SENTINEL_DISCOVERY_TIMEOUT_MS = 15_000;
/** down-after, agreement and election, with room for one split vote and its retry after 2 × failover-timeout. */
const SENTINEL_PROMOTION_TIMEOUT_MS = 30_000;

export interface SentinelSet {
  /** For ioredis: `new Redis({ sentinels, name: masterName })`. */
  sentinels: Address[];
  masterName: string;
  /** The data nodes as started; `replica` is the first of `replicas`. */
  primary: Address;
  replica: Address;
  replicas: Address[];
  /** The primary every sentinel names now; throws if they disagree or one does not answer. */
  currentPrimary(): Promise<Address>;
  /** SIGKILLs the data node the sentinels name as primary now; returns its address. */
  killPrimary(): Promise<Address>;
  /** Waits until every sentinel names a primary other than `killed` and that node says it is a master. */
  waitForNewPrimary(killed: Address): Promise<Address>;
  stop(): Promise<void>;
}

/**
 * Sentinels are `redis-server CONF --sentinel`: the same Debian binary in its
 * sentinel mode. Debian's redis-sentinel package adds only a link to it and
 * a system service that starts a sentinel of its own on 26379, which tests
 * do not want. Each sentinel gets its own config file because it rewrites it.
 */
function sentinelArgs(port: number, dir: string, primaryPort: number): string[] {
  const name = SENTINEL_MASTER_NAME;
  const conf = path.join(dir, 'sentinel.conf');
  writeFileSync(
    conf,
    [
      `port ${port}`,
      `bind ${LOOPBACK}`,
      `dir ${dir}`,
      'loglevel warning',
      `sentinel monitor ${name} ${LOOPBACK} ${primaryPort} ${SENTINEL_QUORUM}`,
      `sentinel down-after-milliseconds ${name} ${SENTINEL_DOWN_AFTER_MS}`,
      `sentinel failover-timeout ${name} ${SENTINEL_FAILOVER_TIMEOUT_MS}`,
      '',
    ].join('\n'),
  );
  return [conf, '--sentinel'];
}

/** `SENTINEL MASTER name` as field → value. */
async function sentinelView(sentinel: ServerProcess): Promise<Map<string, string>> {
  const flat = (await redisCommand(sentinel.dial, 'SENTINEL', 'MASTER', SENTINEL_MASTER_NAME)) as string[];
  const fields = new Map<string, string>();
  for (let i = 0; i + 1 < flat.length; i += 2) fields.set(flat[i]!, flat[i + 1]!);
  return fields;
}

/** A failover needs every sentinel to know the replicas and the other sentinels. */
async function waitForSentinelView(sentinel: ServerProcess, replicas: number): Promise<void> {
  const others = String(SENTINEL_COUNT - 1);
  await waitFor(`sentinel ${sentinel.port} to see the primary, its ${replicas} replica(s) and ${others} other sentinels`, SENTINEL_DISCOVERY_TIMEOUT_MS, async () => {
    const view = await sentinelView(sentinel);
    const seen = `flags=${view.get('flags')} num-slaves=${view.get('num-slaves')} num-other-sentinels=${view.get('num-other-sentinels')}`;
    if (view.get('flags') === 'master' && view.get('num-slaves') === String(replicas) && view.get('num-other-sentinels') === others) return true;
    throw new Error(seen);
  });
}

async function primaryNamedBy(sentinel: ServerProcess): Promise<Address> {
  const reply = (await redisCommand(sentinel.dial, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', SENTINEL_MASTER_NAME)) as [string, string] | null;
  if (!reply) throw new Error(`sentinel ${sentinel.port} does not know ${SENTINEL_MASTER_NAME}`);
  return { host: reply[0], port: Number(reply[1]) };
}

async function agreedPrimary(sentinels: ServerProcess[]): Promise<Address> {
  const named = await Promise.all(sentinels.map(primaryNamedBy));
  const ports = new Set(named.map((a) => a.port));
  if (ports.size !== 1) throw new Error(`sentinels disagree on the primary: ports ${named.map((a) => a.port).join(', ')}`);
  return named[0]!;
}

async function isMaster(node: ServerProcess): Promise<boolean> {
  const role = (await redisCommand(node.dial, 'ROLE')) as unknown[];
  return role[0] === 'master';
}

/**
 * `replicas`: 1 (default), or 2 so that after one failover the new primary
 * still has a replica (what a write that waits for one needs).
 */
export async function startSentinelSet(opts: { replicas?: 1 | 2; netns?: string } = {}): Promise<SentinelSet> {
  const group = new ProcessGroup('wgjit-sentinel-', opts.netns);
  try {
    const primary = await group.start('primary', dataNodeArgs);
    const startReplica = () => group.start('replica', (port, dir) => [...dataNodeArgs(port, dir), '--replicaof', LOOPBACK, String(primary.port)]);
    const replicas: [ServerProcess, ...ServerProcess[]] = [await startReplica()];
    while (replicas.length < (opts.replicas ?? 1)) replicas.push(await startReplica());
    for (const replica of replicas) await waitForReplicaLink(replica, primary);
    const sentinels: ServerProcess[] = [];
    for (let i = 0; i < SENTINEL_COUNT; i++) {
      sentinels.push(await group.start('sentinel', (port, dir) => sentinelArgs(port, dir, primary.port)));
    }
    await Promise.all(sentinels.map((s) => waitForSentinelView(s, replicas.length)));
    return sentinelSetHandle(group, [primary, ...replicas], sentinels);
  } catch (err) {
    await group.stop();
    throw err;
  }
}

function sentinelSetHandle(group: ProcessGroup, dataNodes: [ServerProcess, ServerProcess, ...ServerProcess[]], sentinels: ServerProcess[]): SentinelSet {
  const currentPrimary = () => agreedPrimary(sentinels);
  return {
    sentinels: sentinels.map(at),
    masterName: SENTINEL_MASTER_NAME,
    primary: at(dataNodes[0]),
    replica: at(dataNodes[1]),
    replicas: dataNodes.slice(1).map(at),
    currentPrimary,
    async killPrimary() {
      const named = await currentPrimary();
      await group.at(named.port).kill('SIGKILL');
      return named;
    },
    waitForNewPrimary(killed) {
      const what = `every sentinel to name a primary other than ${killed.host}:${killed.port}, and that node to be a master`;
      return waitFor(what, SENTINEL_PROMOTION_TIMEOUT_MS, async () => {
        const named = await currentPrimary();
        if (named.port === killed.port) throw new Error(`sentinels still name ${killed.host}:${killed.port}`);
        if (!(await isMaster(group.at(named.port)))) throw new Error(`${named.host}:${named.port} is named but is not a master yet`);
        return named;
      });
    },
    stop: () => group.stop(),
  };
}

// ---------------------------------------------------------------------------
// Cluster: three primaries, with or without a replica each

const CLUSTER_SLOT_COUNT = 16384;
/**
 * cluster-node-timeout (default 15 s): how long a node may be unreachable
 * before it is flagged as failing. A replica asks for votes within about a
 * second of the FAIL flag (500 ms + a random 0–500 ms + 1 s per rank). 1 s,
 * for the same reasons as SENTINEL_DOWN_AFTER_MS.
 */
const CLUSTER_NODE_TIMEOUT_MS = 1_000;
/** Meeting, gossip until every node knows every other, replicas syncing; a master waits 2 s after start before it says ok. */
const CLUSTER_FORM_TIMEOUT_MS = 20_000;
/** Node timeout, FAIL agreement, the replica's delay and its vote, with room for a second election. */
const CLUSTER_PROMOTION_TIMEOUT_MS = 30_000;

export interface ClusterShard {
  primary: Address;
  replicas: Address[];
  /** The slots it serves, first and last inclusive. */
  slots: [first: number, last: number];
}

export interface TestCluster {
  /** Every node, as startup nodes for `new Redis.Cluster(nodes)`. */
  nodes: Address[];
  /** The shards as formed; shard i's primary is the i-th node. */
  shards: ClusterShard[];
  /** The shard (as formed) whose slots hold `key`. */
  shardOf(key: string): Promise<number>;
  /** Waits until every live replica has processed all its primary had when this was called. */
  waitForReplication(): Promise<void>;
  /** SIGKILLs the primary shard `shard` was formed with; returns its address. */
  killPrimary(shard: number): Promise<Address>;
  /** Waits until a replica of `shard` is a master and every live node says so and says cluster_state:ok. */
  waitForPromotion(shard: number): Promise<Address>;
  stop(): Promise<void>;
}

function clusterNodeArgs(port: number, dir: string): string[] {
  return [
    ...dataNodeArgs(port, dir),
    '--cluster-enabled', 'yes',
    '--cluster-config-file', path.join(dir, 'nodes.conf'),
    '--cluster-node-timeout', String(CLUSTER_NODE_TIMEOUT_MS),
    // Every node says 127.0.0.1 in CLUSTER SLOTS, the address clients use.
    '--cluster-announce-ip', LOOPBACK,
  ];
}

function slotRange(shard: number, shards: number): [number, number] {
  const first = Math.floor((shard * CLUSTER_SLOT_COUNT) / shards);
  const last = Math.floor(((shard + 1) * CLUSTER_SLOT_COUNT) / shards) - 1;
  return [first, last];
}

async function clusterInfo(node: ServerProcess): Promise<Map<string, string>> {
  const fields = new Map<string, string>();
  for (const line of String(await redisCommand(node.dial, 'CLUSTER', 'INFO')).split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) fields.set(line.slice(0, colon), line.slice(colon + 1));
  }
  return fields;
}

/** cluster_state:ok with every slot served, on every node in `nodes`. */
async function clusterOkOn(nodes: ServerProcess[], knownNodes: number): Promise<true | undefined> {
  for (const node of nodes) {
    const fields = await clusterInfo(node);
    const seen = `${node.port}: cluster_state:${fields.get('cluster_state')} slots_ok:${fields.get('cluster_slots_ok')} known_nodes:${fields.get('cluster_known_nodes')}`;
    const ok = fields.get('cluster_state') === 'ok' && fields.get('cluster_slots_ok') === String(CLUSTER_SLOT_COUNT) && fields.get('cluster_known_nodes') === String(knownNodes);
    if (!ok) throw new Error(seen);
  }
  return true;
}

/**
 * Forms the cluster by hand rather than with `redis-cli --cluster create`,
 * so that which replica follows which primary is ours to say: slots and a
 * distinct config epoch on each primary (as redis-cli does, so nodes need
 * not settle epoch collisions), MEET, then CLUSTER REPLICATE.
 */
async function formCluster(primaries: ServerProcess[], replicasOf: ServerProcess[][]): Promise<void> {
  const all = [...primaries, ...replicasOf.flat()];
  for (const [i, primary] of primaries.entries()) {
    await redisCommand(primary.dial, 'CLUSTER', 'SET-CONFIG-EPOCH', i + 1);
    await redisCommand(primary.dial, 'CLUSTER', 'ADDSLOTSRANGE', ...slotRange(i, primaries.length));
  }
  for (const node of all.slice(1)) await redisCommand(all[0]!.dial, 'CLUSTER', 'MEET', LOOPBACK, node.port);
  await waitFor(`all ${all.length} cluster nodes to know each other`, CLUSTER_FORM_TIMEOUT_MS, async () => {
    for (const node of all) {
      const lines = String(await redisCommand(node.dial, 'CLUSTER', 'NODES')).trim().split('\n');
      if (lines.length !== all.length || lines.some((l) => l.includes('handshake'))) throw new Error(`${node.port} knows ${lines.length}`);
    }
    return true;
  });
  for (const [i, replicas] of replicasOf.entries()) {
    const id = String(await redisCommand(primaries[i]!.dial, 'CLUSTER', 'MYID'));
    for (const replica of replicas) await redisCommand(replica.dial, 'CLUSTER', 'REPLICATE', id);
  }
  for (const [i, replicas] of replicasOf.entries()) {
    for (const replica of replicas) await waitForReplicaLink(replica, primaries[i]!);
  }
  await waitFor(`cluster_state:ok on all ${all.length} nodes`, CLUSTER_FORM_TIMEOUT_MS, () => clusterOkOn(all, all.length));
}

export async function startCluster(opts: { primaries: 3; replicasPerPrimary: 0 | 1; netns?: string }): Promise<TestCluster> {
  const group = new ProcessGroup('wgjit-cluster-', opts.netns);
  try {
    const primaries: ServerProcess[] = [];
    for (let i = 0; i < opts.primaries; i++) primaries.push(await group.start('primary', clusterNodeArgs));
    const replicasOf: ServerProcess[][] = [];
    for (let i = 0; i < opts.primaries; i++) {
      const replicas: ServerProcess[] = [];
      for (let j = 0; j < opts.replicasPerPrimary; j++) replicas.push(await group.start('replica', clusterNodeArgs));
      replicasOf.push(replicas);
    }
    await formCluster(primaries, replicasOf);
    return clusterHandle(group, primaries, replicasOf);
  } catch (err) {
    await group.stop();
    throw err;
  }
}

/** Cluster nodes that were never formed into a Cluster (no slots, never met), for the "not formed yet" case. */
export interface UnformedCluster {
  nodes: Address[];
  /** DBSIZE of every node, in order. */
  keyCounts(): Promise<number[]>;
  stop(): Promise<void>;
}

/** `count` redis-servers with cluster-enabled, each alone: CLUSTER INFO says cluster_state:fail, no slot assigned. */
export async function startUnformedCluster(opts: { nodes: number; netns?: string }): Promise<UnformedCluster> {
  const group = new ProcessGroup('wgjit-unformed-', opts.netns);
  try {
    const nodes: ServerProcess[] = [];
    for (let i = 0; i < opts.nodes; i++) nodes.push(await group.start('node', clusterNodeArgs));
    return {
      nodes: nodes.map(at),
      keyCounts: () => Promise.all(nodes.map(async (n) => Number(await redisCommand(n.dial, 'DBSIZE')))),
      stop: () => group.stop(),
    };
  } catch (err) {
    await group.stop();
    throw err;
  }
}

/** Whether CLUSTER SLOTS on `node` says `slots` are served by the master on `masterPort`. */
async function servesSlots(node: ServerProcess, slots: [number, number], masterPort: number): Promise<boolean> {
  const ranges = (await redisCommand(node.dial, 'CLUSTER', 'SLOTS')) as [number, number, [string, number, ...unknown[]], ...unknown[]][];
  return ranges.some(([first, last, master]) => first === slots[0] && last === slots[1] && master[1] === masterPort);
}

function clusterHandle(group: ProcessGroup, primaries: ServerProcess[], replicasOf: ServerProcess[][]): TestCluster {
  const all = [...primaries, ...replicasOf.flat()];
  const shards = primaries.map((p, i) => ({ primary: at(p), replicas: replicasOf[i]!.map(at), slots: slotRange(i, primaries.length) }));
  const shardAt = (shard: number) => {
    if (!shards[shard]) throw new Error(`no shard ${shard}: the cluster has ${shards.length}`);
    return shards[shard]!;
  };
  return {
    nodes: all.map(at),
    shards,
    async waitForReplication() {
      for (const [i, replicas] of replicasOf.entries()) {
        if (!primaries[i]!.running()) continue;
        const target = Number((await info(primaries[i]!.dial, 'replication')).get('master_repl_offset'));
        for (const replica of replicas.filter((r) => r.running())) {
          await waitFor(`replica ${replica.port} to reach offset ${target} of primary ${primaries[i]!.port}`, REPLICA_SYNC_TIMEOUT_MS, async () => {
            const offset = Number((await info(replica.dial, 'replication')).get('slave_repl_offset'));
            if (offset >= target) return true;
            throw new Error(`offset ${offset}`);
          });
        }
      }
    },
    async shardOf(key) {
      const node = all.find((n) => n.running());
      if (!node) throw new Error('no cluster node is running');
      const slot = Number(await redisCommand(node.dial, 'CLUSTER', 'KEYSLOT', key));
      return shards.findIndex(({ slots: [first, last] }) => slot >= first && slot <= last);
    },
    async killPrimary(shard) {
      const { primary } = shardAt(shard);
      await primaries[shard]!.kill('SIGKILL');
      return primary;
    },
    waitForPromotion(shard) {
      const { primary, slots } = shardAt(shard);
      const replicas = replicasOf[shard]!;
      if (replicas.length === 0) return Promise.reject(new Error(`shard ${shard} has no replica to promote (startCluster with replicasPerPrimary: 1)`));
      const live = () => all.filter((n) => n.running());
      const what = `a replica of shard ${shard} (primary ${primary.port} killed) to be promoted, and every live node to say so and cluster_state:ok`;
      return waitFor(what, CLUSTER_PROMOTION_TIMEOUT_MS, async () => {
        const promoted = await firstMaster(replicas);
        if (!promoted) throw new Error(`no replica of shard ${shard} is a master yet`);
        for (const node of live()) {
          if (!(await servesSlots(node, slots, promoted.port))) throw new Error(`node ${node.port} does not yet map slots ${slots.join('-')} to ${promoted.port}`);
        }
        await clusterOkOn(live(), all.length);
        return at(promoted);
      });
    },
    stop: () => group.stop(),
  };
}

async function firstMaster(candidates: ServerProcess[]): Promise<ServerProcess | undefined> {
  for (const candidate of candidates) if (await isMaster(candidate)) return candidate;
  return undefined;
}
