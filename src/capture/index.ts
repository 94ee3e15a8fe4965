export {
  XdpCapture,
  rawSend,
  CAPTURE_STAT_NAMES,
  XDP_PASS,
  MAX_VLAN_TAGS,
  MAX_IPV6_EXT_HEADERS,
  DEFAULT_SOURCE_RATE,
  MAX_SOURCE_RATE,
  DEFAULT_SOURCE_BURST,
  MIN_SOURCE_BURST,
  MAX_SOURCE_BURST,
  DEFAULT_SOURCE_TABLE_SIZE,
  MIN_SOURCE_TABLE_SIZE,
  MAX_SOURCE_TABLE_SIZE,
} from './addon.js';
export type { CaptureOptions, CaptureStats, CaptureStatName, CaptureHealth, LinkHealth, XdpMode, Attached, TestRunResult } from './addon.js';
export { parseRecord, RECORD_SIZE } from './record.js';
export type { CaptureEvent } from './types.js';
