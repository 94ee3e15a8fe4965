import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { chooseBackend, NoBackendError, openDevice } from '../../src/install/select.js';

const SOCK = '/var/run/wireguard/wg0.sock';
const facts = (kernelLink: boolean, uapiSocket: boolean) => ({ kernelLink, uapiSocket });

describe('backend selection', () => {
  it('auto: netlink for a kernel link, the userspace API when its socket exists, else a reason', () => {
    expect(chooseBackend('wg0', 'auto', facts(true, false), SOCK)).toEqual({ backend: 'netlink' });
    expect(chooseBackend('wg0', 'auto', facts(false, true), SOCK)).toEqual({ backend: 'uapi' });
    const none = chooseBackend('wg0', 'auto', facts(false, false), SOCK);
    expect('error' in none && none.error).toMatch(/neither a kernel WireGuard interface nor served by a userspace WireGuard/);
  });

  it('a forced backend that does not fit says which one would', () => {
    const netlink = chooseBackend('wg0', 'netlink', facts(false, true), SOCK);
    expect('error' in netlink && netlink.error).toMatch(/not a kernel WireGuard interface.*use --backend uapi/);
    const uapi = chooseBackend('wg0', 'uapi', facts(true, false), SOCK);
    expect('error' in uapi && uapi.error).toMatch(/no userspace WireGuard API socket.*use --backend netlink/);
    expect(chooseBackend('wg0', 'netlink', facts(true, true), SOCK)).toEqual({ backend: 'netlink' });
    expect(chooseBackend('wg0', 'uapi', facts(true, true), SOCK)).toEqual({ backend: 'uapi' });
  });

  it('opening an interface no backend serves fails with NoBackendError and the reason', async () => {
    const uapiDir = mkdtempSync(join(tmpdir(), 'wgjit-select-'));
    const opening = openDevice({ interface: 'wgjit-none0', backend: 'auto', uapiDir });
    await expect(opening).rejects.toBeInstanceOf(NoBackendError);
    await expect(opening).rejects.toThrow(/wgjit-none0 is neither a kernel WireGuard interface/);
  });
});
