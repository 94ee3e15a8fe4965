/**
 * The device contract (test/contract/device-contract.ts) on the netlink
 * backend, against the kernel's WireGuard. Runs inside the test VM
 * (make test-vm). The interfaces live in the VM's root namespace: a netlink
 * socket speaks to the namespace of the process that opened it.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatKey, publicKeyOf } from '../../src/handshake/keys.js';
import { generatePrivateKey } from '../../harness/noise/keys.js';
import { NetlinkDevice } from '../../src/install/netlink.js';
import { run } from '../../harness/testbed/exec.js';
import { deviceContract } from '../contract/device-contract.js';

const LISTEN_PORT = 51_860;

deviceContract('generic netlink on kernel WireGuard', async (n) => {
  const ifname = `dcn${n}`;
  const privateKey = generatePrivateKey();
  await run('ip', ['link', 'add', ifname, 'type', 'wireguard']);
  const dir = mkdtempSync(join(tmpdir(), 'wgjit-dc-'));
  try {
    writeFileSync(join(dir, 'key'), `${formatKey(privateKey)}\n`, { mode: 0o600 });
    await run('wg', ['set', ifname, 'listen-port', String(LISTEN_PORT + n), 'private-key', join(dir, 'key')]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const device = await NetlinkDevice.open(ifname);
  const removeLink = () => run('ip', ['link', 'del', ifname]).then(
    () => undefined,
    () => undefined,
  );
  return {
    device,
    publicKey: formatKey(publicKeyOf(privateKey)),
    listenPort: LISTEN_PORT + n,
    destroyInterface: removeLink,
    cleanup: async () => {
      await device.close();
      await removeLink();
    },
  };
});
