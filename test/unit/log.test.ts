import { describe, expect, it } from 'vitest';
import { formatKey, PublicKey } from '../../src/handshake/keys.js';
import { createLogger, LINE_BUDGET_WINDOW_MS, LineBudget, redactQuery, requestSerializer } from '../../src/telemetry/log.js';

describe('LineBudget', () => {
  function budget(perWindow: number) {
    let now = 0;
    return { b: new LineBudget(perWindow, () => now), at: (t: number) => (now = t) };
  }

  it('lets perWindow lines of a key through per window, holds back the rest, and reports them once with the next line written', () => {
    const { b, at } = budget(3);
    expect([b.take('unknown'), b.take('unknown'), b.take('unknown')]).toEqual([0, 0, 0]);
    expect([b.take('unknown'), b.take('unknown')]).toEqual([null, null]);
    at(LINE_BUDGET_WINDOW_MS - 1);
    expect(b.take('unknown')).toBeNull();
    at(LINE_BUDGET_WINDOW_MS);
    expect(b.take('unknown')).toBe(3);
    expect(b.take('unknown')).toBe(0);
  });

  it('keeps one budget per key', () => {
    const { b } = budget(1);
    expect(b.take('unknown')).toBe(0);
    expect(b.take('unknown')).toBeNull();
    expect(b.take('disabled')).toBe(0);
    expect(b.take('disabled')).toBeNull();
  });

  it('refuses a bound that is not a positive integer', () => {
    expect(() => new LineBudget(0)).toThrow(RangeError);
    expect(() => new LineBudget(1.5)).toThrow(RangeError);
  });
});

describe('createLogger', () => {
  it('redacts secrets by path, and writes the level as a word', () => {
    const lines: string[] = [];
    const log = createLogger('info', { write: (l: string) => lines.push(l) });
    log.child({ component: 'api' }).info({ presharedKey: 'PSK', token: 'TOKEN', peer: { privateKey: 'PRIV' } }, 'x');
    expect(lines).toHaveLength(1);
    expect(lines[0]).not.toMatch(/PSK|TOKEN|PRIV/);
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: 'info', component: 'api', presharedKey: '[redacted]' });
  });

  it('spells a PublicKey as wg does, at the top of a line and deep in one (where redaction copies the object)', () => {
    const lines: string[] = [];
    const log = createLogger('info', { write: (l: string) => lines.push(l) });
    const bytes = new Uint8Array(32).fill(0xfb);
    const key = PublicKey.fromBytes(bytes);
    log.info({ publicKey: key, removal: { publicKey: key }, batch: { first: { publicKey: key } } }, 'x');
    expect(JSON.parse(lines[0]!)).toMatchObject({ publicKey: formatKey(bytes), removal: { publicKey: formatKey(bytes) }, batch: { first: { publicKey: formatKey(bytes) } } });
  });
});

describe('redactQuery', () => {
  it('keeps the path and the parameter names, and no value', () => {
    expect(redactQuery('/v1/peers?token=abc123secret&psk=xyz')).toBe('/v1/peers?token=[redacted]&psk=[redacted]');
    expect(redactQuery('/v1/peers?limit=10&cursor=QUJD')).toBe('/v1/peers?limit=[redacted]&cursor=[redacted]');
    expect(redactQuery('/v1/peers/abc%2Bdef%3D')).toBe('/v1/peers/abc%2Bdef%3D');
    expect(redactQuery('/healthz')).toBe('/healthz');
  });

  it('redacts whole a parameter that could be the secret itself: no `=`, or a name that is not a plain word', () => {
    expect(redactQuery('/v1/peers?abc123secret')).toBe('/v1/peers?[redacted]');
    expect(redactQuery('/v1/peers?a%3Db=1&x y=2&limit=3')).toBe('/v1/peers?[redacted]=[redacted]&[redacted]=[redacted]&limit=[redacted]');
    expect(redactQuery('/x?token==secret')).toBe('/x?token=[redacted]');
    expect(redactQuery(`/x?${'n'.repeat(40)}=1`)).toBe('/x?[redacted]=[redacted]');
  });

  it('leaves what holds nothing: an empty value, an empty query, empty parameters', () => {
    expect(redactQuery('/v1/peers?cursor=')).toBe('/v1/peers?cursor=');
    expect(redactQuery('/v1/peers?')).toBe('/v1/peers?');
    expect(redactQuery('/v1/peers?&limit=1&')).toBe('/v1/peers?&limit=[redacted]&');
  });
});

describe('requestSerializer', () => {
  it("gives fastify's request fields with the query's values redacted", () => {
    const req = { method: 'GET', url: '/v1/peers?psk=xyz', host: '127.0.0.1:9180', ip: '127.0.0.1', socket: { remotePort: 40000 } };
    expect(requestSerializer(req)).toEqual({ method: 'GET', url: '/v1/peers?psk=[redacted]', host: '127.0.0.1:9180', remoteAddress: '127.0.0.1', remotePort: 40000 });
  });
});
