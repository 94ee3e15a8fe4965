/*
 * Interop of src/handshake with a real WireGuard implementation (wireguard-go).
 *
 *   network namespace hs-a (loopback only)
 *   ┌───────────────────────────────────────────────────────────────────┐
 *   │                                                                   │
 *   │  node (our initiator) ── initiation ──▶ hswg0  127.0.0.1:51820    │
 *   │                       ◀── response ───  (wireguard-go, responder) │
 *   │                       ── keepalive ──▶                            │
 *   │                                                                   │
 *   │  hswg1 (wireguard-go, client) ── initiation ──▶ node UDP listener │
 *   │     peer: hswg0's key, endpoint 127.0.0.1:51821  (our responder   │
 *   │                                                   verifies it)    │
 *   └───────────────────────────────────────────────────────────────────┘
 *
 * Set WGJIT_WRITE_VECTORS=1 to also store the captured initiation as
 * test/vectors/wireguard-go-initiation.json (a unit test replays it).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consumeResponse, createInitiation, createKeepalive } from '../../harness/noise/initiator.js';
import { formatKey, keyToHex, PublicKey, publicKeyOf } from '../../src/handshake/keys.js';
import { generatePrivateKey } from '../../harness/noise/keys.js';
import { MESSAGE_INITIATION_SIZE, MESSAGE_RESPONSE_SIZE, MESSAGE_TYPE_RESPONSE } from '../../src/handshake/messages.js';
import { createResponder } from '../../harness/noise/responder.js';
import { tai64nNow } from '../../harness/noise/tai64n.js';
import { tai64nToUnixMs } from '../../src/handshake/tai64n.js';

const NETNS = 'hs-a';
const SERVER_IF = 'hswg0';
const CLIENT_IF = 'hswg1';
const SERVER_PORT = 51820;
const LISTENER_PORT = 51821;
const CLIENT_PORT = 51822;
const RUN_DIR = '/var/run/wireguard';
/** How long to wait for wireguard-go to answer or to start; generous for a loaded 2-core box. */
const WAIT_MS = 10_000;
const CLIENT_ALLOWED_IP = '10.77.0.2/32';
/** A client's clock and ours are the same machine here; this only catches a wrong epoch. */
const CLOCK_SLACK_MS = 60_000;

function missingCapability(): string | null {
  if (process.getuid?.() !== 0) return 'needs root for network namespaces';
  for (const tool of ['wireguard-go', 'wg', 'ip']) {
    try {
      execFileSync('which', [tool], { stdio: 'ignore' });
    } catch {
      return `${tool} is not installed`;
    }
  }
  if (!existsSync('/dev/net/tun')) return '/dev/net/tun is absent';
  return null;
}

const skipReason = missingCapability();
if (skipReason) console.warn(`handshake interop skipped: ${skipReason}`);

function ns(args: string[]): string {
  return execFileSync('ip', ['netns', 'exec', NETNS, ...args], { encoding: 'utf8' });
}

/**
 * `wg set` with one key read from /dev/stdin. The key travels in the
 * environment and a shell pipe (wg cannot open node's stdin, a socket), so
 * it never lands in a file or in argv.
 */
function wgSetWithKey(key: Uint8Array, args: string[]): void {
  execFileSync('ip', ['netns', 'exec', NETNS, 'sh', '-c', 'printf "%s\\n" "$WG_KEY" | wg set "$@"', 'sh', ...args], {
    env: { ...process.env, WG_KEY: formatKey(key) },
  });
}

function wgSet(ifname: string, privateKey: Uint8Array, args: string[]): void {
  wgSetWithKey(privateKey, [ifname, 'private-key', '/dev/stdin', ...args]);
}

function deleteNetns(): void {
  try {
    execFileSync('ip', ['netns', 'del', NETNS], { stdio: 'ignore' });
  } catch {
    /* absent */
  }
  // A socket left by a crashed run would make startWireguardGo return early.
  for (const ifname of [SERVER_IF, CLIENT_IF]) rmSync(`${RUN_DIR}/${ifname}.sock`, { force: true });
}

async function waitFor(what: string, check: () => boolean): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const children: ChildProcess[] = [];

async function startWireguardGo(ifname: string): Promise<void> {
  const child = spawn('ip', ['netns', 'exec', NETNS, 'wireguard-go', '-f', ifname], { stdio: 'ignore' });
  children.push(child);
  await waitFor(`${ifname}.sock`, () => existsSync(`${RUN_DIR}/${ifname}.sock`));
}

/** A node process inside the namespace that runs `script` with `args`; resolves with its stdout lines. */
function nsNode(script: string, args: string[]): { child: ChildProcess; lines: AsyncIterableIterator<string> } {
  const child = spawn('ip', ['netns', 'exec', NETNS, process.execPath, '-e', script, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  return { child, lines };
}

async function nextLine(lines: AsyncIterableIterator<string>, what: string): Promise<string> {
  const timer = new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), WAIT_MS));
  const line = await Promise.race([lines.next(), timer]);
  if (line.done) throw new Error(`no output while waiting for ${what}`);
  return line.value;
}

// Sends argv[1] (hex) to 127.0.0.1:argv[2], prints the first reply as hex, exits.
const EXCHANGE = `
const s = require('dgram').createSocket('udp4');
s.on('message', (m) => { console.log(m.toString('hex')); s.close(); });
s.bind(0, '127.0.0.1', () => s.send(Buffer.from(process.argv[1], 'hex'), +process.argv[2], '127.0.0.1'));`;

// Sends argv[1] (hex) to 127.0.0.1:argv[2] and exits.
const SEND = `
const s = require('dgram').createSocket('udp4');
s.send(Buffer.from(process.argv[1], 'hex'), +process.argv[2], '127.0.0.1', () => s.close());`;

// Listens on 127.0.0.1:argv[1], prints "ready", then the first datagram as hex.
const LISTEN = `
const s = require('dgram').createSocket('udp4');
s.on('message', (m) => { console.log(m.toString('hex')); s.close(); });
s.bind(+process.argv[1], '127.0.0.1', () => console.log('ready'));`;

async function exchange(message: Uint8Array, port: number): Promise<Uint8Array> {
  const { lines } = nsNode(EXCHANGE, [keyToHex(message), String(port)]);
  return Buffer.from(await nextLine(lines, 'a reply from wireguard-go'), 'hex');
}

function latestHandshake(ifname: string, peer: Uint8Array): number {
  const out = ns(['wg', 'show', ifname, 'latest-handshakes']);
  const line = out.split('\n').find((l) => l.startsWith(formatKey(peer)));
  return line ? Number(line.split('\t')[1]) : 0;
}

describe.skipIf(skipReason !== null)('handshake interop with wireguard-go', () => {
  const serverKey = generatePrivateKey();
  const serverPublic = publicKeyOf(serverKey);
  const ourClientKey = generatePrivateKey();
  const goClientKey = generatePrivateKey();
  const presharedKey = generatePrivateKey();

  beforeAll(async () => {
    deleteNetns();
    execFileSync('ip', ['netns', 'add', NETNS]);
    ns(['ip', 'link', 'set', 'lo', 'up']);
    await startWireguardGo(SERVER_IF);
    wgSet(SERVER_IF, serverKey, [
      'listen-port', String(SERVER_PORT),
      'peer', formatKey(publicKeyOf(ourClientKey)), 'allowed-ips', CLIENT_ALLOWED_IP,
    ]);
    ns(['ip', 'link', 'set', SERVER_IF, 'up']);
  });

  afterAll(() => {
    for (const child of children) if (child.exitCode === null) child.kill();
    deleteNetns();
  });

  it('wireguard-go answers our initiation, and takes our keepalive as the session confirmation', async () => {
    const clientPublic = publicKeyOf(ourClientKey);
    const { message, senderIndex, state } = createInitiation({ initiatorPrivateKey: ourClientKey, responderPublicKey: serverPublic });
    const response = await exchange(message, SERVER_PORT);

    expect(response.length).toBe(MESSAGE_RESPONSE_SIZE);
    expect(response[0]).toBe(MESSAGE_TYPE_RESPONSE);
    expect(Buffer.from(response).readUInt32LE(8)).toBe(senderIndex);
    const result = consumeResponse(state, response);
    expect(result).toMatchObject({ ok: true });
    if (!result.ok) return;

    expect(latestHandshake(SERVER_IF, clientPublic)).toBe(0);
    nsNode(SEND, [keyToHex(createKeepalive(result.session)), String(SERVER_PORT)]);
    await waitFor('the keepalive to confirm the session', () => latestHandshake(SERVER_IF, clientPublic) > 0);
  });

  it('with a preshared key, the response only opens with that key', async () => {
    wgSetWithKey(presharedKey, [SERVER_IF, 'peer', formatKey(publicKeyOf(ourClientKey)), 'preshared-key', '/dev/stdin']);
    // wireguard-go drops initiations that come within 20 ms of the last one from a peer.
    await new Promise((r) => setTimeout(r, 50));
    // The same inputs give the same initiation and state: one per attempt at the response.
    const opts = { initiatorPrivateKey: ourClientKey, responderPublicKey: serverPublic, ephemeralPrivateKey: generatePrivateKey(), timestamp: tai64nNow() };
    const { message, state } = createInitiation(opts);
    const response = await exchange(message, SERVER_PORT);

    const again = createInitiation({ ...opts, senderIndex: state.senderIndex });
    expect(again.message).toEqual(message);
    expect(consumeResponse(again.state, response)).toEqual({ ok: false, reason: 'empty_decrypt' });
    expect(consumeResponse(state, response, presharedKey)).toMatchObject({ ok: true });
  });

  it('our responder verifies an initiation from a real wireguard-go client and names its key', async () => {
    const listener = nsNode(LISTEN, [String(LISTENER_PORT)]);
    expect(await nextLine(listener.lines, 'the UDP listener')).toBe('ready');
    await startWireguardGo(CLIENT_IF);
    wgSet(CLIENT_IF, goClientKey, [
      'listen-port', String(CLIENT_PORT),
      // A new persistent keepalive makes the client send a handshake at once.
      'peer', formatKey(serverPublic), 'endpoint', `127.0.0.1:${LISTENER_PORT}`, 'allowed-ips', '10.77.0.1/32', 'persistent-keepalive', '1',
    ]);
    ns(['ip', 'link', 'set', CLIENT_IF, 'up']);
    const captured = Buffer.from(await nextLine(listener.lines, 'the client initiation'), 'hex');
    expect(captured.length).toBe(MESSAGE_INITIATION_SIZE);

    for (const backend of ['node', 'noble'] as const) {
      const result = createResponder(serverKey, { crypto: backend }).verify(captured);
      expect(result).toMatchObject({ ok: true, initiatorKey: PublicKey.fromBytes(publicKeyOf(goClientKey)) });
      if (!result.ok) continue;
      expect(result.senderIndex).toBe(captured.readUInt32LE(4));
      expect(Math.abs(tai64nToUnixMs(result.timestamp) - Date.now())).toBeLessThan(CLOCK_SLACK_MS);
    }
    // Another interface key cannot open it, and mac1 tells so before any DH.
    expect(createResponder(generatePrivateKey()).verify(captured)).toEqual({ ok: false, reason: 'mac1' });

    if (process.env.WGJIT_WRITE_VECTORS === '1') {
      const out = new URL('../vectors/wireguard-go-initiation.json', import.meta.url);
      const vector = {
        source: `wireguard-go ${execFileSync('wireguard-go', ['--version'], { encoding: 'utf8' }).split('\n')[0]}`,
        responderPrivateKey: keyToHex(serverKey),
        initiatorPublicKey: formatKey(publicKeyOf(goClientKey)),
        message: keyToHex(captured),
      };
      writeFileSync(out, JSON.stringify(vector, null, 2) + '\n');
    }
  });
});
