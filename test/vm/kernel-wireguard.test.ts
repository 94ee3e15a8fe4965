/**
 * Runs inside the test VM (make test-vm): the kernel has WireGuard.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nsRun, run } from '../../harness/testbed/exec.js';
import { createNamespace, deleteNamespace, listNamespaces } from '../../harness/testbed/netns.js';

const NS = 'vmk-wg';
const DEV = 'wg0';
const PORT = 51820;

describe('kernel WireGuard', () => {
  let keyDir = '';
  beforeAll(async () => {
    keyDir = mkdtempSync(join(tmpdir(), 'vmk-keys-'));
    await createNamespace(NS);
  });
  afterAll(async () => {
    await deleteNamespace(NS);
    rmSync(keyDir, { recursive: true, force: true });
  });

  it('creates a wireguard device in a namespace, configures it and reads it back', async () => {
    const { stdout: privateKey } = await run('wg', ['genkey']);
    const { stdout: publicKey } = await run('wg', ['pubkey'], { input: privateKey });

    await nsRun(NS, 'ip', ['link', 'add', 'dev', DEV, 'type', 'wireguard']);
    const { stdout: details } = await nsRun(NS, 'ip', ['-d', 'link', 'show', 'dev', DEV]);
    expect(details).toMatch(/\bwireguard\b/);

    // `wg set` reads the key from a file (node's stdin pipes are sockets: no /dev/stdin).
    const keyFile = join(keyDir, 'private');
    writeFileSync(keyFile, privateKey, { mode: 0o600 });
    await nsRun(NS, 'wg', ['set', DEV, 'listen-port', String(PORT), 'private-key', keyFile]);
    const { stdout: dump } = await nsRun(NS, 'wg', ['show', DEV, 'dump']);
    // First line: private-key public-key listen-port fwmark.
    const [priv, pub, port, fwmark] = dump.split('\n')[0]!.split('\t');
    expect(priv).toBe(privateKey.trim());
    expect(pub).toBe(publicKey.trim());
    expect(port).toBe(String(PORT));
    expect(fwmark).toBe('off');

    await nsRun(NS, 'ip', ['link', 'delete', 'dev', DEV]);
    const { stdout: links } = await nsRun(NS, 'ip', ['-o', 'link', 'show']);
    expect(links).not.toContain(DEV);
  });

  it('has left no namespace behind after deleting one', async () => {
    await createNamespace(`${NS}-2`);
    expect(await listNamespaces()).toContain(`${NS}-2`);
    await deleteNamespace(`${NS}-2`);
    expect(await listNamespaces()).not.toContain(`${NS}-2`);
  });
});
