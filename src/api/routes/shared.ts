/** What the route plugins share: the error responses a route declares, and the key in its path. */
import { KEY_BASE64_LENGTH, keyProblem, PublicKey } from '../../handshake/keys.js';
import { ApiError } from '../errors.js';
import { ErrorResponse } from '../schemas.js';

/** The error body schema under each of the given statuses, for a route's `response`. */
export const withErrors = (...statuses: number[]) => Object.fromEntries(statuses.map((s) => [s, ErrorResponse]));

/** The `:publicKey` of a path in wg's standard spelling, or a 400 saying how to spell it. */
export function pathKey(raw: string): string {
  return pathPublicKey(raw).toString();
}

/** The `:publicKey` of a path as a key, or a 400 saying how to spell it. */
export function pathPublicKey(raw: string): PublicKey {
  const key = PublicKey.parse(raw);
  if (key === null) {
    throw new ApiError(
      'bad_request',
      `publicKey in the path is not a WireGuard key (${keyProblem(raw)}): use its ${KEY_BASE64_LENGTH}-character base64, percent-encoded (/ + = as %2F %2B %3D), or base64url`,
    );
  }
  return key;
}
