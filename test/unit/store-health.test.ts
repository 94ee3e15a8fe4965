import { describe, expect, it } from 'vitest';
import { StoreHealth } from '../../src/authorize/store-health.js';

function health() {
  const clock = { mono: 0, wall: 1_700_000_000_000 };
  const h = new StoreHealth({ monotonic: () => clock.mono, wall: () => clock.wall });
  const at = (ms: number) => {
    clock.wall += ms - clock.mono;
    clock.mono = ms;
  };
  return { h, at, clock };
}

describe('StoreHealth', () => {
  it('is down and has no success before the first round trip; the first success is the first connection', () => {
    const { h, at } = health();
    expect(h.up).toBe(false);
    expect(h.lastSuccessMs).toBeNull();
    at(40);
    expect(h.succeeded()).toEqual({ to: 'up', first: true, downMs: null });
    expect(h.up).toBe(true);
    expect(h.lastSuccessMs).toBe(1_700_000_000_040);
  });

  it('an outage is one transition down and one up, however many failures and successes come in between', () => {
    const { h, at } = health();
    h.succeeded();
    expect(h.succeeded()).toBeNull();
    at(1_000);
    expect(h.failed('connect ECONNREFUSED 127.0.0.1:6379')).toEqual({ to: 'down', reason: 'connect ECONNREFUSED 127.0.0.1:6379', first: false });
    expect(h.up).toBe(false);
    // Every reconnect attempt fails again, for another reason too: still the same outage.
    for (let t = 1_100; t < 3_000; t += 100) {
      at(t);
      expect(h.failed('connect ECONNREFUSED 127.0.0.1:6379')).toBeNull();
    }
    expect(h.failed('connect ETIMEDOUT')).toBeNull();
    at(3_500);
    expect(h.succeeded()).toEqual({ to: 'up', first: false, downMs: 2_500 });
    // The heartbeat's successes after it are no news.
    at(4_500);
    expect(h.succeeded()).toBeNull();
    expect(h.up).toBe(true);
    // A second outage is reported again.
    at(5_000);
    expect(h.failed('the server kept its connection open but did not answer a PING within 1000 ms')?.to).toBe('down');
    at(5_250);
    expect(h.succeeded()).toEqual({ to: 'up', first: false, downMs: 250 });
  });

  it('the time of the last success stays while the store is down, and moves with the next success', () => {
    const { h, at } = health();
    at(10);
    h.succeeded();
    at(2_000);
    h.failed('x');
    at(9_000);
    h.failed('x');
    expect(h.lastSuccessMs).toBe(1_700_000_000_010);
    at(9_001);
    h.succeeded();
    expect(h.lastSuccessMs).toBe(1_700_000_009_001);
  });

  it('a store unreachable from the start: down once (first), then up once (first), with how long it took', () => {
    const { h, at } = health();
    expect(h.failed('no Cluster node answered')).toEqual({ to: 'down', reason: 'no Cluster node answered', first: true });
    at(700);
    expect(h.failed('no Cluster node answered')).toBeNull();
    expect(h.succeeded()).toEqual({ to: 'up', first: true, downMs: 700 });
    at(800);
    expect(h.failed('x')).toEqual({ to: 'down', reason: 'x', first: false });
  });
});
