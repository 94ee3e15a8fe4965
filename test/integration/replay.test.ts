/**
 * Replay for real: inside the gateway namespace, a captured-like initiation
 * is re-injected through the raw socket and must reach a UDP socket there
 * with the client's original address and port. A copy with a broken UDP
 * checksum, sent just before, must be dropped by the stack (counted in
 * InCsumErrors): that proves the kernel checks the checksum we compute.
 *
 *   ns xa-rcl                  ns xa-rgw
 *   ┌────────────────┐  veth   ┌──────────────────────────────────────┐
 *   │ xa-rcl0        ├─────────┤ xa-rgw0  10.202.0.1, fd00:202::1     │
 *   │ 10.202.0.2     │         │ child: Replayer → raw socket → lo →  │
 *   │ fd00:202::2    │         │        UDP socket on :PORT           │
 *   └────────────────┘         └──────────────────────────────────────┘
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { ADDON_PATH } from '../../src/native-addon.js';
import { createNamespaces, createVeth, deleteNamespaces, isRoot, NsChild, REPO_ROOT, type Message } from './ns-child.js';

const GW = 'xa-rgw';
const CL = 'xa-rcl';
const PORT = 51821;
const CLIENTS = {
  4: { gw: '10.202.0.1', client: '10.202.0.2', port: 40123 },
  6: { gw: 'fd00:202::1', client: 'fd00:202::2', port: 40456 },
} as const;

const skipReason = !isRoot() ? 'needs root (raw sockets and network namespaces)' : !existsSync(ADDON_PATH) ? 'addon not built: run make addon' : null;
if (skipReason !== null) console.warn(`skipping replay integration tests: ${skipReason}`);

const GATEWAY_CHILD = `
import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import { Replayer } from '${REPO_ROOT}/src/replay/replayer.js';
import { buildDatagram } from '${REPO_ROOT}/src/replay/datagram.js';
import { rawSend } from '${REPO_ROOT}/src/capture/addon.js';
import { parseAddress } from '${REPO_ROOT}/src/net/address.js';
const port = Number(process.env.PORT);
const clients = JSON.parse(process.env.CLIENTS);

/* Udp: InCsumErrors from /proc/net/snmp (IPv4) and /proc/net/snmp6. */
function csumErrors() {
  const snmp = readFileSync('/proc/net/snmp', 'utf8').split('\\n').filter((l) => l.startsWith('Udp: '));
  const v4 = Number(snmp[1].split(' ')[snmp[0].split(' ').indexOf('InCsumErrors')]);
  const v6 = Number(/^Udp6InCsumErrors\\s+(\\d+)/m.exec(readFileSync('/proc/net/snmp6', 'utf8'))[1]);
  return { 4: v4, 6: v6 };
}

function message(marker) {
  const m = new Uint8Array(148);
  for (let i = 0; i < m.length; i++) m[i] = (i * 11 + marker) & 0xff;
  m[0] = 1; m[1] = m[2] = m[3] = 0;
  return m;
}

for (const family of [4, 6]) {
  const s = dgram.createSocket(family === 6 ? { type: 'udp6', ipv6Only: true } : { type: 'udp4' });
  s.on('message', (msg, rinfo) => emit({ type: 'udp', family, hex: msg.toString('hex'), address: rinfo.address, port: rinfo.port }));
  await new Promise((res, rej) => { s.once('error', rej); s.bind(port, clients[family].gw, res); });
}

const before = csumErrors();
const replayer = new Replayer();
for (const family of [4, 6]) {
  const c = clients[family];
  const [client, gw] = [c.client, c.gw].map((text) => parseAddress(text).address);
  const event = (marker) => ({ ifindex: 0, family, src: { address: client, port: c.port }, dst: { address: gw, port }, arrivalNs: 0n, message: message(marker) });
  // The control: same packet, UDP checksum off by one.
  const bad = buildDatagram(event(7)).packet;
  const at = (family === 4 ? 20 : 40) + 6;
  bad[at + 1] ^= 1;
  rawSend(family, bad, gw.bytes);
  replayer.replay(event(9));
}
replayer.close();
emit({ type: 'sent', before, expected: { bad: Buffer.from(message(7)).toString('hex'), good: Buffer.from(message(9)).toString('hex') } });
for await (const line of commands) {
  if (JSON.parse(line).cmd === 'counters') emit({ type: 'counters', after: csumErrors() });
}
`;

describe.skipIf(skipReason !== null)('replay through a raw socket in a namespace', () => {
  let gw: NsChild | null = null;

  beforeAll(() => {
    createNamespaces(GW, CL);
    createVeth({
      nsA: GW,
      ifA: 'xa-rgw0',
      nsB: CL,
      ifB: 'xa-rcl0',
      addrsA: [`${CLIENTS[4].gw}/24`, `${CLIENTS[6].gw}/64`],
      addrsB: [`${CLIENTS[4].client}/24`, `${CLIENTS[6].client}/64`],
    });
  });

  afterAll(async () => {
    await gw?.stop();
    deleteNamespaces(GW, CL);
  });

  it('delivers the initiation with the original source, IPv4 and IPv6, and the checksum is checked', async () => {
    gw = NsChild.spawn(GW, GATEWAY_CHILD, { PORT: String(PORT), CLIENTS: JSON.stringify(CLIENTS) });
    const sent = await gw.next<Message & { before: Record<string, number>; expected: { bad: string; good: string } }>((m) => m.type === 'sent');

    for (const family of [4, 6] as const) {
      const got = await gw.next((m) => m.type === 'udp' && m['family'] === family);
      expect(got['address']).toBe(CLIENTS[family].client);
      expect(got['port']).toBe(CLIENTS[family].port);
      // The broken copy went first on the same path; it must not be what arrived.
      expect(got['hex']).toBe(sent.expected.good);
    }

    gw.send({ cmd: 'counters' });
    const { after } = await gw.next<Message & { after: Record<string, number> }>((m) => m.type === 'counters');
    expect(after['4']! - sent.before['4']!).toBe(1);
    expect(after['6']! - sent.before['6']!).toBe(1);
    expect(gw.messages.filter((m) => m.type === 'udp' && m['hex'] === sent.expected.bad)).toEqual([]);
  });
});
