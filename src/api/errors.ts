/**
 * The one registry of API error codes. Clients branch on `code`, so codes
 * are stable; messages are for people and may improve.
 */

export const ERROR_STATUS = {
  bad_request: 400,
  /** A body over the route's limit (64 KiB, the batch route's own); the message names the limit. */
  payload_too_large: 413,
  unauthorized: 401,
  not_found: 404,
  /** A gateway route on a process without a data plane (`wgjit api`). */
  no_gateway: 404,
  /** A known path with a method it does not take; the `Allow` header lists the ones it does. */
  method_not_allowed: 405,
  conflict: 409,
  internal: 500,
  store_unavailable: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;
export const ERROR_CODES = Object.keys(ERROR_STATUS) as ErrorCode[];

export interface ErrorBody {
  error: { code: ErrorCode; message: string };
}

/** Thrown by handlers; the error handler turns it into the status and body. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }

  get statusCode(): number {
    return ERROR_STATUS[this.code];
  }
}

export function errorBody(code: ErrorCode, message: string): ErrorBody {
  return { error: { code, message } };
}
