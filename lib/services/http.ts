/**
 * A small HTTP/1.1 server for one connection (RFC 9112): request line and headers parsed incrementally,
 * keep-alive and pipelining, Content-Length bodies read and passed on, and the errors a client is owed:
 * 400 for malformed requests, 405 for other methods, 404 for unknown paths (from the handler), 431 for
 * oversized headers, 501 for chunked request bodies, 505 for other HTTP versions.
 *
 * @module
 */

import type { StreamConn } from "./conn.ts";
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
  /** `HTTP/1.1` or `HTTP/1.0`. */
  version: string;
  /** Header fields by lower-case name (repeated fields joined with ", "). */
  headers: Map<string, string>;
  /** The request body (empty without Content-Length). */
  body: Uint8Array;
}

/** A response to send. */
export interface HttpResponse {
  /** Status code. */
  status: number;
  /** Extra header fields (Content-Length, Connection and Server are set by the server). */
  headers?: Record<string, string>;
  /** The body; a string is sent as UTF-8. */
  body?: Uint8Array | string;
}

/** Produces the response for a request (GET and HEAD only reach it). */
export type HttpHandler = (request: HttpRequest) => HttpResponse;

/** Limits of {@link serveHttp}. */
export interface HttpServerOptions {
  /** Largest request line plus headers; default 8 KiB. */
  maxHeaderBytes?: number;
  /** Largest request body; default 1 MiB. */
  maxBodyBytes?: number;
  /** Close an idle keep-alive connection after this long; default 30 s. */
  idleTimeoutMs?: number;
}

const REASONS: Record<number, string> = {
  200: "OK",
  400: "Bad Request",
  404: "Not Found",
  405: "Method Not Allowed",
  408: "Request Timeout",
  413: "Content Too Large",
  431: "Request Header Fields Too Large",
  501: "Not Implemented",
  505: "HTTP Version Not Supported",
};

const encoder = new TextEncoder();
const decoder = new TextDecoder();
/** RFC 9110 §5.6.2: a token (method, header name). */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

class ProtocolError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

/** Buffers bytes from a reader and hands out lines and fixed-size blocks. */
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

  /** Index just past the first CRLFCRLF, or -1. */
  headerEnd(): number {
    const b = this.#buffer;
    for (let i = this.#start; i + 3 < this.#end; i++) {
      if (b[i] === 13 && b[i + 1] === 10 && b[i + 2] === 13 && b[i + 3] === 10) return i + 4 - this.#start;
    }
    return -1;
  }

  take(n: number): Uint8Array {
    const out = this.#buffer.slice(this.#start, this.#start + n);
    this.#start += n;
    return out;
  }
}

function parseHead(head: string): Omit<HttpRequest, "body"> {
  const lines = head.split("\r\n");
  const requestLine = lines[0].split(" ");
  if (requestLine.length !== 3) throw new ProtocolError(400, "malformed request line");
  const [method, target, version] = requestLine;
  if (!TOKEN.test(method)) throw new ProtocolError(400, "malformed method");
  if (!/^HTTP\/\d\.\d$/.test(version)) throw new ProtocolError(400, "malformed HTTP version");
  if (version !== "HTTP/1.1" && version !== "HTTP/1.0") {
    throw new ProtocolError(505, `${version} is not supported`);
  }
  if (!target.startsWith("/") && !/^https?:\/\//.test(target) && target !== "*") {
    throw new ProtocolError(400, "malformed request target");
  }
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    if (line === "") continue;
    const colon = line.indexOf(":");
    // RFC 9112 §5.1: no whitespace between the field name and the colon; obsolete line folding refused.
    if (colon <= 0 || !TOKEN.test(line.slice(0, colon))) {
      throw new ProtocolError(400, "malformed header field");
    }
    const name = line.slice(0, colon).toLowerCase();
    const value = line.slice(colon + 1).trim();
    const previous = headers.get(name);
    if (previous !== undefined && name === "content-length" && previous !== value) {
      throw new ProtocolError(400, "conflicting Content-Length");
    }
    headers.set(name, previous === undefined || name === "content-length" ? value : `${previous}, ${value}`);
  }
  // RFC 9112 §3.2: a 1.1 request without Host is a 400.
  if (version === "HTTP/1.1" && !headers.has("host")) throw new ProtocolError(400, "missing Host header");
  const path = target.replace(/^https?:\/\/[^/]*/, "") || "/";
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

/** Serializes a response; `head` omits the body but keeps its length (HEAD, RFC 9110 §9.3.2). */
export function encodeResponse(
  response: HttpResponse,
  options: { keepAlive: boolean; head: boolean },
): Uint8Array {
  const body = typeof response.body === "string"
    ? encoder.encode(response.body)
    : (response.body ?? new Uint8Array());
  let text = `HTTP/1.1 ${response.status} ${REASONS[response.status] ?? "Unknown"}\r\n`;
  const headers: Record<string, string> = {
    server: `netstack/${VERSION}`,
    ...Object.fromEntries(Object.entries(response.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v])),
    "content-length": String(body.length),
    connection: options.keepAlive ? "keep-alive" : "close",
  };
  for (const [name, value] of Object.entries(headers)) text += `${name}: ${value}\r\n`;
  text += "\r\n";
  const headBytes = encoder.encode(text);
  if (options.head || body.length === 0) return headBytes;
  const out = new Uint8Array(headBytes.length + body.length);
  out.set(headBytes);
  out.set(body, headBytes.length);
  return out;
}

function errorResponse(status: number, message: string, extra: Record<string, string> = {}): HttpResponse {
  return { status, headers: { "content-type": "text/plain; charset=utf-8", ...extra }, body: `${message}\n` };
}

/** Serves requests on one connection until either side closes; resolves to the number of requests served. */
export async function serveHttp(
  conn: StreamConn,
  handler: HttpHandler,
  options: HttpServerOptions = {},
): Promise<number> {
  const maxHeader = options.maxHeaderBytes ?? 8192;
  const maxBody = options.maxBodyBytes ?? 1 << 20;
  const idleMs = options.idleTimeoutMs ?? 30_000;
  const reader = conn.readable.getReader();
  const writer = conn.writable.getWriter();
  const queue = new ByteQueue();
  let served = 0;
  let ended = false;
  let timer: ReturnType<typeof setTimeout> | undefined;

  /** Reads more bytes; false at the end of the stream or on the idle timeout. */
  const fill = async (): Promise<boolean> => {
    if (ended) return false;
    const idle = new Promise<"idle">((resolve) => (timer = setTimeout(() => resolve("idle"), idleMs)));
    const result = await Promise.race([reader.read(), idle]);
    clearTimeout(timer);
    if (result === "idle" || result.done) {
      ended = true;
      return false;
    }
    queue.push(result.value);
    return true;
  };

  try {
    while (true) {
      let end = queue.headerEnd();
      while (end < 0) {
        if (queue.length > maxHeader) throw new ProtocolError(431, "request header fields too large");
        if (!(await fill())) return served;
        end = queue.headerEnd();
      }
      if (end > maxHeader) throw new ProtocolError(431, "request header fields too large");
      const head = decoder.decode(queue.take(end)).slice(0, -4);
      const request = parseHead(head.replace(/^(\r\n)+/, ""));
      if (request.headers.has("transfer-encoding")) {
        throw new ProtocolError(501, "chunked request bodies are not supported");
      }
      const lengthText = request.headers.get("content-length") ?? "0";
      if (!/^\d+$/.test(lengthText)) throw new ProtocolError(400, "malformed Content-Length");
      const length = Number(lengthText);
      if (length > maxBody) throw new ProtocolError(413, "request body too large");
      while (queue.length < length) {
        if (!(await fill())) return served;
      }
      const body = queue.take(length);
      const persistent = keepAlive(request);
      let response: HttpResponse;
      if (request.method !== "GET" && request.method !== "HEAD") {
        response = errorResponse(405, `method ${request.method} is not allowed`, { allow: "GET, HEAD" });
      } else {
        response = handler({ ...request, body });
      }
      await writer.write(
        encodeResponse(response, { keepAlive: persistent, head: request.method === "HEAD" }),
      );
      served++;
      if (!persistent) {
        await writer.close();
        return served;
      }
    }
  } catch (error) {
    if (error instanceof ProtocolError) {
      // After a malformed request the framing is lost: answer and close (RFC 9112 §9.6).
      try {
        await writer.write(
          encodeResponse(errorResponse(error.status, error.message), { keepAlive: false, head: false }),
        );
        await writer.close();
      } catch { /* the peer is gone */ }
    }
    return served;
  } finally {
    clearTimeout(timer);
    reader.releaseLock();
    writer.releaseLock();
    conn.close();
  }
}
