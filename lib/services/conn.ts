/**
 * The connection type services are written against: the stack's `Deno.Conn`-like stream.
 *
 * @module
 */

export type { StreamConn } from "../stack/stream_conn.ts";
