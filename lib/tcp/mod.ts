/**
 * The TCP implementation: a sans-I/O core (segments and time in, segments and deadlines out).
 *
 * @module
 */

export { DEFAULT_TCP_CONFIG, resolveTcpConfig } from "./config.ts";
export type { CongestionControlName, TcpConfig, TcpLayerOptions } from "./config.ts";
export { TcpConnection, TcpEvent, TcpStateError } from "./connection.ts";
export type { TcpCloseError, TcpState } from "./connection.ts";
export { EPHEMERAL_PORT_FIRST, EPHEMERAL_PORT_LAST, TcpLayer, TcpListener } from "./layer.ts";
export { TCP_DROP_REASONS, TcpStats } from "./stats.ts";
export type { TcpDropReason } from "./stats.ts";
export type { CongestionControl } from "./congestion.ts";
