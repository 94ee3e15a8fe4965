/**
 * UapiDevice reassembling replies that arrive in pieces, against a scripted
 * UNIX socket in a temp dir (no namespace, no wireguard-go): the reply's
 * blank line split across reads, and a multi-byte character split between
 * two (UTF-8 is decoded once the reply is whole, not per read).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatKey, PublicKey } from '../../src/handshake/keys.js';
import { UapiDevice } from '../../src/install/uapi.js';

const KEY_HEX = 'ab'.repeat(32);
const KEY = formatKey(new Uint8Array(32).fill(0xab));

/** Writes each piece as its own write, a few ms apart, so the reader sees them in separate reads. */
async function answer(name: string, dir: string, pieces: (request: string) => Buffer[]): Promise<Server> {
  const server = createServer((socket) => {
    let buffered = '';
    socket.on('data', async (data) => {
      buffered += data.toString();
      const end = buffered.indexOf('\n\n');
      if (end < 0) return;
      const request = buffered.slice(0, end + 2);
      buffered = buffered.slice(end + 2);
      for (const piece of pieces(request)) {
        socket.write(piece);
        await new Promise((r) => setTimeout(r, 5));
      }
    });
  });
  await new Promise<void>((r) => server.listen(join(dir, `${name}.sock`), r));
  return server;
}

describe('UapiDevice reading a reply in pieces', () => {
  let dir: string;
  const servers: Server[] = [];

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'wgjit-uapi-conn-'));
  });

  afterAll(() => {
    for (const s of servers) s.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('finds the end of a reply whose blank line is split across reads, with a character split between two reads before it', async () => {
    // An unknown key (ignored by the parser) carries the two-byte "é".
    const reply = Buffer.from(`listen_port=51820\nnote=café\npublic_key=${KEY_HEX}\nrx_bytes=7\nerrno=0\n\n`);
    const e = reply.indexOf('é');
    const cut = [e + 1, reply.length - 2, reply.length - 1];
    servers.push(
      await answer('pieces', dir, (request) =>
        request === 'get=1\n\n'
          ? [reply.subarray(0, cut[0]), reply.subarray(cut[0], cut[1]), reply.subarray(cut[1], cut[2]), reply.subarray(cut[2])]
          : [Buffer.from('errno='), Buffer.from('0\n'), Buffer.from('\n')],
      ),
    );
    const device = await UapiDevice.open('pieces', { socketDir: dir });
    try {
      const info = await device.getDevice();
      expect(info.listenPort).toBe(51820);
      expect(info.peers.map((p) => [p.publicKey.toString(), p.rxBytes])).toEqual([[KEY, 7n]]);
      // The same connection then carries a set, whose short reply comes in three pieces too.
      await device.removePeers([PublicKey.parse(KEY)!]);
      expect((await device.listPeers()).length).toBe(1);
    } finally {
      await device.close();
    }
  });
});
