/**
 * The rule for the API's bearer tokens, checked where `wgjit run` and
 * `wgjit api` read theirs (src/cli/settings.ts). Apart from auth.ts, which
 * loads the server's parts, so that the CLI can check a token cheaply.
 */

/** Shortest token a server starts with. Length is not strength, but a one-character token is a mistake; TOKEN_RECIPE makes 32 random bytes. */
export const MIN_TOKEN_BYTES = 16;
/** How to make one, for the messages. */
export const TOKEN_RECIPE = 'head -c 32 /dev/urandom | base64';

/**
 * Why a server may not start with `token`, in a few words, or null. One
 * token: where there are several, each is checked alone. Never echoes it. A
 * token with whitespace inside could never be sent: the Authorization
 * header's token ends at the first space.
 */
export function tokenProblem(token: string): string | null {
  if (token.length === 0) return 'empty';
  const bytes = Buffer.byteLength(token, 'utf8');
  if (bytes < MIN_TOKEN_BYTES) return `the token is ${bytes} bytes, shorter than ${MIN_TOKEN_BYTES}; make one with ${TOKEN_RECIPE}`;
  if (/\s/.test(token)) return `the token has whitespace inside it, which no client can send in an Authorization header; make one with ${TOKEN_RECIPE}`;
  return null;
}
