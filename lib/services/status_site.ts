/**
 * The stack's own web site on its HTTP service: `GET /` a small HTML status page, `GET /stats` the
 * counters as JSON, and fixed resources for load tools (ab, wrk, hey count a response whose length changes
 * as a failure): `/static.html`, a small page that never changes, and `/bytes/N`, N bytes of the chargen
 * pattern (deterministic, N up to 16 MiB). Anything else is a 404.
 *
 * @module
 */

import type { HttpBody, HttpHandler, HttpResponse } from "./http.ts";
import { chargenPattern } from "./chargen.ts";
import { VERSION } from "../version.ts";

/** The largest `/bytes/N`. */
export const MAX_BYTES_RESOURCE = 16 << 20;

/** The page at `/static.html`: constant, so every response has the same length. */
export const STATIC_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>netstack</title></head>
<body><h1>netstack</h1><p>A static page of constant length, for load tools.</p></body></html>
`;

const STATIC_BYTES = new TextEncoder().encode(STATIC_PAGE);
const CHUNK = 65536;
const PATTERN_LENGTH = chargenPattern().length;
let patternBlock: Uint8Array | null = null;

/** `length` bytes of the chargen pattern from its start, as pieces of one shared block. */
export function patternBody(length: number): HttpBody {
  return {
    length,
    *chunks() {
      if (patternBlock === null) {
        // Enough whole periods that any piece of CHUNK bytes from any phase is one subarray.
        const pattern = chargenPattern();
        const periods = Math.ceil(CHUNK / pattern.length) + 1;
        patternBlock = new Uint8Array(pattern.length * periods);
        for (let i = 0; i < periods; i++) patternBlock.set(pattern, i * pattern.length);
      }
      for (let sent = 0; sent < length;) {
        const size = Math.min(CHUNK, length - sent);
        const phase = sent % PATTERN_LENGTH;
        yield patternBlock.subarray(phase, phase + size);
        sent += size;
      }
    },
  };
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function renderRows(value: unknown, prefix = ""): string {
  if (value === null || typeof value !== "object") {
    return `<tr><th>${escapeHtml(prefix)}</th><td>${escapeHtml(String(value))}</td></tr>\n`;
  }
  let rows = "";
  for (const [key, inner] of Object.entries(value)) {
    rows += renderRows(inner, prefix ? `${prefix}.${key}` : key);
  }
  return rows;
}

/** The handler serving `/` and `/stats` from a counters snapshot function. */
export function statusSite(stats: () => Record<string, unknown>): HttpHandler {
  return (request): HttpResponse => {
    if (request.path === "/stats") {
      return {
        status: 200,
        headers: { "content-type": "application/json", "cache-control": "no-store" },
        body: JSON.stringify(stats(), null, 2) + "\n",
      };
    }
    if (request.path === "/" || request.path === "/index.html") {
      const snapshot = stats();
      const body = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>netstack ${VERSION}</title>
<style>body{font:14px system-ui,sans-serif;margin:2em}table{border-collapse:collapse}
th,td{padding:2px 10px;border-bottom:1px solid #ddd;text-align:left}td{font-family:monospace}</style></head>
<body><h1>netstack ${VERSION}</h1>
<p>A user-space TCP/IP stack at <b>${
        escapeHtml(String(snapshot.address ?? ""))
      }</b>. Counters as JSON: <a href="/stats">/stats</a>.
For load tools: <a href="/static.html">/static.html</a> and <a href="/bytes/1024">/bytes/N</a>.</p>
<table>
${renderRows(snapshot)}</table>
</body></html>
`;
      return {
        status: 200,
        headers: { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" },
        body,
      };
    }
    if (request.path === "/static.html") {
      return { status: 200, headers: { "content-type": "text/html; charset=utf-8" }, body: STATIC_BYTES };
    }
    const bytes = /^\/bytes\/(\d{1,9})$/.exec(request.path);
    if (bytes !== null) {
      const length = Number(bytes[1]);
      if (length > MAX_BYTES_RESOURCE) {
        return {
          status: 400,
          headers: { "content-type": "text/plain; charset=utf-8" },
          body: `/bytes/N serves at most ${MAX_BYTES_RESOURCE} bytes\n`,
        };
      }
      return {
        status: 200,
        headers: { "content-type": "application/octet-stream" },
        body: patternBody(length),
      };
    }
    return {
      status: 404,
      headers: { "content-type": "text/plain; charset=utf-8" },
      body: `no page at ${request.path}\n`,
    };
  };
}
