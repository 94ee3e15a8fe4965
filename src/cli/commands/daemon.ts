/** `wgjit run` (the gateway) and `wgjit api` (the store routes only): resolve the settings, start, run until a signal. */
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { defaultGatewayId, GATEWAY_ID_RULE } from '../../fleet/gateway-id.js';
import { createLogger } from '../../telemetry/log.js';
import { EXIT, parse, UsageError } from '../command.js';
import { help } from '../help.js';
import { API_SETTINGS, ConfigError, resolveRedisPassword, resolveServerToken, resolveSettings, RUN_SETTINGS, settingOptions } from '../settings.js';

export async function cmdRun(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, settingOptions(RUN_SETTINGS), 'run');
  if (values.help) return help('run');
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const s = resolveSettings(RUN_SETTINGS, values as Record<string, string>);
  const token = resolveServerToken(s);
  const redisPassword = resolveRedisPassword(s);
  const gatewayId = s.gatewayId ?? defaultGatewayId();
  if (gatewayId === null) throw new ConfigError(`the host name ${JSON.stringify(hostname())} is not a gateway id (${GATEWAY_ID_RULE}): set --gateway-id`);
  // The daemon's options carry the settings' names; the token, the Redis password, the gateway id and the logger are resolved here.
  const { apiTokenFile, apiToken, logLevel, config, redisPasswordFile, ...daemon } = s;
  const log = createLogger(logLevel);
  const { startGateway } = await import('../../daemon/gateway.js');
  const gw = await startGateway({ ...daemon, gatewayId, ...(redisPassword !== undefined && { redisPassword }), token, log });
  return waitForSignal(log, () => gw.stop());
}

export async function cmdApi(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, settingOptions(API_SETTINGS), 'api');
  if (values.help) return help('api');
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const s = resolveSettings(API_SETTINGS, values as Record<string, string>);
  const token = resolveServerToken(s);
  const redisPassword = resolveRedisPassword(s);
  const log = createLogger(s.logLevel);
  const { PeerStore } = await import('../../authorize/store.js');
  const { buildApp, buildMetricsApp } = await import('../../api/app.js');
  const { createMetrics } = await import('../../telemetry/metrics.js');
  const store = PeerStore.connect(s.redis, { ...(redisPassword !== undefined && { password: redisPassword }), waitReplicas: s.redisWaitReplicas, log });
  // A store still in an earlier release's layout would serve no record: refuse it at start.
  try {
    await store.readyAtStart();
  } catch (err) {
    await store.close();
    throw err;
  }
  // Process metrics (CPU, memory, event loop; process_*, nodejs_*) and the store's state; the data-plane series stay empty here.
  const metrics = createMetrics({ processMetrics: true });
  metrics.observe({ store: () => store.health() });
  const { registry } = metrics;
  const app = await buildApp({ store, token, logger: log.child({ component: 'api' }), registry });
  await app.listen({ host: s.apiListen.host, port: s.apiListen.port });
  log.info({ listen: boundAddress(app.server.address() as AddressInfo) }, 'API listening (store routes only)');
  let metricsApp: Awaited<ReturnType<typeof buildMetricsApp>> | undefined;
  if (s.metricsListen !== undefined) {
    try {
      metricsApp = await buildMetricsApp({ store, registry, logger: log.child({ component: 'metrics' }) });
      await metricsApp.listen({ host: s.metricsListen.host, port: s.metricsListen.port });
    } catch (err) {
      await metricsApp?.close();
      await app.close();
      await store.close();
      throw err;
    }
    log.info({ listen: boundAddress(metricsApp.server.address() as AddressInfo) }, 'metrics listening (/metrics, /healthz, /readyz)');
  }
  return waitForSignal(log, async () => {
    await metricsApp?.close();
    await app.close();
    await store.close();
  });
}

/** The bound address: with port 0 the system picked one. */
function boundAddress(bound: AddressInfo): string {
  return bound.family === 'IPv6' ? `[${bound.address}]:${bound.port}` : `${bound.address}:${bound.port}`;
}

function waitForSignal(log: ReturnType<typeof createLogger>, stop: () => Promise<void>): Promise<number> {
  return new Promise((resolve) => {
    const onSignal = (sig: NodeJS.Signals) => {
      log.info({ signal: sig }, 'stopping');
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      stop().then(
        () => resolve(EXIT.ok),
        (err) => {
          log.error({ err: (err as Error).message }, 'shutdown failed');
          resolve(EXIT.failed);
        },
      );
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}
