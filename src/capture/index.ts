export { XdpCapture, rawSend, CAPTURE_STAT_NAMES, XDP_PASS } from './addon.js';
export type { CaptureOptions, CaptureStats, CaptureStatName, XdpMode, Attached, TestRunResult } from './addon.js';
export { parseRecord, RECORD_SIZE } from './record.js';
export type { CaptureEvent } from './types.js';
