import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, envName, resolveSettings, resolveToken } from '../../src/config.js';

const dir = mkdtempSync(join(tmpdir(), 'wgjit-config-'));
const file = (name: string, body: unknown) => {
  const p = join(dir, name);
  writeFileSync(p, typeof body === 'string' ? body : JSON.stringify(body));
  return p;
};

describe('settings', () => {
  it('takes flags over the environment over the config file over defaults', () => {
    const config = file('a.json', { 'idle-timeout': 60, backend: 'uapi', 'xdp-mode': 'generic' });
    const s = resolveSettings(['idleTimeout', 'backend', 'xdpMode', 'apiListen'], { config, backend: 'auto' }, { WGJIT_IDLE_TIMEOUT: '90' });
    expect(s.backend).toBe('auto'); // flag
    expect(s.idleTimeout).toBe(90); // environment over file
    expect(s.xdpMode).toBe('generic'); // file
    expect(s.apiListen).toEqual({ host: '127.0.0.1', port: 9180 }); // default
  });

  it('names the setting, its source and the accepted form in errors', () => {
    expect(() => resolveSettings(['idleTimeout'], { 'idle-timeout': 'soon' }, {})).toThrow(/--idle-timeout: "soon" is invalid.*expected seconds/);
    expect(() => resolveSettings(['redis'], {}, { WGJIT_REDIS: 'http://x' })).toThrow(/WGJIT_REDIS: .*redis:/);
    expect(() => resolveSettings(['redis'], {}, {})).toThrow(ConfigError);
    expect(() => resolveSettings(['redis'], {}, {})).toThrow(/missing --redis \(or WGJIT_REDIS\)/);
    expect(() => resolveSettings(['apiListen'], { 'api-listen': '9180' }, {})).toThrow(/HOST:PORT/);
    expect(() => resolveSettings(['captureDev'], { 'capture-dev': 'eth0,this-name-is-far-too-long' }, {})).toThrow(/interface name/);
  });

  it('parses lists, addresses and switches', () => {
    const s = resolveSettings(['captureDev', 'apiListen', 'replay'], { 'capture-dev': 'eth0, eth1', 'api-listen': '[::1]:9000', replay: 'off' }, {});
    expect(s.captureDev).toEqual(['eth0', 'eth1']);
    expect(s.apiListen).toEqual({ host: '::1', port: 9000 });
    expect(s.replay).toBe(false);
  });

  it('rejects unknown keys and malformed config files', () => {
    expect(() => resolveSettings(['backend'], { config: file('b.json', { backnd: 'uapi' }) }, {})).toThrow(/unknown setting "backnd"/);
    expect(() => resolveSettings(['backend'], { config: file('c.json', '{ nope') }, {})).toThrow(/not valid JSON/);
    expect(() => resolveSettings(['backend'], { config: file('d.json', [1]) }, {})).toThrow(/JSON object/);
    expect(() => resolveSettings(['backend'], { config: join(dir, 'missing.json') }, {})).toThrow(/cannot read config file.*ENOENT/);
  });

  it('reads the token from a file before the variable, and refuses an empty file', () => {
    expect(resolveToken({ apiTokenFile: file('t', 'secret\n'), apiToken: 'other' })).toBe('secret');
    expect(resolveToken({ apiToken: 'other' })).toBe('other');
    expect(() => resolveToken({ apiTokenFile: file('e', '\n') })).toThrow(/is empty/);
  });

  it('spells environment variables as the contract does', () => {
    expect(envName('api-token-file')).toBe('WGJIT_API_TOKEN_FILE');
    expect(envName('redis')).toBe('WGJIT_REDIS');
  });
});
