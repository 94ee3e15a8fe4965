import { describe, expect, it } from 'vitest';
import { DEFAULT_REDIS_PORT, DEFAULT_SENTINEL_PORT, describeRedisTarget, parseRedisUrl, RedisUrlError } from '../../src/authorize/redis-url.js';
import { CLUSTER_NO_WAIT, CLUSTER_SLOT_COUNT, CLUSTER_SLOTS_REFRESH_MS, clusterNotFormed, clusterOptionsFor, isUnavailableReply, PeerStore, REDIS_COMMAND_TIMEOUT_MS, redisOptionsFor, REDIS_OPTIONS, SENTINEL_OPTIONS, sentinelFailure } from '../../src/authorize/store.js';

describe('parseRedisUrl: the forms --redis takes', () => {
  it('one server: host, port, database, credentials, TLS', () => {
    expect(parseRedisUrl('redis://127.0.0.1:6380')).toEqual({ kind: 'single', tls: false, endpoint: { host: '127.0.0.1', port: 6380 }, db: 0 });
    expect(parseRedisUrl('redis://redis.example:6379/3')).toEqual({ kind: 'single', tls: false, endpoint: { host: 'redis.example', port: 6379 }, db: 3 });
    expect(parseRedisUrl('redis://h')).toMatchObject({ endpoint: { host: 'h', port: DEFAULT_REDIS_PORT }, db: 0 });
    expect(parseRedisUrl('redis://h:1/')).toMatchObject({ endpoint: { host: 'h', port: 1 }, db: 0 });
    expect(parseRedisUrl('rediss://h:6380')).toMatchObject({ kind: 'single', tls: true });
    expect(parseRedisUrl('REDIS://h:1')).toMatchObject({ kind: 'single', tls: false });
    expect(parseRedisUrl('redis://[::1]:7000/1')).toMatchObject({ endpoint: { host: '::1', port: 7000 }, db: 1 });
    expect(parseRedisUrl('redis://[::1]')).toMatchObject({ endpoint: { host: '::1', port: DEFAULT_REDIS_PORT } });
  });

  it('credentials: user and password, password alone, user alone, percent-escapes, @ and / unescaped', () => {
    expect(parseRedisUrl('redis://wgjit:s3cret@h:1')).toMatchObject({ username: 'wgjit', password: 's3cret' });
    expect(parseRedisUrl('redis://:s3cret@h:1')).toEqual({ kind: 'single', tls: false, endpoint: { host: 'h', port: 1 }, db: 0, password: 's3cret' });
    expect(parseRedisUrl('redis://wgjit@h:1')).toEqual({ kind: 'single', tls: false, endpoint: { host: 'h', port: 1 }, db: 0, username: 'wgjit' });
    expect(parseRedisUrl('redis://u:p%40ss%2Fw%3Ard@h:1')).toMatchObject({ username: 'u', password: 'p@ss/w:rd' });
    // The last @ ends the credentials (maskSecrets reads them the same way).
    expect(parseRedisUrl('redis://u:se@cr/et:pw@h:1/2')).toMatchObject({ username: 'u', password: 'se@cr/et:pw', endpoint: { host: 'h', port: 1 }, db: 2 });
    expect(parseRedisUrl('redis://@h:1')).not.toHaveProperty('username');
  });

  it('a UNIX socket path', () => {
    expect(parseRedisUrl('/run/redis/redis.sock')).toEqual({ kind: 'socket', path: '/run/redis/redis.sock' });
  });

  it('Sentinel: several sentinels, the master name, an optional database, TLS', () => {
    expect(parseRedisUrl('redis+sentinel://10.0.0.1:26379,10.0.0.2:26380,[fd00::3]/mymaster')).toEqual({
      kind: 'sentinel',
      tls: false,
      sentinels: [
        { host: '10.0.0.1', port: 26379 },
        { host: '10.0.0.2', port: 26380 },
        { host: 'fd00::3', port: DEFAULT_SENTINEL_PORT },
      ],
      masterName: 'mymaster',
      db: 0,
    });
    expect(parseRedisUrl('redis+sentinel://s1/mymaster/2')).toMatchObject({ masterName: 'mymaster', db: 2, sentinels: [{ host: 's1', port: DEFAULT_SENTINEL_PORT }] });
    expect(parseRedisUrl('redis+sentinel://s1/mymaster/')).toMatchObject({ db: 0 });
    expect(parseRedisUrl('rediss+sentinel://u:p@s1:1,s2:2/wgjit-peers.a_b:1')).toMatchObject({ kind: 'sentinel', tls: true, username: 'u', password: 'p', masterName: 'wgjit-peers.a_b:1' });
  });

  it('Cluster: several nodes, no path, TLS', () => {
    expect(parseRedisUrl('redis+cluster://n1:7000,n2:7001')).toEqual({
      kind: 'cluster',
      tls: false,
      nodes: [
        { host: 'n1', port: 7000 },
        { host: 'n2', port: 7001 },
      ],
    });
    expect(parseRedisUrl('rediss+cluster://:pw@n1:7000/')).toMatchObject({ kind: 'cluster', tls: true, password: 'pw' });
  });
});

describe('parseRedisUrl: bad values name the part that is wrong', () => {
  const cases: Array<[string, RegExp]> = [
    ['', /not a Redis URL \(SCHEME:\/\/…\) or a socket path/],
    ['localhost:6379', /not a Redis URL \(SCHEME:\/\/…\) or a socket path/],
    ['http://h:6379', /^the scheme "http" is not a Redis scheme$/],
    ['redis+clusterr://h:1', /the scheme "redis\+clusterr" is not a Redis scheme/],
    // Text before :// that is not shaped like a scheme may be anything: it is not named.
    ['u:pw@h://x', /^the text before :\/\/ is not a Redis scheme$/],
    ['redis://', /the host is empty/],
    ['redis://:6379', /the host is not HOST\[:PORT\]/],
    ['redis://h:port', /port of the host is not a number/],
    ['redis://h:0', /port of the host is out of range/],
    ['redis://h:65536', /port of the host is out of range/],
    ['redis://h:', /port of the host is not a number/],
    ['redis://::1:6379', /IPv6 address goes in brackets/],
    ['redis://h_$:1', /not a host name or address/],
    ['redis://h:1,g:2', /redis:\/\/ takes one host/],
    ['redis://h:1/x', /database .* is not a number/],
    ['redis://h:1/-1', /database .* is not a number/],
    ['redis://h:1/99999999999', /database .* is not a number/],
    ['redis://h:1/0/1', /database number alone/],
    ['redis://h:1/0?family=6', /query parameters/],
    ['redis://h:1#x', /fragments/],
    ['redis://u:p%zz@h:1', /password has a bad percent-escape/],
    ['redis://%zz:p@h:1', /user has a bad percent-escape/],
    ['redis+sentinel://s1:1,s2:2', /master name is missing/],
    ['redis+sentinel://s1:1/', /master name is missing/],
    ['redis+sentinel://s1:1/my master', /master name may hold only/],
    ['redis+sentinel://s1:1/m/x', /database .* is not a number/],
    ['redis+sentinel://s1:1/m/0/extra', /too many path parts/],
    ['redis+sentinel://s1:1,,s2:2/m', /host 2 is empty/],
    ['redis+sentinel://s1:1,s2:x/m', /port of host 2 is not a number/],
    ['redis+cluster://n1:1/0', /takes no path/],
    ['redis+cluster://n1:1,n2:99999', /port of host 2 is out of range/],
    ['/run/redis.sock?db=1', /socket path takes no query/],
  ];
  for (const [raw, message] of cases) {
    it(`${JSON.stringify(raw)}: ${message.source}`, () => {
      expect(() => parseRedisUrl(raw)).toThrow(RedisUrlError);
      expect(() => parseRedisUrl(raw)).toThrow(message);
    });
  }

  it('never repeats the value, which may hold a password', () => {
    for (const raw of ['redis://u:hunter2@h:port', 'redis://u:hunter2%zz@h:1', 'redis+sentinel://u:hunter2@s1:1', 'http://u:hunter2@h', 'redis://u:hunter2@h:1/?x', 'hunter2@h:1', 'u:hunter2@h://x']) {
      expect(() => parseRedisUrl(raw)).toThrow();
      try {
        parseRedisUrl(raw);
      } catch (err) {
        expect((err as Error).message).not.toContain('hunter2');
      }
    }
  });
});

describe('describeRedisTarget: where, never who', () => {
  it('spells each form without credentials', () => {
    expect(describeRedisTarget(parseRedisUrl('redis://u:pw@h:1/2'))).toBe('redis://h:1/2');
    expect(describeRedisTarget(parseRedisUrl('rediss://[::1]:1'))).toBe('rediss://[::1]:1/0');
    expect(describeRedisTarget(parseRedisUrl('/s.sock'))).toBe('/s.sock');
    expect(describeRedisTarget(parseRedisUrl('rediss+sentinel://:pw@a:1,b/m/3'))).toBe(`rediss+sentinel://a:1,b:${DEFAULT_SENTINEL_PORT}/m/3`);
    expect(describeRedisTarget(parseRedisUrl('redis+cluster://:pw@a:1,b:2'))).toBe('redis+cluster://a:1,b:2');
  });
});

describe('redisOptionsFor: the ioredis options of each form', () => {
  it('one server over TCP, TLS or a socket, with the store options', () => {
    expect(redisOptionsFor(parseRedisUrl('redis://u:pw@h:1/2'))).toEqual({ ...REDIS_OPTIONS, host: 'h', port: 1, db: 2, username: 'u', password: 'pw' });
    expect(redisOptionsFor(parseRedisUrl('rediss://h:1'))).toMatchObject({ host: 'h', port: 1, tls: {} });
    expect(redisOptionsFor(parseRedisUrl('/s.sock'), 'filepw')).toEqual({ ...REDIS_OPTIONS, path: '/s.sock', password: 'filepw' });
  });

  it('Sentinel: the sentinels, the master, the same credentials for both, follow-a-failover options', () => {
    const o = redisOptionsFor(parseRedisUrl('redis+sentinel://wgjit@s1:1,s2:2/mymaster/1'), 'filepw');
    expect(o).toMatchObject({
      ...SENTINEL_OPTIONS,
      sentinels: [
        { host: 's1', port: 1 },
        { host: 's2', port: 2 },
      ],
      name: 'mymaster',
      role: 'master',
      db: 1,
      username: 'wgjit',
      password: 'filepw',
      sentinelUsername: 'wgjit',
      sentinelPassword: 'filepw',
      failoverDetector: false,
      enableOfflineQueue: false,
    });
    expect(o).not.toHaveProperty('tls');
    const tls = redisOptionsFor(parseRedisUrl('rediss+sentinel://s1:1/m'));
    expect(tls).toMatchObject({ tls: {}, sentinelTLS: {}, enableTLSForSentinelMode: true });
    expect(tls).not.toHaveProperty('password');
    expect(tls).not.toHaveProperty('sentinelPassword');
  });

  it('retries forever with a capped delay, reconnects on READONLY only', () => {
    const retry = SENTINEL_OPTIONS.sentinelRetryStrategy!;
    expect([1, 2, 5, 10, 1000, 1e6].map((n) => retry(n))).toEqual([100, 200, 500, 1000, 1000, 1000]);
    const onError = SENTINEL_OPTIONS.reconnectOnError!;
    expect(onError(new Error("READONLY You can't write against a read only replica."))).toBe(1);
    expect(onError(new Error("ERR Error running script (call to f_x): @user_script:2: @user_script: 2: -READONLY You can't write against a read only replica."))).toBe(1);
    expect(onError(new Error('ERR unknown command'))).toBe(false);
  });

  it('refuses a password given twice', () => {
    expect(() => redisOptionsFor(parseRedisUrl('redis://:pw@h:1'), 'filepw')).toThrow(/given twice/);
  });

  it('a Cluster: the nodes fail fast and leave reconnecting to the Cluster client, which retries forever and re-reads the slot map', () => {
    const target = parseRedisUrl('rediss+cluster://u:p%40ss@n1:7000,n2:7001');
    if (target.kind !== 'cluster') throw new Error('not parsed as a Cluster');
    const o = clusterOptionsFor(target);
    expect(o.redisOptions).toMatchObject({ username: 'u', password: 'p@ss', tls: {}, enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: REDIS_OPTIONS.commandTimeout });
    expect(o.redisOptions).not.toHaveProperty('retryStrategy');
    expect(o).toMatchObject({ enableOfflineQueue: false, enableAutoPipelining: true, slotsRefreshInterval: CLUSTER_SLOTS_REFRESH_MS });
    expect([1, 5, 1e6].map((n) => o.clusterRetryStrategy!(n, new Error('x')))).toEqual([100, 500, 1000]);
    expect(clusterOptionsFor(parseRedisUrl('redis+cluster://n1:1') as typeof target, 'filepw').redisOptions).toMatchObject({ password: 'filepw' });
    expect(() => PeerStore.connect('redis+cluster://127.0.0.1:1', { waitReplicas: 1 })).toThrow(CLUSTER_NO_WAIT);
  });
});

describe('isUnavailableReply: replies that mean "not now" (503), not a bug (500)', () => {
  it('knows a demoted primary, a primary without replicas and a replica without primary, also wrapped by a script', () => {
    for (const m of [
      "READONLY You can't write against a read only replica.",
      "ERR Error running script (call to f_1): @user_script:3: @user_script: 3: -READONLY You can't write against a read only replica.",
      'NOREPLICAS Not enough good replicas to write.',
      'MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to no.',
      'LOADING Redis is loading the dataset in memory',
      'BUSY Redis is busy running a script.',
    ]) {
      expect(isUnavailableReply(m), m).toBe(true);
    }
    for (const m of ['ERR wrong number of arguments', 'WRONGTYPE Operation against a key holding the wrong kind of value', 'ERR value mentions READONLY later']) {
      expect(isUnavailableReply(m), m).toBe(false);
    }
  });
});

describe('what the store says when it cannot connect', () => {
  it("sentinelFailure: each of ioredis's per-sentinel messages in words, with the sentinel", () => {
    expect(sentinelFailure('failed to connect to sentinel 10.0.0.1:26379 because Connection is closed.', 'm')).toEqual({
      sentinel: '10.0.0.1:26379',
      problem: 'could not be reached (connection refused, unreachable or closed)',
    });
    expect(sentinelFailure('failed to connect to sentinel [::1]:1 because Command timed out', 'm')).toEqual({
      sentinel: '[::1]:1',
      problem: `accepted the connection but did not answer within ${REDIS_COMMAND_TIMEOUT_MS} ms`,
    });
    expect(sentinelFailure("failed to connect to sentinel h:1 because ERR unknown command 'sentinel'", 'm')?.problem).toBe("answered ERR unknown command 'sentinel'");
    expect(sentinelFailure('connected to sentinel h:1 successfully, but got an invalid reply: null', 'mymaster')).toEqual({ sentinel: 'h:1', problem: 'does not monitor a master named "mymaster"' });
    expect(sentinelFailure('something else', 'm')).toBeNull();
  });

  it('clusterNotFormed: no slot, some slots, all slots but not ok; each with what to run', () => {
    const nodes = ['127.0.0.1:7000', '127.0.0.1:7001'];
    expect(clusterNotFormed([], nodes)).toBe('the Cluster is not formed: no hash slot is assigned (asked 127.0.0.1:7000, 127.0.0.1:7001); create it with redis-cli --cluster create HOST:PORT HOST:PORT … [--cluster-replicas N]');
    const some: string[][] = [];
    for (let slot = 0; slot < 100; slot++) some[slot] = ['127.0.0.1:7000'];
    expect(clusterNotFormed(some, nodes)).toMatch(new RegExp(`^the Cluster is not formed: 100 of ${CLUSTER_SLOT_COUNT} hash slots are assigned .*redis-cli --cluster fix`));
    const all = Array.from({ length: CLUSTER_SLOT_COUNT }, () => ['127.0.0.1:7000']);
    expect(clusterNotFormed(all, nodes)).toMatch(/^the Cluster's state is not ok \(CLUSTER INFO says cluster_state:fail; .*redis-cli --cluster check/);
  });
});
