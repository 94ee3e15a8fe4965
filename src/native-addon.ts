/**
 * Where the C++ addon (addon/build/Release/wgjit.node) is, and loading it
 * once for every stage that uses it: capture, replay and handshake each
 * keep their own typed facade over their part of it.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root: this file is src/native-addon.ts or dist/native-addon.js. */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const ADDON_PATH = resolve(REPO_ROOT, 'addon/build/Release/wgjit.node');

let loaded: Record<string, unknown> | null = null;

/** The addon's exports, untyped: each facade checks the part it uses. */
export function requireAddon(): Record<string, unknown> {
  if (loaded !== null) return loaded;
  if (!existsSync(ADDON_PATH)) throw new Error(`native addon not built (${ADDON_PATH}): run make`);
  loaded = createRequire(import.meta.url)(ADDON_PATH) as Record<string, unknown>;
  return loaded;
}
