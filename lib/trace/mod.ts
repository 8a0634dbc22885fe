/**
 * netstack trace: an XDP / TC egress packet tracer on libbpf through Deno FFI.
 *
 * @module
 */

export {
  type Attachment,
  chooseIngressHook,
  type EgressHookOption,
  type IngressHookOption,
  isVirtualInterface,
  type XdpModeOption,
} from "./attach.ts";
export {
  describeFilter,
  encodeFilter,
  type HostPrefix,
  parseHostPrefix,
  parseProtocol,
  TRACE_MAX_SNAPLEN,
  type TraceFilter,
  type TraceProtocol,
} from "./filter.ts";
export { formatJson, formatLine, formatTime, type PacketEvent } from "./format.ts";
export {
  type DecodedPacket,
  decodePacket,
  decodeRecord,
  type Direction,
  encodeRecord,
  RecordError,
  type TraceRecord,
} from "./record.ts";
export { RingBufferReader, type SampleHandler } from "./ring_buffer_reader.ts";
export { type DirectionOption, type HookCounters, Tracer, type TracerOptions } from "./tracer.ts";
