/**
 * Issue 13's "bad input" line, for the store: a Sentinel list that never
 * answers and a Cluster that is not formed yet, through PeerStore and
 * through what operators run (bin/wgjit api, store migrate, peer import,
 * run). Each says what is wrong in one line, writes nothing and never
 * hangs: `run` and `api` serve (503, /readyz not ready) and keep retrying,
 * the one-shot commands exit 1. (A bad URL: cli.test.ts; a broken import
 * line: peer-import.test.ts.)
 *
 *   sentinels  127.0.0.1:<nothing listens>, 127.0.0.1:<nothing listens>,
 *              127.0.0.1:<accepts, never answers>          master "wgjit-nowhere"
 *   cluster    3 × redis-server --cluster-enabled yes, never met, no slot assigned
 *              (for `wgjit run`: in the gateway namespace of a testbed)
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PeerStore, REDIS_COMMAND_TIMEOUT_MS, StoreUnavailableError } from '../../src/authorize/store.js';
import { validateCreate } from '../../src/authorize/peer.js';
import { formatKey, publicKeyOf } from '../../src/handshake/keys.js';
import { createLogger } from '../../src/telemetry/log.js';
import { generatePrivateKey } from '../../harness/noise/keys.js';
import { startStack, type Stack } from '../../harness/testbed/stack.js';
import { createTestbed, type Testbed } from '../../harness/testbed/topology.js';
import { freePort, startUnformedCluster, waitFor, type Address, type UnformedCluster } from '../support/redis.js';
import { BIN, wgjit, type Run } from '../support/wgjit.js';

const TOKEN = 'bad-input-test-token-0123456789';
const MASTER = 'wgjit-nowhere';
/** Generous bounds for things that happen within seconds: never asserted, only waited for. */
const LOG_WAIT_MS = 15_000;
const spell = (a: Address) => `${a.host}:${a.port}`;
const newKey = () => formatKey(publicKeyOf(generatePrivateKey()));
const peer = () => ({ publicKey: newKey(), allowedIPs: ['10.8.0.2/32'] });

interface LogLine {
  level: string;
  msg: string;
  err?: string;
  component?: string;
}

/** A logger whose lines land in `lines`, parsed. */
function capturingLogger(lines: LogLine[]) {
  return createLogger('info', { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) });
}

/** The store's "unreachable" warning whose text has every one of `parts`. */
function warningWith(lines: LogLine[], parts: string[]): Promise<LogLine> {
  return waitFor(`a store warning naming ${parts.join(', ')}`, LOG_WAIT_MS, async () =>
    lines.find((l) => l.level === 'warn' && l.component === 'store' && l.msg === 'peer store unreachable' && parts.every((p) => l.err?.includes(p) === true)),
  );
}

/** `bin/wgjit api` on a free port, once it says it listens; its log lines as they come. */
async function startApi(redisUrl: string, tokenFile: string) {
  const child = spawn(BIN, ['api', '--redis', redisUrl, '--api-listen', '127.0.0.1:0', '--api-token-file', tokenFile], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: Array<LogLine & { listen?: string }> = [];
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  createInterface({ input: child.stdout! }).on('line', (line) => lines.push(JSON.parse(line) as LogLine));
  const listen = await waitFor('wgjit api to listen', LOG_WAIT_MS, async () => {
    if (child.exitCode !== null) throw new Error(`wgjit api exited (${child.exitCode}): ${stderr}`);
    return lines.find((l) => l.msg.startsWith('API listening'))?.listen;
  });
  const call = async (method: string, route: string, body?: unknown) => {
    const res = await fetch(`http://${listen}${route}`, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, ...(body !== undefined && { 'content-type': 'application/json' }) },
      ...(body !== undefined && { body: JSON.stringify(body) }),
    });
    return { status: res.status, body: (await res.json()) as unknown };
  };
  return {
    url: `http://${listen}`,
    lines,
    stderr: () => stderr,
    call,
    stop: async () => {
      child.kill('SIGTERM');
      return exited;
    },
  };
}

/** A failure of a one-shot command: one line on stderr, nothing on stdout. */
function expectOneLineFailure(run: Run, message: RegExp): void {
  expect(run.code, run.stderr).toBe(1);
  expect(run.stdout).toBe('');
  expect(run.stderr.trimEnd().split('\n')).toHaveLength(1);
  expect(run.stderr).not.toMatch(/\n\s+at /);
  expect(run.stderr.trimEnd()).toMatch(message);
}

let dir: string;
let tokenFile: string;

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'wgjit-bad-input-'));
  tokenFile = path.join(dir, 'token');
  writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('a Sentinel list that never answers', () => {
  let silent: net.Server;
  const held = new Set<net.Socket>();
  let sentinels: string[];
  let url: string;
  let api: Awaited<ReturnType<typeof startApi>>;
  let migrate: Promise<Run>;

  beforeAll(async () => {
    // Two ports where nothing listens, and a listener that accepts and never says a word.
    silent = net.createServer((socket) => {
      held.add(socket);
      socket.on('error', () => {});
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    sentinels = [`127.0.0.1:${await freePort()}`, `127.0.0.1:${await freePort()}`, `127.0.0.1:${(silent.address() as net.AddressInfo).port}`];
    url = `redis+sentinel://${sentinels.join(',')}/${MASTER}`;
    // The one-shot command runs while the rest is tested: it gives up after its own wait.
    migrate = wgjit(['store', 'migrate', '--redis', url]);
    api = await startApi(url, tokenFile);
  });

  afterAll(async () => {
    await api?.stop();
    await migrate;
    for (const s of held) s.destroy();
    await new Promise((resolve) => silent?.close(resolve));
  });

  it('PeerStore: one warning naming each sentinel, how it failed, and the master; commands and subscribe fail at once', async () => {
    const lines: LogLine[] = [];
    const store = PeerStore.connect(url, { log: capturingLogger(lines) });
    try {
      const warning = await warningWith(lines, [`master "${MASTER}"`, ...sentinels]);
      expect(warning.err).toBe(
        `no sentinel named a primary for master "${MASTER}": ` +
          `${sentinels[0]} could not be reached (connection refused, unreachable or closed); ` +
          `${sentinels[1]} could not be reached (connection refused, unreachable or closed); ` +
          `${sentinels[2]} accepted the connection but did not answer within ${REDIS_COMMAND_TIMEOUT_MS} ms`,
      );
      expect(warning.err).not.toMatch(/Connection is closed/);
      expect(store.problem()).toBe(warning.err);
      expect(await store.ping()).toBe(false);
      const created = validateCreate(peer(), new Date());
      if (!created.ok) throw new Error(created.message);
      await expect(store.create(created.value)).rejects.toBeInstanceOf(StoreUnavailableError);
      await expect(store.subscribe(() => {})).rejects.toThrow(`peer store unavailable (subscribe): ${warning.err}`);
    } finally {
      await store.close();
    }
  });

  it('wgjit api: keeps serving, /readyz not ready, a create answered 503 store_unavailable, the warnings in its log; SIGTERM stops it', async () => {
    expect(await api.call('GET', '/readyz')).toEqual({ status: 503, body: { ready: false, checks: { store: false } } });
    const create = await api.call('POST', '/v1/peers', peer());
    expect(create.status).toBe(503);
    expect(create.body).toMatchObject({ error: { code: 'store_unavailable' } });
    await warningWith(api.lines, [`master "${MASTER}"`, ...sentinels]);
    // The start went on without the store, and said so with why.
    expect(api.lines.find((l) => l.msg.startsWith('peer store not reachable within'))?.err).toMatch(new RegExp(`^no sentinel named a primary for master "${MASTER}"`));
    expect(await api.stop()).toBe(0);
    expect(api.stderr()).toBe('');
  });

  it('wgjit store migrate: exit 1, one line naming each sentinel and the master, nothing written', async () => {
    const run = await migrate;
    expectOneLineFailure(run, new RegExp(`^wgjit: the peer store did not answer within \\d+ s \\(no sentinel named a primary for master "${MASTER}": .*\\); nothing was written; check --redis$`));
    for (const s of sentinels) expect(run.stderr).toContain(s);
  });
});

describe('a Cluster not formed yet', () => {
  let cluster: UnformedCluster;
  let url: string;
  let nodes: string[];
  let api: Awaited<ReturnType<typeof startApi>>;
  let migrate: Promise<Run>;
  const NOT_FORMED = 'the Cluster is not formed: no hash slot is assigned';

  beforeAll(async () => {
    cluster = await startUnformedCluster({ nodes: 3 });
    nodes = cluster.nodes.map(spell);
    url = `redis+cluster://${nodes.join(',')}`;
    migrate = wgjit(['store', 'migrate', '--redis', url]);
    api = await startApi(url, tokenFile);
  });

  afterAll(async () => {
    await api?.stop();
    await migrate;
    await cluster?.stop();
  });

  it('PeerStore: one warning saying it is not formed and how to form it; commands and subscribe fail at once, never wait for a slot map', async () => {
    const lines: LogLine[] = [];
    const store = PeerStore.connect(url, { log: capturingLogger(lines) });
    try {
      const warning = await warningWith(lines, [NOT_FORMED]);
      expect(warning.err).toBe(`${NOT_FORMED} (asked ${nodes.join(', ')}); create it with redis-cli --cluster create HOST:PORT HOST:PORT … [--cluster-replicas N]`);
      expect(store.problem()).toBe(warning.err);
      // ioredis would hold these until the Cluster had slots: for ever.
      expect(await store.ping()).toBe(false);
      await expect(store.get(newKey())).rejects.toThrow(`peer store unavailable: ${warning.err}`);
      const created = validateCreate(peer(), new Date());
      if (!created.ok) throw new Error(created.message);
      await expect(store.create(created.value)).rejects.toBeInstanceOf(StoreUnavailableError);
      await expect(store.subscribe(() => {})).rejects.toBeInstanceOf(StoreUnavailableError);
      expect(await cluster.keyCounts()).toEqual([0, 0, 0]);
    } finally {
      await store.close();
    }
  });

  it('wgjit api: /readyz not ready, a create 503; `wgjit peer import` through it exits 1 with one line; nothing written; SIGTERM stops it', async () => {
    expect(await api.call('GET', '/readyz')).toEqual({ status: 503, body: { ready: false, checks: { store: false } } });
    const create = await api.call('POST', '/v1/peers', peer());
    expect(create.status).toBe(503);
    expect(create.body).toMatchObject({ error: { code: 'store_unavailable' } });

    const file = path.join(dir, 'peers.jsonl');
    writeFileSync(file, `${Array.from({ length: 3 }, () => JSON.stringify(peer())).join('\n')}\n`);
    const run = await wgjit(['peer', 'import', file], { WGJIT_API: api.url, WGJIT_API_TOKEN_FILE: tokenFile });
    expectOneLineFailure(run, /^wgjit: .*unreachable.*\(store_unavailable\)$/);

    expect(await cluster.keyCounts()).toEqual([0, 0, 0]);
    await warningWith(api.lines, [NOT_FORMED, 'redis-cli --cluster create']);
    expect(await api.stop()).toBe(0);
    expect(api.stderr()).toBe('');
  });

  it('wgjit store migrate: exit 1, one line saying the Cluster is not formed, nothing written', async () => {
    const run = await migrate;
    expectOneLineFailure(run, new RegExp(`^wgjit: the peer store did not answer within \\d+ s \\(${NOT_FORMED} .*redis-cli --cluster create .*\\); nothing was written; check --redis$`));
    expect(await cluster.keyCounts()).toEqual([0, 0, 0]);
  });
});

describe('wgjit run on a Cluster not formed yet', () => {
  let tb: Testbed;
  let cluster: UnformedCluster;
  let stack: Stack;

  beforeAll(async () => {
    tb = await createTestbed({ prefix: 'sbi', clients: 0, gatewayWg: true, underlayOctet: 89 });
    cluster = await startUnformedCluster({ nodes: 3, netns: tb.gatewayNs });
    stack = await startStack(tb, { redisUrl: `redis+cluster://${cluster.nodes.map(spell).join(',')}` });
  }, 60_000);

  afterAll(async () => {
    await stack?.stop();
    await cluster?.stop();
    await tb?.destroy();
  });

  it('starts and serves without it: /readyz says the store is not ready, a create 503, the log says why; nothing written', async () => {
    const ready = await stack.api('GET', '/readyz');
    expect(ready.status).toBe(503);
    expect(ready.body).toMatchObject({ ready: false, checks: { store: false } });
    const create = await stack.api('POST', '/v1/peers', peer());
    expect(create.status).toBe(503);
    expect(create.body).toMatchObject({ error: { code: 'store_unavailable' } });
    const logged = stack.logs.map((l) => JSON.parse(l) as LogLine);
    expect(logged.find((l) => l.msg === 'peer store unreachable')?.err).toMatch(/^the Cluster is not formed: no hash slot is assigned .*redis-cli --cluster create/);
    expect(logged.some((l) => l.msg.startsWith('peer store not reachable within'))).toBe(true);
    // The events subscription failed rather than waiting, and is retried.
    expect(logged.find((l) => l.msg.startsWith('cannot subscribe to store events'))?.err).toMatch(/the Cluster is not formed/);
    expect(await cluster.keyCounts()).toEqual([0, 0, 0]);
  });
});
