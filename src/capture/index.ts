export { XdpCapture, rawSend, CAPTURE_STAT_NAMES, XDP_PASS, MAX_VLAN_TAGS, MAX_IPV6_EXT_HEADERS } from './addon.js';
export type { CaptureOptions, CaptureStats, CaptureStatName, XdpMode, Attached, TestRunResult } from './addon.js';
export { parseRecord, RECORD_SIZE } from './record.js';
export type { CaptureEvent } from './types.js';
