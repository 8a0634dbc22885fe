/**
 * A small HTTP/1.1 server for one connection (RFC 9112): a well-behaved peer for curl, wget, ab, wrk and a
 * request typed by hand into nc, not a framework. Request line and fields are parsed incrementally (CRLF or
 * bare LF line ends), keep-alive and pipelining work, Content-Length bodies are read and passed on, and each
 * client gets the status it is owed: 400 malformed, 405 a known method we do not serve, 501 CONNECT and
 * unknown methods, 408 a request not complete in time, 414 a long target, 431 oversized fields, 501 chunked
 * request bodies, 505 other major versions. An HTTP/2 client with prior knowledge gets an HTTP/2 GOAWAY
 * asking for HTTP/1.1. Every response carries `Date` (RFC 9110 §6.6.1) from the clock it is given.
 *
 * @module
 */

import type { StreamConn } from "./conn.ts";
import type { PoolSlot } from "./pool.ts";
import { VERSION } from "../version.ts";

/** The HTTP port. */
export const HTTP_PORT = 80;

/** A parsed request. */
export interface HttpRequest {
  /** Method, e.g. `GET`. */
  method: string;
  /** The request target's path, without the query. */
  path: string;
  /** The query string without `?`, or "". */
  query: string;
  /** `HTTP/1.1` or `HTTP/1.0` (a higher 1.x minor version is served as 1.1, RFC 9110 §6.2). */
  version: string;
  /** Header fields by lower-case name (repeated fields joined with ", "). */
  headers: Map<string, string>;
  /** The request body (empty without Content-Length). */
  body: Uint8Array;
}

/** A body produced in pieces (large fixed resources), with its length known up front. */
export interface HttpBody {
  /** Total bytes. */
  readonly length: number;
  /** The pieces, in order; each is sent before the next is asked for. */
  chunks(): Iterable<Uint8Array>;
}

/** A response to send. */
export interface HttpResponse {
  /** Status code. */
  status: number;
  /** Extra header fields (Date, Server, Content-Length and Connection are set by the server). */
  headers?: Record<string, string>;
  /** The body; a string is sent as UTF-8. */
  body?: Uint8Array | string | HttpBody;
}

/** Produces the response for a request (GET and HEAD only reach it). */
export type HttpHandler = (request: HttpRequest) => HttpResponse;

/** Counters of the HTTP service, shared by its connections. */
export class HttpCounters {
  /** Requests answered by the handler. */
  requests = 0;
  /** Error responses sent for malformed or refused requests (4xx/5xx from the server itself). */
  errors = 0;
  /** Requests not complete within the request deadline (answered 408, connection closed). */
  requestTimeouts = 0;
  /** Keep-alive connections closed after the idle timeout. */
  idleTimeouts = 0;
  /** HTTP/2 prior-knowledge connections answered with GOAWAY HTTP_1_1_REQUIRED. */
  http2Refused = 0;

  /** The counters as a plain object for JSON. */
  stats(): Record<string, number> {
    return {
      requests: this.requests,
      errors: this.errors,
      requestTimeouts: this.requestTimeouts,
      idleTimeouts: this.idleTimeouts,
      http2Refused: this.http2Refused,
    };
  }
}

/** Limits and clocks of {@link serveHttp}. */
export interface HttpServerOptions {
  /** Largest request line; a longer one gets 414 (RFC 9112 §3). Default 8 KiB. */
  maxRequestLineBytes?: number;
  /** Largest request line plus fields; more gets 431 (RFC 6585 §5). Default 16 KiB. */
  maxHeaderBytes?: number;
  /** Largest request body; default 1 MiB. */
  maxBodyBytes?: number;
  /** Close a keep-alive connection idle (no byte of a next request) this long; default 30 s. */
  idleTimeoutMs?: number;
  /**
   * A request must be complete this long after its first byte, or it gets 408 and the connection closes:
   * the bound on slowloris. Default 20 s (Apache's mod_reqtimeout default for headers), which leaves room
   * for a request typed by hand.
   */
  requestTimeoutMs?: number;
  /** Wall clock in ms since the epoch, for the Date field; default `Date.now`. */
  wallClock?: () => number;
  /** Counters to update; default a private set. */
  counters?: HttpCounters;
  /** The connection's place in its service's pool: marked idle between requests, closed when evicted. */
  slot?: PoolSlot;
}

const REASONS: Record<number, string> = {
  200: "OK",
  400: "Bad Request",
  404: "Not Found",
  405: "Method Not Allowed",
  408: "Request Timeout",
  413: "Content Too Large",
  414: "URI Too Long",
  431: "Request Header Fields Too Large",
  501: "Not Implemented",
  505: "HTTP Version Not Supported",
};

/** Methods of RFC 9110 §9 (and PATCH, RFC 5789) that we recognise but do not serve: 405 with Allow. */
const KNOWN_METHODS = new Set(["POST", "PUT", "DELETE", "OPTIONS", "TRACE", "PATCH"]);

const encoder = new TextEncoder();
const decoder = new TextDecoder();
/** RFC 9110 §5.6.2: a token (method, header name). */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** RFC 9110 §7.2 / RFC 3986 §3.2.2: a Host value is uri-host [":" port]; anything else is invalid. */
const HOST_VALUE = /^[A-Za-z0-9\-._~%!$&'()*+,;=:\[\]]*$/;
/** The HTTP/2 connection preface's first line (RFC 9113 §3.4) as an HTTP/1 request line. */
const H2_PREFACE_LINE = "PRI * HTTP/2.0";
/**
 * What we send an HTTP/2 client with prior knowledge: an empty SETTINGS frame (the server preface, RFC 9113
 * §3.4) and GOAWAY with last stream 0 and HTTP_1_1_REQUIRED (0xd, §7), so that it stops, or retries over
 * HTTP/1.1 (curl does), instead of waiting.
 */
const H2_GOAWAY = new Uint8Array([
  0,
  0,
  0,
  4,
  0,
  0,
  0,
  0,
  0, // SETTINGS, length 0, stream 0
  0,
  0,
  8,
  7,
  0,
  0,
  0,
  0,
  0, // GOAWAY, length 8, stream 0
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0x0d, // last stream 0, HTTP_1_1_REQUIRED
]);
/** The interim response to `Expect: 100-continue`. */
const CONTINUE = new TextEncoder().encode("HTTP/1.1 100 Continue\r\n\r\n");
/** After our last response, how long and how much we read before closing (RFC 9112 §9.6). */
const LINGER_MS = 2000;
const LINGER_BYTES = 1 << 20;

class ProtocolError extends Error {
  constructor(readonly status: number, message: string, readonly extra: Record<string, string> = {}) {
    super(message);
  }
}

/** Buffers bytes from a reader and hands out request heads and fixed-size blocks. */
class ByteQueue {
  #buffer = new Uint8Array(4096);
  #start = 0;
  #end = 0;

  get length(): number {
    return this.#end - this.#start;
  }

  push(chunk: Uint8Array): void {
    if (this.#end + chunk.length > this.#buffer.length) {
      const needed = this.length + chunk.length;
      const next = needed > this.#buffer.length
        ? new Uint8Array(Math.max(needed, this.#buffer.length * 2))
        : this.#buffer;
      next.set(this.#buffer.subarray(this.#start, this.#end));
      this.#buffer = next;
      this.#end -= this.#start;
      this.#start = 0;
    }
    this.#buffer.set(chunk, this.#end);
    this.#end += chunk.length;
  }

  /** RFC 9112 §2.2: empty lines before a request line are ignored (a client's stray CRLF). */
  skipEmptyLines(): void {
    const b = this.#buffer;
    while (this.#start < this.#end) {
      if (b[this.#start] === 10) this.#start++;
      else if (b[this.#start] === 13 && this.#start + 1 < this.#end && b[this.#start + 1] === 10) {
        this.#start += 2;
      } else break;
    }
  }

  /** Offset of the first LF, or -1. */
  firstLineEnd(): number {
    const at = this.#buffer.subarray(this.#start, this.#end).indexOf(10);
    return at;
  }

  /**
   * Length of the head up to and including the empty line that ends it, or -1. Lines end in LF, with or
   * without CR before it (RFC 9112 §2.2 lets a recipient accept a bare LF).
   */
  headerEnd(): number {
    const b = this.#buffer;
    let lineStart = this.#start;
    for (let i = this.#start; i < this.#end; i++) {
      if (b[i] !== 10) continue;
      const length = i - lineStart;
      if (lineStart > this.#start && (length === 0 || (length === 1 && b[lineStart] === 13))) {
        return i + 1 - this.#start;
      }
      lineStart = i + 1;
    }
    return -1;
  }

  take(n: number): Uint8Array {
    const out = this.#buffer.slice(this.#start, this.#start + n);
    this.#start += n;
    return out;
  }
}

type Head = Omit<HttpRequest, "body"> & { h2Preface?: boolean };

function parseHead(head: string): Head {
  const lines = head.split("\n").map((line) => line.endsWith("\r") ? line.slice(0, -1) : line);
  while (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
  // RFC 9112 §2.2: a bare CR elsewhere is invalid.
  if (lines.some((line) => line.includes("\r"))) throw new ProtocolError(400, "bare CR in the request head");
  const requestLine = lines[0].split(" ");
  if (requestLine.length !== 3) throw new ProtocolError(400, "malformed request line");
  const [method, target, versionText] = requestLine;
  if (!TOKEN.test(method)) throw new ProtocolError(400, "malformed method");
  const versionMatch = /^HTTP\/(\d)\.(\d)$/.exec(versionText);
  if (versionMatch === null) throw new ProtocolError(400, "malformed HTTP version");
  if (lines[0] === H2_PREFACE_LINE) {
    return { method, path: "*", query: "", version: versionText, headers: new Map(), h2Preface: true };
  }
  if (versionMatch[1] !== "1") throw new ProtocolError(505, `${versionText} is not supported; use HTTP/1.1`);
  // RFC 9110 §6.2: a higher minor version is handled as the highest we implement.
  const version = versionMatch[2] === "0" ? "HTTP/1.0" : "HTTP/1.1";
  const headers = new Map<string, string>();
  let hosts = 0;
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    // RFC 9112 §5.1: no whitespace between the field name and the colon; §5.2: obsolete folding refused.
    if (colon <= 0 || !TOKEN.test(line.slice(0, colon))) {
      throw new ProtocolError(400, "malformed header field");
    }
    const name = line.slice(0, colon).toLowerCase();
    const value = line.slice(colon + 1).trim();
    // RFC 9110 §5.5: NUL (and other controls but HTAB) in a value are invalid.
    // deno-lint-ignore no-control-regex -- matching control characters is the point
    if (/[\x00-\x08\x0a-\x1f\x7f]/.test(value)) throw new ProtocolError(400, "control character in a field");
    const previous = headers.get(name);
    if (name === "host") {
      hosts++;
      // RFC 9112 §3.2: more than one Host line, or an invalid Host value, is a 400.
      if (hosts > 1) throw new ProtocolError(400, "more than one Host header");
      if (!HOST_VALUE.test(value)) throw new ProtocolError(400, "invalid Host header");
    }
    if (previous !== undefined && name === "content-length" && previous !== value) {
      throw new ProtocolError(400, "conflicting Content-Length");
    }
    headers.set(name, previous === undefined || name === "content-length" ? value : `${previous}, ${value}`);
  }
  // RFC 9112 §3.2: a 1.1 request without Host is a 400.
  if (version === "HTTP/1.1" && hosts === 0) throw new ProtocolError(400, "missing Host header");
  if (method === "CONNECT") {
    // RFC 9110 §9.3.6: CONNECT asks for a tunnel, which only a proxy provides; we implement it for no
    // resource, so §9.1 and §15.6.2 call for 501 rather than 405 ("not allowed for this resource").
    throw new ProtocolError(501, "CONNECT is not supported: this is an origin server, not a proxy");
  }
  if (method !== "GET" && method !== "HEAD") {
    if (KNOWN_METHODS.has(method)) {
      throw new ProtocolError(405, `method ${method} is not allowed`, { allow: "GET, HEAD" });
    }
    // RFC 9110 §9.1: an unrecognised method is a 501.
    throw new ProtocolError(501, `method ${method} is not implemented`);
  }
  if (!target.startsWith("/") && !/^https?:\/\//i.test(target)) {
    throw new ProtocolError(400, "malformed request target");
  }
  const path = target.replace(/^https?:\/\/[^/]*/i, "") || "/";
  const q = path.indexOf("?");
  return {
    method,
    path: q < 0 ? path : path.slice(0, q),
    query: q < 0 ? "" : path.slice(q + 1),
    version,
    headers,
  };
}

function keepAlive(request: Pick<HttpRequest, "version" | "headers">): boolean {
  const connection = (request.headers.get("connection") ?? "").toLowerCase().split(",").map((s) => s.trim());
  if (connection.includes("close")) return false;
  return request.version === "HTTP/1.1" || connection.includes("keep-alive");
}

let dateSecond = -1;
let dateText = "";

/** RFC 9110 §5.6.7: the IMF-fixdate for `ms` since the epoch, e.g. `Mon, 30 Nov 2026 10:16:07 GMT`. */
export function httpDate(ms: number): string {
  const second = Math.floor(ms / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateText = new Date(second * 1000).toUTCString(); // ECMAScript's toUTCString is exactly IMF-fixdate
  }
  return dateText;
}

/** `content-type` → `Content-Type`: the usual spelling of field names in HTTP/1.1. */
function canonicalName(name: string): string {
  return name.toLowerCase().replace(/(^|-)([a-z])/g, (_, dash, c) => dash + c.toUpperCase());
}

function bodyOf(response: HttpResponse): Uint8Array | HttpBody {
  if (typeof response.body === "string") return encoder.encode(response.body);
  return response.body ?? new Uint8Array();
}

/**
 * Serializes the status line and fields of `response` for a body of `length` bytes. `date` is the wall
 * time in ms since the epoch.
 */
export function encodeHead(
  response: HttpResponse,
  length: number,
  options: { keepAlive: boolean; date: number },
): Uint8Array {
  let text = `HTTP/1.1 ${response.status} ${REASONS[response.status] ?? "Unknown"}\r\n`;
  const fields: Record<string, string> = {
    Date: httpDate(options.date),
    Server: `netstack/${VERSION}`,
  };
  for (const [name, value] of Object.entries(response.headers ?? {})) fields[canonicalName(name)] = value;
  fields["Content-Length"] = String(length);
  fields["Connection"] = options.keepAlive ? "keep-alive" : "close";
  for (const [name, value] of Object.entries(fields)) text += `${name}: ${value}\r\n`;
  return encoder.encode(text + "\r\n");
}

function errorResponse(error: ProtocolError): HttpResponse {
  return {
    status: error.status,
    headers: { "content-type": "text/plain; charset=utf-8", ...error.extra },
    body: `${error.message}\n`,
  };
}

/** Writes `response`; `head` sends the fields only (HEAD, RFC 9110 §9.3.2). */
async function writeResponse(
  writer: WritableStreamDefaultWriter<Uint8Array>,
  response: HttpResponse,
  options: { keepAlive: boolean; head: boolean; date: number },
): Promise<void> {
  const body = bodyOf(response);
  const head = encodeHead(response, body.length, options);
  if (options.head || body.length === 0) {
    await writer.write(head);
  } else if (body instanceof Uint8Array) {
    // One write, so that a small response leaves in one segment.
    const out = new Uint8Array(head.length + body.length);
    out.set(head);
    out.set(body, head.length);
    await writer.write(out);
  } else {
    await writer.write(head);
    for (const chunk of body.chunks()) await writer.write(chunk);
  }
}

type FillResult = "data" | "end" | "idle" | "deadline" | "evicted";

/** Serves requests on one connection until either side closes; resolves to the number of requests served. */
export async function serveHttp(
  conn: StreamConn,
  handler: HttpHandler,
  options: HttpServerOptions = {},
): Promise<number> {
  const maxLine = options.maxRequestLineBytes ?? 8192;
  const maxHeader = options.maxHeaderBytes ?? 16384;
  const maxBody = options.maxBodyBytes ?? 1 << 20;
  const idleMs = options.idleTimeoutMs ?? 30_000;
  const requestMs = options.requestTimeoutMs ?? 20_000;
  const wallClock = options.wallClock ?? Date.now;
  const counters = options.counters ?? new HttpCounters();
  const slot = options.slot;
  const reader = conn.readable.getReader();
  const writer = conn.writable.getWriter();
  const queue = new ByteQueue();
  let served = 0;
  let ended = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let wakeEvicted: (() => void) | null = null;
  const onEvict = () => wakeEvicted?.();
  slot?.signal.addEventListener("abort", onEvict);

  /**
   * Reads more bytes. Waiting for a new request (`deadline` null) ends after the idle timeout; within a
   * request, at `deadline` (performance.now() time); either on eviction (the pool gave the place away).
   */
  const fill = async (deadline: number | null): Promise<FillResult> => {
    if (ended) return "end";
    const waitMs = deadline === null ? idleMs : Math.max(0, deadline - performance.now());
    const expired = new Promise<FillResult>((resolve) => {
      timer = setTimeout(() => resolve(deadline === null ? "idle" : "deadline"), waitMs);
      if (slot) {
        if (slot.signal.aborted) resolve("evicted");
        wakeEvicted = () => resolve("evicted");
      }
    });
    if (slot && deadline === null) slot.idle = true;
    const result = await Promise.race([reader.read(), expired]);
    clearTimeout(timer);
    wakeEvicted = null;
    if (slot) slot.idle = false;
    if (typeof result === "string") {
      ended = true;
      return result;
    }
    if (result.done) {
      ended = true;
      return "end";
    }
    queue.push(result.value);
    return "data";
  };

  /** Reads until the request head is complete; null when the connection ended quietly first. */
  const readHead = async (): Promise<Uint8Array | null> => {
    let deadline: number | null = null;
    while (true) {
      queue.skipEmptyLines();
      if (queue.length > 0 && deadline === null) deadline = performance.now() + requestMs;
      const end = queue.headerEnd();
      const lineEnd = queue.firstLineEnd();
      if ((lineEnd < 0 && queue.length > maxLine) || lineEnd > maxLine) {
        throw new ProtocolError(414, "request target too long");
      }
      if ((end < 0 && queue.length > maxHeader) || end > maxHeader) {
        throw new ProtocolError(431, "request header fields too large");
      }
      if (end >= 0) return queue.take(end);
      // A request under way: its place may go to a newcomer if it trickles on (see ConnectionPool).
      if (slot && deadline !== null) slot.reading = true;
      const result = await fill(deadline);
      if (result === "deadline" || (result === "evicted" && deadline !== null)) {
        throw new ProtocolError(408, "the request did not arrive in time");
      }
      if (result === "idle" && queue.length === 0) counters.idleTimeouts++;
      if (result !== "data") {
        // A partial request cut off by the client's close gets no answer (nobody reads it).
        return null;
      }
    }
  };

  /** RFC 9112 §9.6: half-close, then read what the client still sends for a while, so that our last
   * response is not destroyed by a reset for unread data. */
  const lingeringClose = async () => {
    try {
      await writer.close();
    } catch { /* the peer is gone */ }
    const until = performance.now() + LINGER_MS;
    let read = 0;
    while (!ended && read < LINGER_BYTES && performance.now() < until) {
      const before = queue.length;
      if ((await fill(until)) !== "data") break;
      read += queue.length - before;
      queue.take(queue.length);
    }
  };

  try {
    while (true) {
      const headBytes = await readHead();
      if (slot) slot.reading = false;
      if (headBytes === null) {
        await writer.close().catch(() => {});
        return served;
      }
      const requestDeadline = performance.now() + requestMs;
      const request = parseHead(decoder.decode(headBytes));
      if (request.h2Preface) {
        counters.http2Refused++;
        await writer.write(H2_GOAWAY.slice());
        await lingeringClose();
        return served;
      }
      if (request.headers.has("transfer-encoding")) {
        throw new ProtocolError(501, "chunked request bodies are not supported");
      }
      const lengthText = request.headers.get("content-length") ?? "0";
      if (!/^\d+$/.test(lengthText)) throw new ProtocolError(400, "malformed Content-Length");
      const length = Number(lengthText);
      if (length > maxBody) throw new ProtocolError(413, "request body too large");
      if (
        length > queue.length && request.version === "HTTP/1.1" &&
        /^100-continue$/i.test(request.headers.get("expect") ?? "")
      ) {
        // RFC 9110 §10.1.1: the client waits for this before sending the content (curl for a second).
        await writer.write(CONTINUE.slice());
      }
      while (queue.length < length) {
        const result = await fill(requestDeadline);
        if (result === "deadline") throw new ProtocolError(408, "the request did not arrive in time");
        if (result !== "data") return served;
      }
      const body = queue.take(length);
      const persistent = keepAlive(request);
      const response = handler({ ...request, body });
      await writeResponse(writer, response, {
        keepAlive: persistent,
        head: request.method === "HEAD",
        date: wallClock(),
      });
      served++;
      counters.requests++;
      if (!persistent) {
        await lingeringClose();
        return served;
      }
    }
  } catch (error) {
    if (error instanceof ProtocolError) {
      counters.errors++;
      if (error.status === 408) counters.requestTimeouts++;
      // After a malformed request the framing is lost: answer and close (RFC 9112 §9.6).
      try {
        await writeResponse(writer, errorResponse(error), {
          keepAlive: false,
          head: false,
          date: wallClock(),
        });
        await lingeringClose();
      } catch { /* the peer is gone */ }
    }
    return served;
  } finally {
    clearTimeout(timer);
    slot?.signal.removeEventListener("abort", onEvict);
    reader.releaseLock();
    writer.releaseLock();
    conn.close();
  }
}
