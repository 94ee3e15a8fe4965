/**
 * The device contract (test/contract/device-contract.ts) on the userspace
 * API backend, against wireguard-go in namespace dc-u.
 */
import { afterAll, beforeAll } from 'vitest';
import { generatePrivateKey } from '../../harness/noise/keys.js';
import { UapiDevice } from '../../src/install/uapi.js';
import { createNamespace, deleteNamespace } from '../../harness/testbed/netns.js';
import { WgInterface } from '../../harness/testbed/wireguard.js';
import { deviceContract } from '../contract/device-contract.js';

const NS = 'dc-u';
const LISTEN_PORT = 51_960;

beforeAll(() => createNamespace(NS));
afterAll(() => deleteNamespace(NS));

deviceContract('userspace API on wireguard-go', async (n) => {
  const wg = await WgInterface.start({ ns: NS, ifname: `dcu${n}`, privateKey: generatePrivateKey(), listenPort: LISTEN_PORT + n });
  const device = await UapiDevice.open(wg.ifname);
  return {
    device,
    publicKey: wg.publicKey,
    listenPort: LISTEN_PORT + n,
    destroyInterface: () => wg.stop(),
    cleanup: async () => {
      await device.close();
      await wg.stop();
    },
  };
});
