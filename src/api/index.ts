export { buildApp, DEFAULT_BODY_LIMIT, type BuildAppOptions } from './app.js';
export { ApiError, ERROR_CODES, ERROR_STATUS, errorBody, type ErrorBody, type ErrorCode } from './errors.js';
export type { GatewayInfo, GatewayView, InstalledPeerView } from './gateway-view.js';
