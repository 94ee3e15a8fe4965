/**
 * The release of this wgjit, from its package.json: what `wgjit --version`
 * prints and every API answer names (VERSION_HEADER), so a client can tell
 * whether the API checks records by the rules it knows.
 */
import { readFileSync } from 'node:fs';

export const WGJIT_VERSION: string = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** The response header that carries WGJIT_VERSION. */
export const VERSION_HEADER = 'wgjit-version';
