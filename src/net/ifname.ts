/**
 * Interface names: one rule for the CLI, the capture facade, both device
 * backends and the testbed. Linux takes 1 to IFNAMSIZ - 1 bytes, not "." or
 * "..", without '/', ':' or whitespace (dev_valid_name); wgjit takes the
 * subset the CLI documents, letters, digits, '_', '.' and '-', so a name is
 * also safe as a file name (the userspace API's `<name>.sock`) and as an
 * argument to ip(8).
 */

/** IFNAMSIZ is 16 including the terminating NUL. */
export const MAX_IFNAME_LENGTH = 15;

/** The rule, as the CLI's messages spell it. */
export const IFNAME_RULE = `1-${MAX_IFNAME_LENGTH} of A-Z a-z 0-9 _ . -`;

const IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;

export function isValidIfname(name: unknown): name is string {
  return typeof name === 'string' && IFNAME.test(name) && name !== '.' && name !== '..';
}
