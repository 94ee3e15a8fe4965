/**
 * A gateway's name in the fleet (`--gateway-id`, by default the host
 * name): how the store says which gateway holds a peer and which are
 * alive. Host-name characters only, so an id goes into a Redis key, a JSON
 * event and a log line as it is, with nothing to escape.
 */
import { hostname } from 'node:os';

export const MAX_GATEWAY_ID_LENGTH = 64;
export const GATEWAY_ID_RULE = `1 to ${MAX_GATEWAY_ID_LENGTH} letters, digits, '.', '_' or '-', starting with a letter or digit`;
const GATEWAY_ID = new RegExp(`^[A-Za-z0-9][A-Za-z0-9._-]{0,${MAX_GATEWAY_ID_LENGTH - 1}}$`);

export function isGatewayId(id: string): boolean {
  return GATEWAY_ID.test(id);
}

/**
 * The default id: the host name, or its first label when the whole name
 * does not fit the rule; null when neither does (then --gateway-id is
 * required).
 */
export function defaultGatewayId(name = hostname()): string | null {
  if (isGatewayId(name)) return name;
  const label = name.split('.')[0] ?? '';
  return isGatewayId(label) ? label : null;
}

/** A second gateway started with an id that is alive elsewhere (src/fleet/presence.ts): the operator's to fix. */
export class GatewayIdInUseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GatewayIdInUseError';
  }
}
