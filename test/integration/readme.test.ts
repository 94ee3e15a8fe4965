/**
 * The README's "Run it on a gateway" as a new user would run it: every
 * block marked `<!-- readme-test: ROLE -->` runs as written, in order, in
 * the gateway's or the client's network namespace, with only `eth0` (the
 * uplink) and `203.0.113.1` (the gateway's address) replaced. Each role
 * keeps one shell's state (exported variables, the working directory) from
 * block to block, as a terminal would. What the blocks write under /etc and
 * /run goes to directories of this test, bind-mounted over them in a mount
 * namespace of each command, so the host's are untouched and the two
 * roles' wireguard-go sockets (both `wg0`) do not meet.
 *
 * Then, over the whole run: the client's first initiation installed it
 * (the daemon's admission line and its metrics), `wgjit status` shows it,
 * and no secret it used (private keys, the API token) is in any log line.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nsRun, run, spawnIn, waitFor, type Spawned } from '../../harness/testbed/exec.js';
import { createTestbed, type Testbed } from '../../harness/testbed/topology.js';
import { REDIS_PORT, START_TIMEOUT_MS } from '../../harness/testbed/stack.js';

const REPO = resolve(fileURLToPath(import.meta.url), '../../..');
const API = '127.0.0.1:9180';
/** Directories the blocks write to, each replaced by one of this test's per role. */
const MOUNTED = ['/etc/wireguard', '/etc/wgjit', '/run/wireguard'];

type Role = 'gateway' | 'daemon' | 'client';
interface Block {
  role: Role;
  code: string;
}

/** The README's marked blocks, in order. */
function readmeBlocks(text: string): Block[] {
  const blocks: Block[] = [];
  for (const m of text.matchAll(/<!-- readme-test: (\w+) -->\n```sh\n([\s\S]*?)```/g)) {
    const role = m[1] as Role;
    if (!['gateway', 'daemon', 'client'].includes(role)) throw new Error(`README: unknown readme-test role ${role}`);
    blocks.push({ role, code: m[2]! });
  }
  return blocks;
}

describe('the README, run as written', () => {
  let tb: Testbed;
  let work: string;
  let redis: Spawned | null = null;
  let daemon: Spawned | null = null;
  const logs: string[] = [];
  const made: string[] = [];
  const output: string[] = [];

  beforeAll(async () => {
    tb = await createTestbed({ prefix: 'rdm', clients: 1, underlayOctet: 85 });
    redis = spawnIn(tb.gatewayNs, 'redis-server', ['--port', String(REDIS_PORT), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no']);
    work = mkdtempSync(join(tmpdir(), 'wgjit-readme-'));
    symlinkSync(join(REPO, 'bin'), join(work, 'bin')); // `./bin/wgjit` from the working directory
    for (const role of ['gateway', 'client']) for (const dir of MOUNTED) mkdirSync(join(work, '.mounts', role, dir), { recursive: true });
    for (const dir of MOUNTED) {
      if (existsSync(dir)) continue;
      mkdirSync(dir, { recursive: true });
      made.push(dir);
    }
  }, 60_000);

  afterAll(async () => {
    // The daemon under its shell and wireguard-go, started by the blocks, run
    // on in the namespaces: stop every process there.
    for (const ns of [tb?.gatewayNs, tb?.clients[0]?.ns]) {
      if (ns === undefined) continue;
      const pids = (await run('ip', ['netns', 'pids', ns]).catch(() => ({ stdout: '' }))).stdout.split('\n').filter(Boolean);
      for (const pid of pids) {
        try {
          process.kill(Number(pid), 'SIGTERM');
        } catch {
          // gone already
        }
      }
    }
    await daemon?.kill();
    await redis?.kill();
    await tb?.destroy();
    for (const dir of made.reverse()) rmSync(dir, { recursive: true, force: true });
    if (work) rmSync(work, { recursive: true, force: true });
  });

  /** The command line that runs `code` as `role`, in its namespace, with its mounts and its shell's state. */
  const command = (role: 'gateway' | 'client', code: string): [string, string[]] => {
    const ns = role === 'gateway' ? tb.gatewayNs : tb.clients[0]!.ns;
    const mounts = MOUNTED.map((dir) => `mount --bind ${join(work, '.mounts', role, dir)} ${dir}`).join(' && ');
    const state = join(work, `.${role}.env`);
    const script = `${mounts} && cd "$1" && { [ -f "$2" ] && . "$2"; true; } && bash -e -c "$3
export -p > \\"$2\\""`;
    const replaced = code.replaceAll('eth0', tb.uplink).replaceAll('203.0.113.1', tb.gatewayAddress);
    return ['ip', ['netns', 'exec', ns, 'unshare', '--mount', '--propagation', 'private', 'bash', '-c', script, 'readme', work, state, replaced]];
  };

  it("takes a new user from an empty gateway to a client whose first initiation is answered, and `wgjit status` shows it; nothing secret is logged", async () => {
    const blocks = readmeBlocks(readFileSync(join(REPO, 'README.md'), 'utf8'));
    expect(blocks.map((b) => b.role)).toEqual(['gateway', 'daemon', 'client', 'gateway', 'client', 'gateway']);

    for (const { role, code } of blocks) {
      if (role === 'daemon') {
        const [cmd, args] = command('gateway', code);
        let partial = '';
        daemon = spawnIn(null, cmd, args, {
          onStdout: (chunk) => {
            const lines = (partial + chunk).split('\n');
            partial = lines.pop()!;
            logs.push(...lines);
          },
        });
        const listening = () => nsRun(tb.gatewayNs, 'bash', ['-c', `exec 3<>/dev/tcp/${API.replace(':', '/')}`]).then(() => true, () => false);
        await waitFor('the daemon from the README to serve its API', async () => !daemon!.isRunning() || (await listening()), START_TIMEOUT_MS, 100);
        expect(daemon.isRunning(), daemon.stderrTail()).toBe(true);
        continue;
      }
      const [cmd, args] = command(role, code);
      const { stdout, stderr } = await run(cmd, args, { timeoutMs: 60_000 }).catch((err: Error) => {
        throw new Error(`README block (${role}) failed:\n${code}\n${err.message}`);
      });
      output.push(stdout, stderr);
    }

    const clientKey = readFileSync(join(work, 'client.pub'), 'utf8').trim();
    const status = output.at(-2)!;
    expect(status).toContain(clientKey);
    const admissions = logs.filter((l) => l.includes('"msg":"admission"') && l.includes(clientKey));
    expect(admissions.length).toBeGreaterThanOrEqual(1);
    expect(admissions[0]).toContain('"decision":"installed"');
    const metrics = (await nsRun(tb.gatewayNs, 'curl', ['-sf', `http://${API}/metrics`])).stdout;
    // One initiation seen in all: the first was answered, no retry came.
    const initiations = [...metrics.matchAll(/^wgjit_initiations_total\{([^}]*)\} (\d+)$/gm)].filter((m) => m[2] !== '0');
    expect(initiations.map((m) => `${m[1]} ${m[2]}`)).toEqual(['result="installed",verified="true" 1']);
    expect(metrics).toMatch(/^wgjit_cold_connect_seconds_count 1$/m);

    const secrets = [
      readFileSync(join(work, 'client.key'), 'utf8').trim(),
      readFileSync(join(work, '.mounts/gateway/etc/wireguard/wg0.key'), 'utf8').trim(),
      readFileSync(join(work, '.mounts/gateway/etc/wgjit/api-token'), 'utf8').trim(),
    ];
    expect(secrets.every((s) => s.length >= 40)).toBe(true);
    const spellings = secrets.flatMap((s) => [s, Buffer.from(s, 'base64').toString('hex'), Buffer.from(s, 'base64').toString('base64url')]);
    expect(logs.length).toBeGreaterThan(5);
    for (const line of [...logs, daemon!.stderrTail()]) for (const secret of spellings) expect(line.includes(secret), `a secret in: ${line}`).toBe(false);
  }, 180_000);
});
