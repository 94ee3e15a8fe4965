import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { REDIS_URL_FORMS } from '../../src/authorize/redis-url.js';
import { TIMESTAMP_RETENTION_MS } from '../../src/authorize/store.js';
import { ConfigError, envName, MAX_TIMESTAMP_AGE_S, maskSecrets, resolveRedisPassword, resolveServerToken, resolveSettings, resolveToken, SETTINGS } from '../../src/cli/settings.js';
import { MIN_TOKEN_BYTES, tokenProblem } from '../../src/api/token.js';

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
    expect(() => resolveSettings(['redis'], {}, { WGJIT_REDIS: 'http://x' })).toThrow(/^WGJIT_REDIS is invalid: the scheme "http" is not a Redis scheme; expected redis:/);
    expect(() => resolveSettings(['redis'], {}, {})).toThrow(ConfigError);
    expect(() => resolveSettings(['redis'], {}, {})).toThrow(/missing --redis \(or WGJIT_REDIS\)/);
    expect(() => resolveSettings(['apiListen'], { 'api-listen': '9180' }, {})).toThrow(/HOST:PORT/);
    expect(() => resolveSettings(['captureDev'], { 'capture-dev': 'eth0,this-name-is-far-too-long' }, {})).toThrow(/interface name/);
  });

  it('--max-timestamp-age: off by default, at most the store\'s timestamp retention', () => {
    expect(resolveSettings(['maxTimestampAge'], {}, {}).maxTimestampAge).toBe(0);
    expect(resolveSettings(['maxTimestampAge'], {}, { WGJIT_MAX_TIMESTAMP_AGE: '600' }).maxTimestampAge).toBe(600);
    expect(MAX_TIMESTAMP_AGE_S * 1000).toBe(TIMESTAMP_RETENTION_MS);
    expect(() => resolveSettings(['maxTimestampAge'], { 'max-timestamp-age': String(MAX_TIMESTAMP_AGE_S + 1) }, {})).toThrow(/--max-timestamp-age.*seconds, 0\.\./);
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
    expect(() => resolveSettings(['backend'], { config: join(dir, 'missing.json') }, {})).toThrow(/cannot read config file.*: no such file$/);
  });

  it('reads the token from a file before the variable, and refuses an empty file', () => {
    expect(resolveToken({ apiTokenFile: file('t', 'secret\n'), apiToken: 'other' })).toBe('secret');
    expect(resolveToken({ apiToken: 'other' })).toBe('other');
    expect(() => resolveToken({ apiTokenFile: file('e', '\n') })).toThrow(/is empty/);
  });

  describe('the token a server starts with', () => {
    const GOOD = 'a'.repeat(MIN_TOKEN_BYTES);
    const SHORT = 'a'.repeat(MIN_TOKEN_BYTES - 1);

    it.each([
      ['empty', '', /^empty$/],
      ['one character', 'x', /^the token is 1 bytes, shorter than 16; make one with head -c 32/],
      ['15 bytes', SHORT, /^the token is 15 bytes, shorter than 16/],
      // Counted in bytes: 8 two-byte characters are 16.
      ['a space inside', 'abcdefgh ijklmnop', /^the token has whitespace inside it/],
      ['a tab inside', 'abcdefgh\tijklmnop', /whitespace inside/],
      ['a line break inside', 'abcdefgh\nijklmnop', /whitespace inside/],
      ['a trailing newline (not trimmed where it is not a file)', `${GOOD}\n`, /whitespace inside/],
    ])('refuses %s', (_, token, re) => {
      expect(tokenProblem(token)).toMatch(re);
    });

    it('takes 16 bytes or more without whitespace, counting bytes, not characters', () => {
      expect(tokenProblem(GOOD)).toBeNull();
      expect(tokenProblem('é'.repeat(8))).toBeNull();
      expect(tokenProblem('é'.repeat(7))).toMatch(/14 bytes/);
      expect(tokenProblem('Zm9vYmFyYmF6cXV4cXV1eHh5enp5enp5enp5enp5enp5enp5eg==')).toBeNull();
    });

    it('--api-token and WGJIT_API_TOKEN: an error that names the setting, never the token', () => {
      expect(() => resolveSettings(['apiToken'], { 'api-token': SHORT }, {})).toThrow(/^--api-token is invalid: the token is 15 bytes, shorter than 16; .*expected at least 16 bytes, no whitespace$/);
      expect(() => resolveSettings(['apiToken'], {}, { WGJIT_API_TOKEN: 'hunter2 hunter2 hunter2' })).toThrow(/^WGJIT_API_TOKEN is invalid: the token has whitespace inside it/);
      for (const [flags, env] of [[{ 'api-token': SHORT }, {}], [{}, { WGJIT_API_TOKEN: 'hunter2 hunter2 hunter2' }]] as const) {
        try {
          resolveSettings(['apiToken'], flags, env);
        } catch (err) {
          expect((err as Error).message).not.toContain(SHORT);
          expect((err as Error).message).not.toContain('hunter2');
        }
      }
      expect(resolveSettings(['apiToken'], { 'api-token': GOOD }, {}).apiToken).toBe(GOOD);
    });

    it('--api-token-file: trims the line ends as before, then names the file, never the token', () => {
      expect(resolveServerToken({ apiTokenFile: file('good', `${GOOD}\n`) })).toBe(GOOD);
      const short = file('short', 'tiny\n');
      expect(() => resolveServerToken({ apiTokenFile: short })).toThrow(new RegExp(`^--api-token-file ${short}: the token is 4 bytes, shorter than 16`));
      const spaced = file('spaced', 'abcdefgh ijklmnopq\n');
      expect(() => resolveServerToken({ apiTokenFile: spaced })).toThrow(ConfigError);
      expect(() => resolveServerToken({ apiTokenFile: spaced })).toThrow(/whitespace inside/);
      expect(() => resolveServerToken({ apiTokenFile: spaced })).not.toThrow(/abcdefgh/);
      expect(() => resolveServerToken({})).toThrow(/^no API token: set --api-token-file FILE or WGJIT_API_TOKEN$/);
      // The client's reading is unchanged: it sends whatever the server was given.
      expect(resolveToken({ apiTokenFile: short })).toBe('tiny');
    });
  });

  it('takes every --redis form, and refuses a malformed one in one line', () => {
    for (const url of ['redis://h:1/2', 'rediss://h:1', '/run/redis.sock', 'redis+sentinel://a:1,b:2/mymaster/1', 'rediss+sentinel://a:1/m', 'redis+cluster://a:1,b:2', 'rediss+cluster://a:1']) {
      expect(resolveSettings(['redis'], { redis: url }, {}).redis).toBe(url);
    }
    expect(() => resolveSettings(['redis'], { redis: 'redis+sentinel://a:1' }, {})).toThrow(/master name is missing/);
  });

  it('--redis-wait-replicas: 0 by default, a small whole number', () => {
    expect(resolveSettings(['redisWaitReplicas'], {}, {}).redisWaitReplicas).toBe(0);
    expect(resolveSettings(['redisWaitReplicas'], {}, { WGJIT_REDIS_WAIT_REPLICAS: '1' }).redisWaitReplicas).toBe(1);
    expect(() => resolveSettings(['redisWaitReplicas'], { 'redis-wait-replicas': '17' }, {})).toThrow(/out of range 0..16/);
  });

  it('reads the Redis password from its file, from flag, environment or config file, and refuses a bad one without showing it', () => {
    const pw = file('redis-pw', 'hunter2 with spaces\n');
    for (const [flags, env] of [
      [{ redis: 'redis://h:1', 'redis-password-file': pw }, {}],
      [{ redis: 'redis://h:1' }, { WGJIT_REDIS_PASSWORD_FILE: pw }],
      [{ config: file('pw.json', { redis: 'redis+sentinel://wgjit@a:1/m', 'redis-password-file': pw }) }, {}],
    ] as const) {
      const s = resolveSettings(['redis', 'redisPasswordFile'], flags, env);
      expect(resolveRedisPassword(s)).toBe('hunter2 with spaces');
    }
    expect(resolveRedisPassword({ redis: 'redis://h:1' })).toBeUndefined();
    expect(resolveRedisPassword({ redis: 'redis://h:1', redisPasswordFile: file('crlf', 'pw\r\n') })).toBe('pw');
    const bad: Array<[string, RegExp]> = [
      [join(dir, 'no-such-file'), /cannot read --redis-password-file .*: no such file$/],
      [file('empty', ''), /is empty/],
      [file('newline', '\n'), /is empty/],
      [file('two-lines', 'hunter2\nhunter3\n'), /more than one line/],
    ];
    for (const [path, message] of bad) {
      expect(() => resolveRedisPassword({ redis: 'redis://h:1', redisPasswordFile: path })).toThrow(message);
    }
    expect(() => resolveRedisPassword({ redis: 'redis://:inurl@h:1', redisPasswordFile: pw })).toThrow(/given twice/);
    for (const [path] of [...bad, [pw]]) {
      try {
        resolveRedisPassword({ redis: 'redis://:inurl@h:1', redisPasswordFile: path });
      } catch (err) {
        expect((err as Error).message).not.toMatch(/hunter|inurl/);
      }
    }
  });

  it('never echoes a bad --redis, from any source: names the source and what is wrong, and lists every form', () => {
    // A password in a URL, and one pasted alone where the URL belongs: neither can be shown, masked or not.
    const bad: Array<[string, RegExp]> = [
      ['redis://secretuser:secretpw@secrethost:notaport/0', /the port of the host is not a number/],
      ['http://secretuser:secretpw@secrethost:6379', /the scheme "http" is not a Redis scheme/],
      ['secretpw', /not a Redis URL \(SCHEME:\/\/…\) or a socket path/],
    ];
    for (const [value, problem] of bad) {
      const config = file('store.json', { redis: value });
      for (const [flags, env, where] of [
        [{ redis: value }, {}, '--redis'],
        [{}, { WGJIT_REDIS: value }, 'WGJIT_REDIS'],
        [{ config }, {}, `"redis" in ${config}`],
      ] as const) {
        let message = '';
        try {
          resolveSettings(['redis'], flags, env);
        } catch (err) {
          message = (err as Error).message;
        }
        expect(message.startsWith(`${where} is invalid: `)).toBe(true);
        expect(message).toMatch(problem);
        expect(message).not.toMatch(/secret/);
        // The accepted forms, the Cluster's among them.
        expect(message).toContain(`; expected ${REDIS_URL_FORMS}`);
        expect(message).toContain('redis+cluster://');
      }
    }
  });

  it('masks credentials and secret query parameters, also in values that are not URLs', () => {
    expect(maskSecrets('redis://u:secretpw@host:6379/0')).toBe('redis://u:***@host:6379/0');
    expect(maskSecrets('rediss://:secretpw@host')).toBe('rediss://:***@host');
    expect(maskSecrets('redis://secrettoken@host')).toBe('redis://***@host');
    // A password holding '@', '/' or ':' is masked whole.
    expect(maskSecrets('redis://u:se@cr/et:pw@host')).toBe('redis://u:***@host');
    expect(maskSecrets('u:secretpw@host:6379')).toBe('u:***@host:6379');
    expect(maskSecrets('redis://host?password=secretpw&db=1')).toBe('redis://host?password=***&db=1');
    expect(maskSecrets('redis://host/0?x=1&authToken=secret')).toBe('redis://host/0?x=1&authToken=***');
    expect(maskSecrets('redis://host:6379')).toBe('redis://host:6379');
    expect(maskSecrets('eth0,eth1')).toBe('eth0,eth1');
  });

  it('never shows a secret setting, nor the text of a config file that is not JSON', () => {
    expect(() => resolveSettings(['apiToken'], { 'api-token': '' }, {})).toThrow(/^--api-token is invalid: empty;/);
    let message = '';
    try {
      resolveSettings(['redis'], { config: file('broken.json', 'x{"redis": "redis://u:secretpw@h"}') }, {});
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/not valid JSON/);
    expect(message).not.toContain('secretpw');
  });

  it("names each setting after its flag, the name the daemon's options use", () => {
    for (const [name, spec] of Object.entries(SETTINGS)) {
      expect(name).toBe(spec.flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase()));
    }
  });

  it('is imported by the CLI alone: no stage, the API or the daemon imports src/cli/ back', () => {
    const src = fileURLToPath(new URL('../../src', import.meta.url));
    const cli = join(src, 'cli');
    const entry = join(src, 'cli.ts');
    const upward = readdirSync(src, { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.ts'))
      .map((f) => join(src, f))
      .filter((file) => file !== entry && !file.startsWith(`${cli}/`))
      .flatMap((file) =>
        [...readFileSync(file, 'utf8').matchAll(/(?:from|import\()\s*'(\.[^']+)'/g)]
          .map((m) => resolve(dirname(file), m[1]!))
          .filter((target) => target.startsWith(`${cli}/`))
          .map((target) => `${file.slice(src.length + 1)} imports ${target.slice(src.length + 1)}`),
      );
    expect(upward).toEqual([]);
  });

  it('spells environment variables as the contract does', () => {
    expect(envName('api-token-file')).toBe('WGJIT_API_TOKEN_FILE');
    expect(envName('redis')).toBe('WGJIT_REDIS');
  });
});
