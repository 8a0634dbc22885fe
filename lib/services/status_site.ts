/**
 * The stack's own web site on its HTTP service: `GET /` a small HTML status page, `GET /stats` the
 * counters as JSON. Anything else is a 404.
 *
 * @module
 */

import type { HttpHandler, HttpResponse } from "./http.ts";
import { VERSION } from "../version.ts";

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
      }</b>. Counters as JSON: <a href="/stats">/stats</a>.</p>
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
    return {
      status: 404,
      headers: { "content-type": "text/plain; charset=utf-8" },
      body: `no page at ${request.path}\n`,
    };
  };
}
