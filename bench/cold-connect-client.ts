/**
 * The client side of bench/cold-connect.ts, run inside a client network
 * namespace. For each cold client: a fresh key pair registered in the store
 * through the REST API, its own source address, then a WireGuard initiator
 * (our Noise code, checked against wireguard-go in the tests) that behaves
 * like a real client's timers: a new initiation every REKEY_TIMEOUT (5 s)
 * plus up to 333 ms of jitter until a handshake response arrives. It prints
 * one JSON line per client: the time from the first initiation to the
 * response, and how many initiations it took.
 *
 * Usage (see bench/cold-connect.ts): tsx cold-connect-client.ts '<json>'
 */
import { createSocket, type Socket } from 'node:dgram';
import { randomInt } from 'node:crypto';
import { consumeResponse, createInitiation, createKeepalive } from '../harness/noise/initiator.js';
import { formatKey, parseKey, publicKeyOf } from '../src/handshake/keys.js';
import { generatePrivateKey } from '../harness/noise/keys.js';
import { MESSAGE_RESPONSE_SIZE, MESSAGE_TYPE_RESPONSE, RESPONSE_OFF_RECEIVER } from '../src/handshake/messages.js';

export const REKEY_TIMEOUT_MS = 5_000;
export const REKEY_JITTER_MS = 333;
/** A client gives up after this many initiations (REKEY_ATTEMPT_TIME 90 s / 5 s). */
export const MAX_ATTEMPTS = 18;

interface Args {
  gateway: string;
  port: number;
  gatewayPublicKey: string;
  api: string;
  token: string;
  sources: string[];
  concurrency: number;
  tunnelBase: number; // third and fourth octet offset in 10.201.0.0/16
}

const args = JSON.parse(process.argv[2] ?? '{}') as Args;
const responderPublicKey = parseKey(args.gatewayPublicKey)!;

async function register(publicKey: string, index: number): Promise<void> {
  const n = args.tunnelBase + index;
  const res = await fetch(`${args.api}/v1/peers`, {
    method: 'POST',
    headers: { authorization: `Bearer ${args.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ publicKey, allowedIPs: [`10.201.${n >> 8}.${n & 255}/32`] }),
  });
  if (res.status !== 201) throw new Error(`register ${publicKey}: HTTP ${res.status} ${await res.text()}`);
}

function bind(address: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const sock = createSocket('udp4');
    sock.once('error', reject);
    sock.bind({ address, port: 0 }, () => resolve(sock));
  });
}

async function coldConnect(index: number, source: string): Promise<{ ms: number; initiations: number; ok: boolean }> {
  const privateKey = generatePrivateKey();
  await register(formatKey(publicKeyOf(privateKey)), index);
  const sock = await bind(source);
  try {
    return await new Promise((resolve) => {
      let initiations = 0;
      let state: ReturnType<typeof createInitiation>['state'] | null = null;
      let timer: NodeJS.Timeout | null = null;
      let start = 0n;
      const send = () => {
        if (initiations === MAX_ATTEMPTS) {
          resolve({ ms: NaN, initiations, ok: false });
          return;
        }
        const init = createInitiation({ initiatorPrivateKey: privateKey, responderPublicKey });
        state = init.state;
        initiations++;
        // Timed from the first initiation leaving, not from building it.
        if (start === 0n) start = process.hrtime.bigint();
        sock.send(init.message, args.port, args.gateway);
        timer = setTimeout(send, REKEY_TIMEOUT_MS + randomInt(REKEY_JITTER_MS + 1));
      };
      sock.on('message', (msg) => {
        const elapsed = process.hrtime.bigint() - start;
        if (state === null || msg.length !== MESSAGE_RESPONSE_SIZE || msg[0] !== MESSAGE_TYPE_RESPONSE) return;
        if (msg.readUInt32LE(RESPONSE_OFF_RECEIVER) !== state.senderIndex) return;
        const done = consumeResponse(state, msg);
        if (!done.ok) return;
        if (timer !== null) clearTimeout(timer);
        // Confirm the session as a real client does, so the gateway sees a
        // completed handshake.
        sock.send(createKeepalive(done.session), args.port, args.gateway, () =>
          resolve({ ms: Number(elapsed) / 1e6, initiations, ok: true }),
        );
      });
      send();
    });
  } finally {
    sock.close();
  }
}

let next = 0;
async function worker(): Promise<void> {
  while (next < args.sources.length) {
    const i = next++;
    const r = await coldConnect(i, args.sources[i]!);
    process.stdout.write(`${JSON.stringify({ i, ...r })}\n`);
  }
}

await Promise.all(Array.from({ length: args.concurrency }, worker));
// The daemon's own stage timings, for the breakdown table.
const metrics = await (await fetch(`${args.api}/metrics`)).text();
process.stdout.write(`${JSON.stringify({ metrics })}\n`);
