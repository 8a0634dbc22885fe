/**
 * The latency plot of `bench:stack`: cumulative distributions of round-trip times (log time axis), one
 * panel per workload, netstack next to the kernel, written as a self-contained SVG (no dependency).
 *
 * @module
 */

/** One distribution: quantile points `[fraction, microseconds]`, ascending. */
export interface Distribution {
  /** Legend label, e.g. "kernel". */
  label: string;
  /** Stroke colour. */
  color: string;
  /** `[fraction in 0..1, latency µs]` points, ascending in both. */
  points: [number, number][];
}

/** One panel: a title and the distributions drawn on it. */
export interface Panel {
  /** Panel title, e.g. "1-byte RR, pinned". */
  title: string;
  /** The curves. */
  series: Distribution[];
}

const WIDTH = 420;
const HEIGHT = 300;
const MARGIN = { left: 56, right: 16, top: 30, bottom: 44 };

function escape(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/** Renders `panels` side by side as an SVG document. */
export function latencySvg(panels: Panel[], caption: string): string {
  const parts: string[] = [];
  const total = Math.max(1, panels.length) * WIDTH;
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${total}" height="${HEIGHT + 24}" ` +
      `font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="8" y="${HEIGHT + 16}" fill="#555">${escape(caption)}</text>`,
  );
  panels.forEach((panel, index) => parts.push(renderPanel(panel, index * WIDTH)));
  parts.push("</svg>");
  return parts.join("\n") + "\n";
}

function renderPanel(panel: Panel, x0: number): string {
  const values = panel.series.flatMap((s) => s.points.map((p) => p[1])).filter((v) => v > 0);
  const lo = values.length ? Math.min(...values) : 1;
  const hi = values.length ? Math.max(...values) : 10;
  const logLo = Math.floor(Math.log10(lo));
  const logHi = Math.max(logLo + 1, Math.ceil(Math.log10(hi)));
  const plotW = WIDTH - MARGIN.left - MARGIN.right;
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const sx = (us: number) =>
    x0 + MARGIN.left + (Math.log10(Math.max(us, 10 ** logLo)) - logLo) / (logHi - logLo) * plotW;
  const sy = (fraction: number) => MARGIN.top + (1 - fraction) * plotH;
  const out: string[] = [];
  out.push(`<text x="${x0 + MARGIN.left}" y="18" font-weight="bold">${escape(panel.title)}</text>`);
  out.push(
    `<rect x="${x0 + MARGIN.left}" y="${MARGIN.top}" width="${plotW}" height="${plotH}" ` +
      `fill="none" stroke="#999"/>`,
  );
  for (let e = logLo; e <= logHi; e++) {
    const x = sx(10 ** e).toFixed(1);
    out.push(`<line x1="${x}" y1="${MARGIN.top}" x2="${x}" y2="${MARGIN.top + plotH}" stroke="#eee"/>`);
    out.push(
      `<text x="${x}" y="${MARGIN.top + plotH + 14}" text-anchor="middle">${
        10 ** e >= 1000 ? `${10 ** (e - 3)} ms` : `${10 ** e} µs`
      }</text>`,
    );
  }
  for (const f of [0, 0.5, 0.9, 0.99, 1]) {
    const y = sy(f).toFixed(1);
    out.push(
      `<line x1="${x0 + MARGIN.left}" y1="${y}" x2="${x0 + MARGIN.left + plotW}" y2="${y}" stroke="#eee"/>`,
    );
    out.push(`<text x="${x0 + MARGIN.left - 4}" y="${y}" text-anchor="end" dy="4">${f}</text>`);
  }
  out.push(
    `<text x="${x0 + MARGIN.left + plotW / 2}" y="${HEIGHT - 8}" text-anchor="middle">` +
      `round trip (log scale); y: fraction of samples at or below</text>`,
  );
  panel.series.forEach((series, i) => {
    if (series.points.length === 0) return;
    const d = series.points.map(([f, us], j) =>
      `${j === 0 ? "M" : "L"}${sx(us).toFixed(1)},${sy(f).toFixed(1)}`
    )
      .join(" ");
    out.push(`<path d="${d}" fill="none" stroke="${series.color}" stroke-width="1.6"/>`);
    const ly = MARGIN.top + 14 + i * 14;
    const lx = x0 + MARGIN.left + 8;
    out.push(
      `<line x1="${lx}" y1="${ly - 4}" x2="${lx + 18}" y2="${
        ly - 4
      }" stroke="${series.color}" stroke-width="2"/>`,
    );
    out.push(`<text x="${lx + 22}" y="${ly}">${escape(series.label)}</text>`);
  });
  return out.join("\n");
}

/** Quantile points of sorted `samples` (µs) for a CDF: 200 even steps plus the far tail. */
export function quantilePoints(sorted: number[]): [number, number][] {
  if (sorted.length === 0) return [];
  const fractions: number[] = [];
  for (let i = 0; i <= 200; i++) fractions.push(i / 200);
  fractions.splice(fractions.length - 1, 0, 0.999, 0.9999);
  return fractions.map((f) => [f, sorted[Math.min(sorted.length - 1, Math.floor(f * (sorted.length - 1)))]]);
}
