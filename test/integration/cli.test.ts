/**
 * The real `bin/wgjit` (after `make`) against a real API: buildApp listening
 * on 127.0.0.1, a real redis-server, a small in-memory data plane for the
 * gateway routes, and `wgjit api` itself as a process. No namespaces.
 *
 *   bin/wgjit peer|status ──HTTP──▶ buildApp (+ GatewayView) ──▶ redis-server
 *   bin/wgjit peer|status ──HTTP──▶ bin/wgjit api ─────────────▶ redis-server
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { formatKey, publicKeyOf } from '../../src/handshake/keys.js';
import { generatePrivateKey } from '../../harness/noise/keys.js';
import { PeerStore } from '../../src/authorize/store.js';
import { buildApp } from '../../src/api/app.js';
import type { GatewayInfo, GatewayView, InstalledPeerView } from '../../src/api/gateway-view.js';
import { REDIS_URL_FORMS } from '../../src/authorize/redis-url.js';
import { freePort, startRedis, type TestRedis } from '../support/redis.js';
import { BIN, ROOT, wgjit, type Run } from '../support/wgjit.js';
import type { PublicKey } from '../../src/handshake/keys.js';

const TOKEN = 'cli-test-token-0123456789';
const PSK = formatKey(new Uint8Array(32).fill(9));
const GATEWAY_KEY = formatKey(new Uint8Array(32).fill(3));
const newKey = () => formatKey(publicKeyOf(generatePrivateKey()));
/** The contract's help width: every help line fits a terminal of 80 columns. */
const HELP_WIDTH = 80;

/** A user mistake or a failure: one line on stderr, naming the problem, no stack trace, nothing on stdout. */
function expectOneLineError(run: Run, code: number, message: RegExp): void {
  expect(run.code, run.stderr).toBe(code);
  expect(run.stdout).toBe('');
  expect(run.stderr.endsWith('\n')).toBe(true);
  expect(run.stderr.trimEnd().split('\n')).toHaveLength(1);
  expect(run.stderr).toMatch(/^wgjit: /);
  expect(run.stderr).not.toMatch(/\n\s+at /);
  expect(run.stderr.trimEnd()).toMatch(message);
}

/** Help pages do not change between calls: each is run once. */
const helpRuns = new Map<string, Promise<Run>>();
function helpOf(args: string[]): Promise<Run> {
  const key = args.join(' ');
  if (!helpRuns.has(key)) helpRuns.set(key, wgjit([...args, '--help']));
  return helpRuns.get(key)!;
}

class FakeGateway implements GatewayView {
  peers = new Map<string, InstalledPeerView>();
  async listPeers() {
    return [...this.peers.values()];
  }
  async removePeer(key: PublicKey) {
    return this.peers.delete(key.toString());
  }
  stats() {
    return { initiations_seen: 12, initiations_verified: 10, unknown: 2, installs: 2 };
  }
  info(): GatewayInfo {
    return { interface: 'wg0', publicKey: GATEWAY_KEY, listenPort: 51820, backend: 'netlink', installedPeers: this.peers.size };
  }
  async ready() {
    return { ready: true, checks: { device: true, capture: true } };
  }
}

/** Starts `bin/wgjit api` and resolves with the address it says it listens on (its JSON log line). */
function startApi(args: string[], env: Record<string, string>): Promise<{ child: ChildProcess; listen: string; stop(): Promise<number | null> }> {
  return new Promise((resolve, reject) => {
    const child = spawn(BIN, ['api', ...args], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    child.once('exit', (code) => reject(new Error(`wgjit api exited (${code}) before listening: ${stderr.trim()}`)));
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      let entry: { msg?: string; listen?: string };
      try {
        entry = JSON.parse(line) as typeof entry;
      } catch {
        return;
      }
      if (entry.msg?.startsWith('API listening') && entry.listen !== undefined) {
        resolve({
          child,
          listen: entry.listen,
          stop: async () => {
            child.kill('SIGTERM');
            return exited;
          },
        });
      }
    });
  });
}

describe('wgjit CLI against a real API', () => {
  let redis: TestRedis;
  let store: PeerStore;
  let gw: FakeGateway;
  let app: FastifyInstance;
  let apiUrl: string;
  let dir: string;
  let tokenFile: string;
  /** The environment `peer` and `status` get unless a test says otherwise. */
  let env: Record<string, string>;

  beforeAll(async () => {
    // bin/wgjit runs the build: a build older than the source would test old code.
    const stamp = path.join(ROOT, 'dist/.stamp');
    if (!existsSync(stamp)) throw new Error('dist/ is missing: run `make` first (bin/wgjit runs the built CLI)');
    const stale = readdirSync(path.join(ROOT, 'src'), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts') && statSync(path.join(ROOT, 'src', f)).mtimeMs > statSync(stamp).mtimeMs);
    if (stale.length > 0) throw new Error(`dist/ is older than src/${stale[0]}: run \`make\` first (bin/wgjit runs the built CLI)`);
    redis = await startRedis();
    store = PeerStore.connect(redis.url);
    expect(await store.whenReady()).toBe(true);
    gw = new FakeGateway();
    app = await buildApp({ store, token: TOKEN, gateway: gw });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = app.server.address() as { port: number };
    apiUrl = `http://127.0.0.1:${port}`;
    dir = mkdtempSync(path.join(os.tmpdir(), 'wgjit-cli-'));
    tokenFile = path.join(dir, 'token');
    writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
    env = { WGJIT_API: apiUrl, WGJIT_API_TOKEN_FILE: tokenFile };
  });

  afterAll(async () => {
    await app?.close();
    await store?.close();
    await redis?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  beforeEach(async () => {
    await store.redis.flushall();
    gw.peers.clear();
  });

  describe('--help', () => {
    const pages: Array<[string[], RegExp]> = [
      [[], /^wgjit — on-demand WireGuard peer gateway/],
      [['run'], /^Usage: wgjit run /],
      [['api'], /^Usage: wgjit api /],
      [['peer'], /^Usage:\n  wgjit peer add /],
      [['peer', 'add'], /^Usage: wgjit peer add PUBKEY --allowed-ips/],
      [['peer', 'set'], /^Usage: wgjit peer set PUBKEY \[--allowed-ips/],
      [['peer', 'rm'], /^Usage: wgjit peer rm PUBKEY/],
      [['peer', 'ls'], /^Usage: wgjit peer ls/],
      [['peer', 'show'], /^Usage: wgjit peer show PUBKEY/],
      [['peer', 'import'], /^Usage: wgjit peer import FILE\|- \[--format auto\|wg\|dump\|jsonl\] \[--dry-run\]/],
      [['status'], /^Usage: wgjit status/],
      [['demo'], /^Usage: wgjit demo/],
      [['version'], /^Usage: wgjit version/],
    ];

    it.each(pages)('wgjit %j --help: exit 0, its own page on stdout, every line within 80 columns', async (args, first) => {
      const run = await helpOf(args);
      expect(run.code).toBe(0);
      expect(run.stderr).toBe('');
      expect(run.stdout).toMatch(first);
      for (const line of run.stdout.trimEnd().split('\n')) expect(line.length, line).toBeLessThanOrEqual(HELP_WIDTH);
    });

    it('each peer subcommand has a page of its own', async () => {
      const texts = await Promise.all(['add', 'rm', 'ls', 'show', 'import', 'set'].map(async (sub) => (await helpOf(['peer', sub])).stdout));
      expect(new Set(texts).size).toBe(6);
      expect(texts[4]).toContain('--dry-run');
      expect(texts[0]).toContain('--preshared-key-file FILE');
      expect(texts[1]).not.toContain('--allowed-ips');
    });

    it.each([['peer'], ['peer', 'add'], ['peer', 'ls'], ['peer', 'import'], ['status']])('wgjit %j --help describes --api, the token sources and --json', async (...args) => {
      const text = (await helpOf(args)).stdout;
      for (const word of ['--api URL', 'WGJIT_API', '--api-token-file FILE', 'WGJIT_API_TOKEN_FILE', 'WGJIT_API_TOKEN', '--json']) expect(text).toContain(word);
    });

    it('run --help prints defaults as they are typed, in one aligned column', async () => {
      const text = (await helpOf(['run'])).stdout;
      expect(text).toContain('(default 127.0.0.1:9180)');
      expect(text).toMatch(/\(default\s+on\)/);
      expect(text).toContain('(default auto)');
      expect(text).toMatch(/\(default\s+\/var\/run\/wireguard\)/);
      expect(text).not.toMatch(/\(default\s+["{]/);
      expect(text).not.toMatch(/\(default\s+true\)/);
      // Every flag's text starts in the same column, its continuation lines too.
      const entries = text.split('\n').filter((l) => /^ {2}--/.test(l));
      expect(entries.map((l) => l.split(' ')[2])).toContain('--reconcile-interval');
      const column = /^ {2}--\S+\s+/.exec(entries[0]!)![0].length;
      for (const l of entries) expect(/^ {2}--\S+\s+/.exec(l)![0].length, l).toBe(column);
      const body = text.slice(text.indexOf('\n  --'));
      for (const l of body.split('\n').filter((l) => l && !/^ {2}--/.test(l))) expect(/^ */.exec(l)![0].length, l).toBe(column);
    });

    it('no command: the main page on stderr, exit 2', async () => {
      const run = await wgjit([]);
      expect(run.code).toBe(2);
      expect(run.stdout).toBe('');
      expect(run.stderr).toMatch(/^wgjit — /);
    });
  });

  describe('peer', () => {
    it('add, ls, show, rm: text for people', async () => {
      const [k1, k2] = [newKey(), newKey()].sort() as [string, string];
      const pskFile = path.join(dir, 'psk');
      writeFileSync(pskFile, `${PSK}\n`);
      let run = await wgjit(['peer', 'add', k1, '--allowed-ips', '10.8.0.2/32,fd00::2/128', '--keepalive', '25', '--preshared-key-file', pskFile], env);
      expect(run).toEqual({ code: 0, stdout: `added ${k1} (10.8.0.2/32, fd00::2/128)\n`, stderr: '' });
      expect(await store.get(k1)).toMatchObject({ allowedIPs: ['10.8.0.2/32', 'fd00::2/128'], persistentKeepalive: 25, presharedKey: PSK });
      run = await wgjit(['peer', 'add', k2, '--allowed-ips', '10.8.0.3', '--disabled', '--expires-at', '2031-01-01T00:00:00Z'], env);
      expect(run.code).toBe(0);

      run = await wgjit(['peer', 'ls'], env);
      expect(run.code).toBe(0);
      const lines = run.stdout.trimEnd().split('\n');
      expect(lines).toHaveLength(3);
      const header = lines[0]!;
      expect(header).toMatch(/^PUBLIC KEY +NAME +ALLOWED IPS +KEEPALIVE +EXPIRES +STATE$/);
      const col = (name: string) => header.indexOf(name);
      const cell = (line: string, name: string, next?: string) => line.slice(col(name), next === undefined ? undefined : col(next)).trim();
      expect(lines.slice(1).map((l) => cell(l, 'PUBLIC KEY', 'NAME'))).toEqual([k1, k2]);
      expect(lines.slice(1).map((l) => cell(l, 'NAME', 'ALLOWED IPS'))).toEqual(['-', '-']);
      expect([1, 2].map((i) => [cell(lines[i]!, 'ALLOWED IPS', 'KEEPALIVE'), cell(lines[i]!, 'KEEPALIVE', 'EXPIRES'), cell(lines[i]!, 'EXPIRES', 'STATE'), cell(lines[i]!, 'STATE')])).toEqual([
        ['10.8.0.2/32,fd00::2/128', '25s', '-', 'enabled'],
        ['10.8.0.3/32', '-', '2031-01-01T00:00:00.000Z', 'disabled'],
      ]);

      run = await wgjit(['peer', 'show', k1], env);
      expect(run.code).toBe(0);
      expect(run.stdout).toBe(
        [`peer: ${k1}`, '  name: (none)', '  allowed ips: 10.8.0.2/32, fd00::2/128', '  preshared key: (hidden)', '  persistent keepalive: every 25 seconds', '  expires: never', '  state: enabled', '  held by: (no gateway)', ''].join('\n'),
      );
      expect(run.stdout).not.toContain(PSK);

      run = await wgjit(['peer', 'rm', k1], env);
      expect(run).toEqual({ code: 0, stdout: `removed ${k1}\n`, stderr: '' });
      expect(await store.get(k1)).toBeNull();
    });

    it('--json: the API records, complete and without the preshared key', async () => {
      const key = newKey();
      const pskFile = path.join(dir, 'psk');
      writeFileSync(pskFile, PSK);
      let run = await wgjit(['peer', 'add', key, '--allowed-ips', '10.8.0.2/32', '--preshared-key-file', pskFile, '--json'], env);
      expect(run.code).toBe(0);
      const added = JSON.parse(run.stdout);
      expect(added).toMatchObject({ publicKey: key, allowedIPs: ['10.8.0.2/32'], hasPresharedKey: true, disabled: false });
      expect(Object.keys(added).sort()).toEqual(['allowedIPs', 'createdAt', 'disabled', 'hasPresharedKey', 'publicKey', 'updatedAt']);
      run = await wgjit(['peer', 'show', key, '--json'], env);
      expect(JSON.parse(run.stdout)).toEqual({ ...added, holder: null });
      run = await wgjit(['peer', 'ls', '--json'], env);
      expect(JSON.parse(run.stdout)).toEqual([added]);
      for (const r of [run]) expect(r.stdout).not.toContain(PSK);
      run = await wgjit(['peer', 'rm', key, '--json'], env);
      expect(JSON.parse(run.stdout)).toEqual({ removed: key });
    });

    it('ls follows every page (more peers than one page holds)', async () => {
      const keys = Array.from({ length: 1001 }, newKey);
      for (const publicKey of keys) await store.create({ publicKey, allowedIPs: ['10.0.0.2/32'], disabled: false, createdAt: '2030-01-01T00:00:00.000Z', updatedAt: '2030-01-01T00:00:00.000Z' });
      const run = await wgjit(['peer', 'ls', '--json'], env);
      expect(run.code).toBe(0);
      expect((JSON.parse(run.stdout) as Array<{ publicKey: string }>).map((p) => p.publicKey)).toEqual([...keys].sort());
    });
  });

  describe('status', () => {
    const confirmed = newKey();
    const provisional = newKey();
    const handshake = new Date(Date.now() - (90 * 60 + 5) * 1000).toISOString();

    beforeEach(() => {
      gw.peers.set(provisional, { publicKey: provisional, endpoint: null, allowedIPs: ['10.8.0.9/32'], state: 'provisional', installedAt: new Date().toISOString(), lastHandshakeAt: null, rxBytes: 0, txBytes: 0 });
      gw.peers.set(confirmed, {
        publicKey: confirmed,
        endpoint: '192.0.2.7:51820',
        allowedIPs: ['10.8.0.2/32', 'fd00::2/128'],
        state: 'confirmed',
        installedAt: new Date(Date.now() - 2 * 3600 * 1000).toISOString(),
        lastHandshakeAt: handshake,
        rxBytes: 1260,
        txBytes: 4669,
      });
    });

    it('reads like wg show: the interface, each peer with wgjit\'s state, then the counters', async () => {
      const run = await wgjit(['status'], env);
      expect(run.code, run.stderr).toBe(0);
      const [iface, first, second, counters, ...rest] = run.stdout.trimEnd().split('\n\n');
      expect(rest).toEqual([]);
      expect(iface).toBe(['interface: wg0', `  public key: ${GATEWAY_KEY}`, '  listening port: 51820', '  backend: netlink'].join('\n'));
      // wg's order: the latest handshake first.
      const lines = first!.split('\n');
      expect(lines.slice(0, 3)).toEqual([`peer: ${confirmed}`, '  endpoint: 192.0.2.7:51820', '  allowed ips: 10.8.0.2/32, fd00::2/128']);
      expect(lines[3]).toMatch(/^ {2}latest handshake: 1 hour, 30 minutes(, \d+ seconds?)? ago$/);
      expect(lines[4]).toBe('  transfer: 1.23 KiB received, 4.56 KiB sent');
      expect(lines[5]).toMatch(/^ {2}wgjit state: confirmed, installed 2 hours(, .*)? ago$/);
      expect(lines).toHaveLength(6);
      // No handshake and no traffic yet: wg leaves those lines out, so does status.
      expect(second!.split('\n')).toEqual([`peer: ${provisional}`, '  allowed ips: 10.8.0.9/32', expect.stringMatching(/^ {2}wgjit state: provisional, installed (Now|\d+ seconds? ago)$/)]);
      expect(counters!.split('\n')).toEqual(['COUNTER               VALUE', 'initiations_seen      12', 'initiations_verified  10', 'installs              2', 'unknown               2']);
    });

    it('--json: {gateway, peers, stats}, complete', async () => {
      const run = await wgjit(['status', '--json'], env);
      expect(run.code).toBe(0);
      expect(JSON.parse(run.stdout)).toEqual({
        gateway: { ...gw.info() },
        peers: [...gw.peers.values()].sort((a, b) => (a.publicKey < b.publicKey ? -1 : 1)),
        stats: gw.stats(),
      });
    });

    it('follows every page of installed peers', async () => {
      gw.peers.clear();
      for (let i = 0; i < 1001; i++) {
        const k = newKey();
        gw.peers.set(k, { publicKey: k, endpoint: null, allowedIPs: [], state: 'provisional', installedAt: new Date().toISOString(), lastHandshakeAt: null, rxBytes: 0, txBytes: 0 });
      }
      const run = await wgjit(['status', '--json'], env);
      expect(JSON.parse(run.stdout).peers).toHaveLength(1001);
    });
  });

  describe('errors: one line, exit code as docs/operations.md says', () => {
    it('a bad key → 2, before any request', async () => {
      expectOneLineError(await wgjit(['peer', 'show', 'abc'], env), 2, /"abc" is not a WireGuard public key/);
      const short = Buffer.alloc(31, 1).toString('base64');
      expectOneLineError(await wgjit(['peer', 'add', short, '--allowed-ips', '10.0.0.2/32'], env), 2, /is not a WireGuard public key \(base64 of 31 bytes, not 32\)/);
      expect(await store.redis.dbsize()).toBe(0);
    });

    it('bad input the API refuses (400) → 2, the API\'s message', async () => {
      expectOneLineError(await wgjit(['peer', 'add', newKey(), '--allowed-ips', '10.0.0.300/32'], env), 2, /--allowed-ips \(1st CIDR\): .*\(bad_request\)$/);
    });

    it('no token → 2, naming every way to give one', async () => {
      expectOneLineError(await wgjit(['peer', 'ls'], { WGJIT_API: apiUrl }), 2, /no API token: set --api-token-file FILE, WGJIT_API_TOKEN_FILE or WGJIT_API_TOKEN/);
    });

    it('a wrong token → 2, the API\'s 401', async () => {
      expectOneLineError(await wgjit(['peer', 'ls'], { WGJIT_API: apiUrl, WGJIT_API_TOKEN: 'wrong' }), 2, /bearer token .*\(unauthorized\); check --api-token-file/);
    });

    it('the token: --api-token-file beats WGJIT_API_TOKEN_FILE, which beats WGJIT_API_TOKEN', async () => {
      const wrongFile = path.join(dir, 'wrong-token');
      writeFileSync(wrongFile, 'wrong\n');
      expect((await wgjit(['peer', 'ls', '--api-token-file', tokenFile], { WGJIT_API: apiUrl, WGJIT_API_TOKEN_FILE: wrongFile, WGJIT_API_TOKEN: 'wrong' })).code).toBe(0);
      expect((await wgjit(['peer', 'ls'], { WGJIT_API: apiUrl, WGJIT_API_TOKEN_FILE: tokenFile, WGJIT_API_TOKEN: 'wrong' })).code).toBe(0);
      expect((await wgjit(['peer', 'ls'], { WGJIT_API: apiUrl, WGJIT_API_TOKEN: TOKEN })).code).toBe(0);
      expect((await wgjit(['peer', 'ls'], { WGJIT_API: apiUrl, WGJIT_API_TOKEN_FILE: wrongFile, WGJIT_API_TOKEN: TOKEN })).code).toBe(2);
    });

    it('an unreadable token file → 2', async () => {
      expectOneLineError(await wgjit(['peer', 'ls', '--api-token-file', path.join(dir, 'nope')], { WGJIT_API: apiUrl }), 2, /cannot read --api-token-file .*nope: no such file$/);
    });

    it('an unreachable API → 1, saying where it looked', async () => {
      const closed = `http://127.0.0.1:${await freePort()}`;
      expectOneLineError(await wgjit(['peer', 'ls', '--api', closed], env), 1, new RegExp(`cannot reach the wgjit API at ${closed} \\(ECONNREFUSED\\)`));
    });

    it('--api wins over WGJIT_API', async () => {
      const closed = `http://127.0.0.1:${await freePort()}`;
      expect((await wgjit(['peer', 'ls', '--api', apiUrl], { ...env, WGJIT_API: closed })).code).toBe(0);
    });

    it('no such peer → 3; the peer exists → 4', async () => {
      const key = newKey();
      expectOneLineError(await wgjit(['peer', 'show', key], env), 3, new RegExp(`no peer ${key.replace(/[+/]/g, '\\$&')} \\(not_found\\)$`));
      expectOneLineError(await wgjit(['peer', 'rm', key], env), 3, /\(not_found\)$/);
      expect((await wgjit(['peer', 'add', key, '--allowed-ips', '10.0.0.2/32'], env)).code).toBe(0);
      expectOneLineError(await wgjit(['peer', 'add', key, '--allowed-ips', '10.0.0.3/32'], env), 4, /already exists.*\(conflict\)$/);
    });

    it('a bad --redis → 2, from the flag, WGJIT_REDIS or the config file, for run, api and store migrate: what is wrong and every form, never the value', async () => {
      const expected = `; expected ${REDIS_URL_FORMS}`;
      const config = path.join(dir, 'bad-redis.json');
      writeFileSync(config, JSON.stringify({ redis: 'http://admin:hunter2@store.example:6379' }));
      const cases: Array<[string[], Record<string, string>, RegExp]> = [
        [['api', '--redis', 'http://admin:hunter2@127.0.0.1:7301', '--api-token-file', tokenFile], {}, /^wgjit: --redis is invalid: the scheme "http" is not a Redis scheme; expected /],
        [['run', '--interface', 'wg0', '--capture-dev', 'eth0', '--redis', 'redis://admin:hunter2@127.0.0.1:99999'], {}, /^wgjit: --redis is invalid: the port of the host is out of range 1\.\.65535; expected /],
        [['store', 'migrate'], { WGJIT_REDIS: 'redis+sentinel://admin:hunter2@127.0.0.1:26379' }, /^wgjit: WGJIT_REDIS is invalid: the Sentinel master name is missing: .*; expected /],
        // The password pasted where the URL belongs.
        [['api', '--api-token-file', tokenFile], { WGJIT_REDIS: 'hunter2' }, /^wgjit: WGJIT_REDIS is invalid: not a Redis URL \(SCHEME:\/\/…\) or a socket path \(\/…\); expected /],
        [['store', 'migrate', '--config', config], {}, new RegExp(`^wgjit: "redis" in ${config} is invalid: the scheme "http" is not a Redis scheme; expected `)],
      ];
      for (const [args, runEnv, message] of cases) {
        const run = await wgjit(args, runEnv);
        expectOneLineError(run, 2, message);
        expect(run.stderr.trimEnd().endsWith(expected), run.stderr).toBe(true);
        expect(run.stderr).not.toMatch(/hunter2|admin|store\.example|7301|99999/);
      }
    });

    it('usage mistakes → 2', async () => {
      expectOneLineError(await wgjit(['peer', 'frob'], env), 2, /unknown peer command "frob"/);
      expectOneLineError(await wgjit(['peer', 'add', newKey()], env), 2, /needs --allowed-ips/);
      expectOneLineError(await wgjit(['peer', 'ls', '--allowed-ips', '10.0.0.2/32'], env), 2, /--allowed-ips is an option of 'peer add'/);
      expectOneLineError(await wgjit(['status', '--colour'], env), 2, /--colour/);
      expectOneLineError(await wgjit(['frob']), 2, /unknown command "frob"/);
    });
  });

  describe('wgjit api (a process)', () => {
    let ports: [number, number, number];
    let configFile: string;
    const running: Array<{ stop(): Promise<number | null> }> = [];

    beforeAll(async () => {
      ports = [await freePort(), await freePort(), await freePort()];
      configFile = path.join(dir, 'wgjit.json');
      writeFileSync(configFile, JSON.stringify({ 'api-listen': `127.0.0.1:${ports[0]}`, redis: redis.url, 'api-token-file': tokenFile }));
    });

    afterAll(async () => {
      for (const r of running) await r.stop();
    });

    async function listensOn(args: string[], apiEnv: Record<string, string>): Promise<string> {
      const api = await startApi(args, { WGJIT_CONFIG: configFile, ...apiEnv });
      running.push(api);
      // End to end through the CLI: the port it said is the one that answers.
      const run = await wgjit(['peer', 'ls', '--json'], { WGJIT_API: `http://${api.listen}`, WGJIT_API_TOKEN_FILE: tokenFile });
      expect(run.code, run.stderr).toBe(0);
      expect(await api.stop()).toBe(0);
      running.pop();
      return api.listen;
    }

    it('its listen address: flag over WGJIT_API_LISTEN over the config file', async () => {
      const [fromFile, fromEnv, fromFlag] = ports.map((p) => `127.0.0.1:${p}`);
      expect(await listensOn(['--api-listen', fromFlag!], { WGJIT_API_LISTEN: fromEnv! })).toBe(fromFlag);
      expect(await listensOn([], { WGJIT_API_LISTEN: fromEnv! })).toBe(fromEnv);
      expect(await listensOn([], {})).toBe(fromFile);
    });

    it('serves process metrics, and `status` against it says it has no gateway (exit 1)', async () => {
      const api = await startApi(['--api-listen', '127.0.0.1:0'], { WGJIT_CONFIG: configFile });
      running.push(api);
      const base = `http://${api.listen}`;
      expect(api.listen).toMatch(/^127\.0\.0\.1:[1-9]\d*$/);
      const metrics = await (await fetch(`${base}/metrics`)).text();
      expect(metrics).toMatch(/^process_cpu_user_seconds_total \d/m);
      expect(metrics).toMatch(/^nodejs_heap_size_used_bytes \d/m);
      expect((await fetch(`${base}/healthz`)).status).toBe(200);
      expectOneLineError(await wgjit(['status'], { WGJIT_API: base, WGJIT_API_TOKEN_FILE: tokenFile }), 1, /has no gateway .*point --api or WGJIT_API at the API of a `wgjit run`/);
    });
  });
});
