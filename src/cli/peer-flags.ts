/**
 * The peer commands' flags and the API's field names: an API refusal names
 * the field (`persistentKeepalive: must be …`), the operator typed a flag
 * (`--keepalive`), so the CLI says the flag. And what the CLI reads in
 * --expires-at before sending it. Pure.
 */

/** The flag that sets each field of POST and PATCH /v1/peers. */
export const FIELD_FLAGS: Readonly<Record<string, string>> = {
  allowedIPs: '--allowed-ips',
  presharedKey: '--preshared-key-file',
  persistentKeepalive: '--keepalive',
  expiresAt: '--expires-at',
  disabled: '--disable',
  name: '--name',
};

/** 1st, 2nd, 3rd, 4th, 11th, 12th, 21st… */
export function ordinal(n: number): string {
  const tens = n % 100;
  const suffix = tens >= 11 && tens <= 13 ? 'th' : (['th', 'st', 'nd', 'rd'][n % 10] ?? 'th');
  return `${n}${suffix}`;
}

/**
 * An API message `field: what` (or `field[i]: what`) in the CLI's terms:
 * `--keepalive: what`, `--allowed-ips (2nd CIDR): what`. A message that
 * names no field of the peer routes comes back as it was.
 */
export function inFlagTerms(message: string): string {
  const m = /^([A-Za-z]+)(?:\[(\d+)\])?: /.exec(message);
  if (m === null) return message;
  const flag = FIELD_FLAGS[m[1]!];
  if (flag === undefined) return message;
  const entry = m[2] === undefined ? '' : ` (${ordinal(Number(m[2]) + 1)} CIDR)`;
  return `${flag}${entry}: ${message.slice(m[0].length)}`;
}

/** A date alone: the start of that day in UTC, as the API takes it. */
const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/;

/**
 * --expires-at as sent: a date alone made midnight UTC (so that an API of
 * an earlier release, which wants the time, takes it too), anything else as
 * typed (the API checks it). `past`: it names a time that has already come,
 * so the peer is refused from now on; false when the text is not a time.
 */
export function expiryOf(text: string, now: Date): { value: string; past: boolean } {
  const value = DATE_ONLY.test(text) ? `${text}T00:00:00Z` : text;
  const ms = Date.parse(value);
  return { value, past: !Number.isNaN(ms) && ms <= now.getTime() };
}
