/**
 * CIDRs for tests and benchmarks that spell them: cidrs('10.0.0.2/32',
 * 'fd00::/64') gives the parsed values a PeerConfig carries (as the store
 * edge parses them), and throws on a typo. unchecked() builds one with no checks, for tests of
 * what a backend does with a value that is not a CIDR.
 */
import { parseCidr, type Cidr } from '../src/net/cidr.js';

export function cidr(text: string): Cidr {
  const r = parseCidr(text);
  if (!r.ok) throw new Error(`test CIDR ${text}: ${r.message}`);
  return r.cidr;
}

export function cidrs(...texts: string[]): Cidr[] {
  return texts.map(cidr);
}

export function unchecked(family: 4 | 6, bytes: number[], prefix: number, text = `${bytes.join('.')}/${prefix}`): Cidr {
  return { family, bytes: Uint8Array.from(bytes), prefix, text };
}

/** A value whose text is `text` and nothing else: what the userspace API writes, for tests of what it lets through. */
export function textOnly(text: string): Cidr {
  return { family: 4, bytes: new Uint8Array(4), prefix: 32, text };
}
