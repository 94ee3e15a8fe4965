/**
 * What an operator types, through the real `bin/wgjit` (after `make`) against
 * a real `bin/wgjit api` process on a real redis-server: peer names, `peer
 * set`, `version` and `help`, errors that name the flag typed, `--api
 * HOST:PORT` and `--api-listen :PORT`, and dates.
 *
 *   bin/wgjit peer|version|help ──HTTP──▶ bin/wgjit api --api-listen :PORT ──▶ redis-server
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { generatePrivateKey } from '../../harness/noise/keys.js';
import { MAX_NAME_LENGTH } from '../../src/authorize/peer.js';
import { PeerStore } from '../../src/authorize/store.js';
import { WGJIT_VERSION } from '../../src/api/version.js';
import { formatKey, publicKeyOf } from '../../src/handshake/keys.js';
import { freePort, startRedis, type TestRedis } from '../support/redis.js';
import { BIN, wgjit, type Run } from '../support/wgjit.js';

const TOKEN = 'cli-operator-token-0123456789';
const PSK = formatKey(new Uint8Array(32).fill(5));
const newKey = () => formatKey(publicKeyOf(generatePrivateKey()));

/** A user mistake: one line on stderr starting `wgjit: `, nothing on stdout. */
function expectOneLineError(run: Run, code: number, message: string | RegExp): void {
  expect(run.code, run.stderr).toBe(code);
  expect(run.stdout).toBe('');
  expect(run.stderr.trimEnd().split('\n')).toHaveLength(1);
  if (typeof message === 'string') expect(run.stderr).toBe(`wgjit: ${message}\n`);
  else expect(run.stderr.trimEnd()).toMatch(message);
}

/** `bin/wgjit api ARGS` and the address its log line says it listens on. */
function startApi(args: string[]): Promise<{ child: ChildProcess; listen: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(BIN, ['api', ...args], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('exit', (code) => reject(new Error(`wgjit api exited (${code}) before listening: ${stderr.trim()}`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const entry = JSON.parse(line) as { msg?: string; listen?: string };
      if (entry.msg?.startsWith('API listening') && entry.listen !== undefined) resolve({ child, listen: entry.listen });
    });
  });
}

describe('wgjit CLI for operators, against a `wgjit api` process', () => {
  let redis: TestRedis;
  let store: PeerStore;
  let api: ChildProcess;
  let port: number;
  let listen: string;
  let dir: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    redis = await startRedis();
    store = PeerStore.connect(redis.url);
    expect(await store.whenReady()).toBe(true);
    dir = mkdtempSync(path.join(os.tmpdir(), 'wgjit-cli-operator-'));
    const tokenFile = path.join(dir, 'token');
    writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
    port = await freePort();
    // :PORT: every address, IPv6 and IPv4 (dual-stack `::`).
    ({ child: api, listen } = await startApi(['--redis', redis.url, '--api-listen', `:${port}`, '--api-token-file', tokenFile]));
    // HOST:PORT without a scheme: http://HOST:PORT. IPv4 loopback reaches the `::` listener.
    env = { WGJIT_API: `127.0.0.1:${port}`, WGJIT_API_TOKEN_FILE: tokenFile };
  });

  afterAll(async () => {
    if (api !== undefined && api.exitCode === null) {
      const exited = new Promise((r) => api.once('exit', r));
      api.kill('SIGTERM');
      await exited;
    }
    await store?.close();
    await redis?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  beforeEach(async () => {
    await store.redis.flushall();
  });

  const run = (args: string[], stdin?: string) => wgjit(args, env, stdin);

  it('--api-listen :PORT listens on every address (`::`); --api HOST:PORT needs no scheme, over IPv4 and IPv6', async () => {
    expect(listen).toBe(`[::]:${port}`);
    const apis = [`127.0.0.1:${port}`, `[::1]:${port}`, `http://127.0.0.1:${port}`];
    const runs = await Promise.all(apis.map((api) => wgjit(['peer', 'ls', '--json', '--api', api], env)));
    runs.forEach((r, i) => expect(r, apis[i]).toEqual({ code: 0, stdout: '[]\n', stderr: '' }));
  });

  describe('name', () => {
    it('add --name, show, ls, set --name, and --name "" removes it', async () => {
      const [k1, k2] = [newKey(), newKey()].sort() as [string, string];
      expect(await run(['peer', 'add', k1, '--allowed-ips', '10.8.0.2', '--name', "Zoë's laptop"])).toEqual({ code: 0, stdout: `added ${k1} "Zoë's laptop" (10.8.0.2/32)\n`, stderr: '' });
      expect((await run(['peer', 'add', k2, '--allowed-ips', '10.8.0.3'])).code).toBe(0);
      expect((await store.get(k1))?.name).toBe("Zoë's laptop");

      const show = await run(['peer', 'show', k1]);
      expect(show.stdout.split('\n').slice(0, 2)).toEqual([`peer: ${k1}`, "  name: Zoë's laptop"]);
      expect(JSON.parse((await run(['peer', 'show', k1, '--json'])).stdout)).toMatchObject({ publicKey: k1, name: "Zoë's laptop" });

      const ls = (await run(['peer', 'ls'])).stdout.trimEnd().split('\n');
      expect(ls[0]).toMatch(/^PUBLIC KEY +NAME +ALLOWED IPS +KEEPALIVE +EXPIRES +STATE$/);
      const cell = (line: string) => line.slice(ls[0]!.indexOf('NAME'), ls[0]!.indexOf('ALLOWED IPS')).trim();
      expect(ls.slice(1).map(cell)).toEqual(["Zoë's laptop", '-']);

      let set = await run(['peer', 'set', k1, '--name', 'phone', '--json']);
      expect(JSON.parse(set.stdout)).toMatchObject({ publicKey: k1, name: 'phone' });
      set = await run(['peer', 'set', k1, '--name', '']);
      expect(set.code, set.stderr).toBe(0);
      expect(set.stdout).toContain('  name: (none)\n');
      expect(await store.get(k1)).not.toHaveProperty('name');
    });

    it('a bad name is refused before anything is sent, naming --name', async () => {
      const key = newKey();
      const [lines, long] = await Promise.all([
        run(['peer', 'add', key, '--allowed-ips', '10.8.0.2', '--name', 'two\nlines']),
        run(['peer', 'add', key, '--allowed-ips', '10.8.0.2', '--name', 'x'.repeat(MAX_NAME_LENGTH + 1)]),
      ]);
      expectOneLineError(lines, 2, '--name: character 4 (U+000A) is not printable');
      expectOneLineError(long, 2, `--name: at most ${MAX_NAME_LENGTH} characters, got ${MAX_NAME_LENGTH + 1}`);
      expect(await store.get(key)).toBeNull();
    });

    it('peer import passes the name of a JSON line through, and the API refuses a bad one naming the field', async () => {
      const [k1, k2] = [newKey(), newKey()];
      const lines = [JSON.stringify({ publicKey: k1, allowedIPs: ['10.8.0.2/32'], name: 'imported' }), JSON.stringify({ publicKey: k2, allowedIPs: ['10.8.0.3/32'] })].join('\n');
      const r = await run(['peer', 'import', '-', '--format', 'jsonl'], lines);
      expect(r.code, r.stderr).toBe(0);
      expect((await store.get(k1))?.name).toBe('imported');
      expect(await store.get(k2)).not.toHaveProperty('name');
      // The API itself: a name in a create and a PATCH, null clears.
      const headers = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };
      const base = `http://127.0.0.1:${port}/v1/peers/${encodeURIComponent(k2)}`;
      let res = await fetch(base, { method: 'PATCH', headers, body: JSON.stringify({ name: 'tab\there' }) });
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: { message: string } }).error.message).toBe('name: character 4 (U+0009) is not printable');
      res = await fetch(base, { method: 'PATCH', headers, body: JSON.stringify({ name: 'k2' }) });
      expect(((await res.json()) as { name?: string }).name).toBe('k2');
      res = await fetch(base, { method: 'PATCH', headers, body: JSON.stringify({ name: null }) });
      expect(await res.json()).not.toHaveProperty('name');
    });
  });

  describe('peer set', () => {
    it('changes every field, prints the record as peer show does, and clears with --no-preshared-key, --no-expiry, --enable', async () => {
      const key = newKey();
      expect((await run(['peer', 'add', key, '--allowed-ips', '10.8.0.2'])).code).toBe(0);
      const pskFile = path.join(dir, 'psk');
      writeFileSync(pskFile, `${PSK}\n`);
      let r = await run(['peer', 'set', key, '--allowed-ips', '10.8.0.4/32,fd00::4', '--preshared-key-file', pskFile, '--keepalive', '25', '--expires-at', '2031-01-01T00:00:00Z', '--disable', '--name', 'gw test']);
      expect(r).toEqual({
        code: 0,
        stdout: [
          `peer: ${key}`,
          '  name: gw test',
          '  allowed ips: 10.8.0.4/32, fd00::4/128',
          '  preshared key: (hidden)',
          '  persistent keepalive: every 25 seconds',
          '  expires: 2031-01-01T00:00:00.000Z',
          '  state: disabled',
          '',
        ].join('\n'),
        stderr: '',
      });
      expect(await store.get(key)).toMatchObject({ allowedIPs: ['10.8.0.4/32', 'fd00::4/128'], presharedKey: PSK, persistentKeepalive: 25, expiresAt: '2031-01-01T00:00:00.000Z', disabled: true, name: 'gw test' });

      r = await run(['peer', 'set', key, '--no-preshared-key', '--no-expiry', '--enable', '--keepalive', '0', '--json']);
      expect(r.code, r.stderr).toBe(0);
      const record = JSON.parse(r.stdout) as Record<string, unknown>;
      expect(record).toMatchObject({ publicKey: key, hasPresharedKey: false, disabled: false, name: 'gw test' });
      expect(record).not.toHaveProperty('expiresAt');
      expect(record).not.toHaveProperty('persistentKeepalive');
      const stored = await store.get(key);
      expect(stored).not.toHaveProperty('presharedKey');
      expect(stored).not.toHaveProperty('expiresAt');
    });

    it('refuses contradicting pairs and an empty change, with one line; an unknown key is exit 3', async () => {
      const key = newKey();
      expect((await run(['peer', 'add', key, '--allowed-ips', '10.8.0.2'])).code).toBe(0);
      const runs = await Promise.all([
        run(['peer', 'set', key, '--disable', '--enable']),
        run(['peer', 'set', key, '--expires-at', '2031-01-01', '--no-expiry']),
        run(['peer', 'set', key, '--preshared-key-file', 'x', '--no-preshared-key']),
        run(['peer', 'set', key]),
        run(['peer', 'set', newKey(), '--disable']),
      ]);
      expectOneLineError(runs[0]!, 2, '--disable and --enable contradict each other: give one of them');
      expectOneLineError(runs[1]!, 2, '--expires-at and --no-expiry contradict each other: give one of them');
      expectOneLineError(runs[2]!, 2, '--preshared-key-file and --no-preshared-key contradict each other: give one of them');
      expectOneLineError(runs[3]!, 2, /^wgjit: peer set needs a change: --allowed-ips, .*; see wgjit peer set --help$/);
      expectOneLineError(runs[4]!, 3, /^wgjit: no peer .* \(not_found\)$/);
      expect((await store.get(key))?.disabled).toBe(false);
    });
  });

  describe('version and help', () => {
    it('version, --version and -V print the release and the runtime', async () => {
      const runs = await Promise.all([['version'], ['--version'], ['-V']].map((a) => wgjit(a)));
      for (const r of runs) expect(r).toEqual({ code: 0, stdout: `wgjit ${WGJIT_VERSION}\nnode ${process.versions.node}\n`, stderr: '' });
    });

    it.each([
      [['help'], ['--help']],
      [['help', 'peer'], ['peer', '--help']],
      [['peer', 'help'], ['peer', '--help']],
      [['peer', 'help', 'set'], ['peer', 'set', '--help']],
      [['help', 'peer', 'set'], ['peer', 'set', '--help']],
      [['store', 'help'], ['store', '--help']],
      [['help', 'version'], ['version', '--help']],
    ])('wgjit %j prints the page of wgjit %j', async (asked, flag) => {
      const [a, b] = await Promise.all([wgjit(asked), wgjit(flag)]);
      expect(a.code).toBe(0);
      expect(a.stdout.length).toBeGreaterThan(50);
      expect(a).toEqual(b);
    });
  });

  describe('errors name the flag typed', () => {
    it('an API refusal says the flag: --allowed-ips (2nd CIDR), --expires-at; --keepalive is checked before sending', async () => {
      const key = newKey();
      await store.create({ publicKey: key, allowedIPs: ['10.8.0.2/32'], disabled: false, createdAt: '2030-01-01T00:00:00.000Z', updatedAt: '2030-01-01T00:00:00.000Z' });
      const other = newKey();
      const runs = await Promise.all([
        run(['peer', 'add', other, '--allowed-ips', '10.8.0.2/32,10.8.0.1/24']),
        run(['peer', 'add', other, '--allowed-ips', '10.8.0.2', '--expires-at', '2030-02-30']),
        run(['peer', 'add', other, '--allowed-ips', '10.8.0.2', '--keepalive', '70000']),
        run(['peer', 'set', key, '--allowed-ips', '10.8.0.2,127.0.0.1']),
      ]);
      expectOneLineError(runs[0]!, 2, /^wgjit: --allowed-ips \(2nd CIDR\): 10\.8\.0\.1\/24 has host bits set.*\(bad_request\)$/);
      expectOneLineError(runs[1]!, 2, '--expires-at: 2030-02-30 is not a date (2030-02 has 28 days) (bad_request)');
      expectOneLineError(runs[2]!, 2, '--keepalive: must be a whole number of seconds from 0 (off) to 65535, got "70000"');
      expectOneLineError(runs[3]!, 2, /^wgjit: --allowed-ips \(2nd CIDR\): 127\.0\.0\.1\/32 .*loopback/);
      expect(await store.get(other)).toBeNull();
    });

    it('an unknown option: the nearest of the command’s flags, or none', async () => {
      const runs = await Promise.all([
        run(['peer', 'add', newKey(), '--alowed-ips', '10.8.0.2']),
        run(['peer', 'set', newKey(), '--no-expiri']),
        run(['peer', 'add', newKey(), '--colour', 'blue']),
        run(['peer', 'ls', '--disable']),
      ]);
      expectOneLineError(runs[0]!, 2, 'unknown option --alowed-ips (did you mean --allowed-ips?); see wgjit peer add --help');
      expectOneLineError(runs[1]!, 2, 'unknown option --no-expiri (did you mean --no-expiry?); see wgjit peer set --help');
      expectOneLineError(runs[2]!, 2, 'unknown option --colour; see wgjit peer add --help');
      expectOneLineError(runs[3]!, 2, "--disable is an option of 'peer set', not 'peer ls'; see wgjit peer ls --help");
    });

    it('a missing token file or preshared-key file: "no such file", not ENOENT', async () => {
      const missing = path.join(dir, 'nope');
      const [token, psk] = await Promise.all([
        wgjit(['peer', 'ls', '--api-token-file', missing], { WGJIT_API: env.WGJIT_API! }),
        run(['peer', 'add', newKey(), '--allowed-ips', '10.8.0.2', '--preshared-key-file', missing]),
      ]);
      expectOneLineError(token, 2, `cannot read --api-token-file ${missing}: no such file`);
      expectOneLineError(psk, 2, `cannot read --preshared-key-file ${missing}: no such file`);
    });
  });

  describe('dates', () => {
    it('--expires-at DATE is midnight UTC, through the CLI and in the API', async () => {
      const [k1, k2] = [newKey(), newKey()];
      const r = await run(['peer', 'add', k1, '--allowed-ips', '10.8.0.2', '--expires-at', '2030-01-01']);
      expect(r).toMatchObject({ code: 0, stderr: '' });
      expect((await store.get(k1))?.expiresAt).toBe('2030-01-01T00:00:00.000Z');
      const res = await fetch(`http://127.0.0.1:${port}/v1/peers`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ publicKey: k2, allowedIPs: ['10.8.0.3/32'], expiresAt: '2031-06-30' }),
      });
      expect(res.status).toBe(201);
      expect(((await res.json()) as { expiresAt: string }).expiresAt).toBe('2031-06-30T00:00:00.000Z');
    });

    it('an expiry in the past is sent with a warning, and ls and show say expired', async () => {
      const key = newKey();
      const r = await run(['peer', 'add', key, '--allowed-ips', '10.8.0.2', '--expires-at', '2020-01-01']);
      expect(r.code).toBe(0);
      expect(r.stderr).toBe('wgjit: warning: --expires-at 2020-01-01 is in the past: the peer is refused from now on\n');
      expect((await store.get(key))?.expiresAt).toBe('2020-01-01T00:00:00.000Z');
      const ls = (await run(['peer', 'ls'])).stdout.trimEnd().split('\n');
      expect(ls[1]).toMatch(/ 2020-01-01T00:00:00\.000Z +expired$/);
      expect((await run(['peer', 'show', key])).stdout).toContain('\n  state: expired\n');
      // A later expiry through set: no warning, enabled again.
      const set = await run(['peer', 'set', key, '--expires-at', '2099-01-01']);
      expect(set.stderr).toBe('');
      expect(set.stdout).toContain('\n  state: enabled\n');
    });
  });
});
