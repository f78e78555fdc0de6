/**
 * The pieces every page is made of. Every value goes into the HTML through hono's `html`
 * tagged template, which escapes strings (job names, messages, reject reasons, URIs: any of
 * them can hold `<`, `"` or `&`) and passes nested templates through: nothing here builds
 * markup by concatenating strings.
 */
import { html, raw } from 'hono/html';
import type { HtmlEscapedString } from 'hono/utils/html';
import type { ErrorRecord } from '../errors.js';
import type { Notice } from './context.js';
import type { DriftStatus } from '../drift/statistics.js';
import type { CellState } from './dates.js';

export type Html = HtmlEscapedString;

/**
 * `html`, typed as the string it returns: no value given to it here is a Promise, so the
 * result is always synchronous.
 */
export const h = (strings: TemplateStringsArray, ...values: unknown[]): Html => html(strings, ...values) as Html;

/** Labels of the cell states, as the legend and totals say them. */
export const STATE_LABELS: Record<CellState, string> = {
  succeeded: 'succeeded',
  stale: 'stale model',
  failed: 'failed',
  interrupted: 'interrupted',
  running: 'running',
  scheduled: 'queued',
  missing: 'missing',
  cancelled: 'cancelled',
  unreadable: 'unreadable',
};

/** Labels of the drift statuses, as a cell's mark, the legend and the run page say them. */
export const DRIFT_LABELS: Record<DriftStatus, string> = {
  drift: 'drifted',
  warn: 'drift warning',
  inconclusive: 'drift inconclusive',
  ok: 'no drift',
};

const CSS = `
*{box-sizing:border-box}body{margin:0;font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2330;background:#f5f6f8}
header{display:flex;gap:16px;align-items:center;flex-wrap:wrap;padding:10px 20px;background:#1d2330;color:#fff}
header a{color:#cfe1ff}header .brand{font-weight:700;font-size:16px;color:#fff;text-decoration:none}header form{display:flex;gap:6px;align-items:center;margin-left:auto}
header input{font:inherit;padding:2px 4px;width:110px}main{padding:16px 20px}h1{font-size:20px;margin:0 0 12px}h2{font-size:15px;margin:0 0 4px}h3{font-size:14px;margin:16px 0 6px}
.jobs{display:flex;flex-wrap:wrap;gap:14px}.job{background:#fff;border:1px solid #dde1e7;border-radius:6px;padding:10px 12px;width:272px}
.job .meta{color:#5b6474;font-size:12px;margin:0 0 6px;overflow-wrap:anywhere}
.cal{display:grid;grid-template-columns:repeat(7,34px);gap:3px;margin-top:6px}.dow{font-size:10px;color:#8a93a3;text-align:center}
.cell{display:flex;flex-direction:column;justify-content:center;align-items:center;height:34px;border-radius:4px;text-decoration:none;font-size:12px;color:#fff;position:relative}
.cell .m{position:absolute;top:0;left:2px;font-size:8px;opacity:.85}.cell .x{font-size:9px;line-height:1}
.chip{display:inline-block;padding:1px 7px;border-radius:10px;font-size:12px;margin:0 4px 4px 0;color:#fff}
.s-succeeded{background:#2e7d32}.s-stale{background:#a66f00}.cell.s-stale{background:repeating-linear-gradient(135deg,#2e7d32 0 5px,#a66f00 5px 10px)}
.dm{display:inline-block;width:9px;height:9px;border-radius:50%;border:1.5px solid #fff;vertical-align:-1px;margin-right:4px}.cell .dm{position:absolute;top:2px;right:2px;margin:0}
.dm-drift{background:#6a1b9a}.dm-warn{background:#f9a825}.dm-inconclusive{background:#b0bec5}.dm-ok{background:transparent}td .dm-ok,h3 .dm-ok{border-color:#8a93a3}.chip.d-drift{background:#6a1b9a}.chip.d-warn{background:#f9a825;color:#3a2a00}.chip.d-inconclusive{background:#b0bec5;color:#1d2330}.chip.d-ok{background:#e3e6ea;color:#5b6474}
.health{margin-top:8px}.health svg,.hist svg{display:block;max-width:100%;height:auto}.drift-table td{vertical-align:middle}.drift-table .reasons{max-width:260px;color:#5b6474}
.s-failed{background:#c62828}.s-interrupted{background:#8d2c5a}.s-running{background:#1565c0}.s-scheduled{background:#90caf9;color:#0d2a4a}.s-missing{background:#e3e6ea;color:#5b6474}
.s-cancelled{background:#757575}.s-unreadable{background:#ef6c00}
.legend{margin:0 0 12px}.notice{background:#fff4e5;border:1px solid #f0b46b;border-radius:6px;padding:8px 12px;margin:0 0 10px}
.notice code,.error code{font-weight:700}.error{background:#fdecea;border:1px solid #e99;border-radius:6px;padding:10px 12px}
.hint{color:#5b6474}.panels{display:grid;grid-template-columns:repeat(auto-fit,minmax(340px,1fr));gap:14px;margin-top:18px}
.panel{background:#fff;border:1px solid #dde1e7;border-radius:6px;padding:10px 12px;overflow:auto}
table{border-collapse:collapse;width:100%;font-size:12px}th,td{text-align:left;padding:3px 6px;border-bottom:1px solid #eceef2;vertical-align:top}th{white-space:nowrap}td.wrap{overflow-wrap:anywhere}
th{color:#5b6474;font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums}.mono{font-family:ui-monospace,Menlo,Consolas,monospace;overflow-wrap:anywhere}
dl{display:grid;grid-template-columns:max-content 1fr;gap:3px 14px;margin:0}dt{color:#5b6474}dd{margin:0}.card{background:#fff;border:1px solid #dde1e7;border-radius:6px;padding:10px 12px;margin:0 0 14px}
.placeholder{border:1px dashed #b8bfca;border-radius:6px;padding:10px 12px;color:#5b6474;margin:0 0 14px;background:#fafbfc}
.muted{color:#8a93a3}.id{white-space:nowrap}`;

export interface LayoutOptions {
  title: string;
  /** Reload the page every this many seconds (a meta refresh: no script). */
  refreshSeconds?: number;
  /** The range form's values, on pages that have one. */
  range?: { from: string; to: string };
}

export function layout(opts: LayoutOptions, body: Html): Html {
  const refresh = opts.refreshSeconds ? h`<meta http-equiv="refresh" content="${opts.refreshSeconds}">` : '';
  const range = opts.range
    ? h`<form method="get" action="/"><label>from <input name="from" value="${opts.range.from}" pattern="\\d{4}-\\d{2}-\\d{2}"></label><label>to <input name="to" value="${opts.range.to}" pattern="\\d{4}-\\d{2}-\\d{2}"></label><button>show</button></form>`
    : '';
  return h`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">${refresh}
<title>${opts.title} · nightscore</title><style>${raw(CSS)}</style></head>
<body><header><a class="brand" href="/">nightscore</a><a href="/">runs by date</a><a href="/models">models</a><a href="/queues">queues (Bull Board)</a><a href="/api/jobs">API</a>${range}</header>
<main>${body}</main></body></html>`;
}

/**
 * An SVG drawn by observe/charts.ts, as markup: that module builds it as a DOM (escaping every
 * text it holds) and puts no script, handler or link in it, so it goes in as it is.
 */
export function svgHtml(svg: string): Html {
  return raw(svg) as Html;
}

/** The drift mark: a dot whose colour says the status (the text is in the cell's or row's title). */
export function driftMark(status: DriftStatus): Html {
  return h`<span class="dm dm-${status}" data-drift-mark="${status}"></span>`;
}

export function stateChip(state: CellState, text: string = STATE_LABELS[state]): Html {
  return h`<span class="chip s-${state}">${text}</span>`;
}

/** Banners for the notices, each said once however many parts of the page ran into it. */
export function noticesHtml(all: Notice[]): Html {
  const seen = new Set<string>();
  const notices = all.filter((n) => {
    const key = `${n.scope}\0${n.error.code}\0${n.error.message}`;
    return !seen.has(key) && seen.add(key);
  });
  return h`${notices.map((n) => h`<div class="notice" data-notice="${n.error.code}"><b>${n.scope}</b>: ${errorLine(n.error)}</div>`)}`;
}

/** `CODE: message` and the hint, for a banner. */
export function errorLine(e: ErrorRecord): Html {
  return h`<code>${e.code}</code>: ${e.message}${e.hint ? h`<br><span class="hint">${e.hint}</span>` : ''}`;
}

export function fmtInt(n: number | null | undefined): string {
  return n === null || n === undefined ? '–' : n.toLocaleString('en-US');
}

export function fmtBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let u = 0;
  for (; v >= 1024 && u < units.length - 1; u++) v /= 1024;
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[u]}`;
}

/** An ISO 8601 instant to the minute, as a table cell has room for: `2026-11-22 02:00`. */
export function fmtMinute(iso: string | undefined): string {
  return iso ? `${iso.slice(0, 10)} ${iso.slice(11, 16)}` : '–';
}

export function fmtMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '–';
  return ms < 1000 ? `${ms} ms` : ms < 120_000 ? `${(ms / 1000).toFixed(1)} s` : `${(ms / 60_000).toFixed(1)} min`;
}

/** A run page's address. Job names and dates are URL-safe by their schemas; encoded anyway. */
export function runHref(job: string, date: string): string {
  return `/runs/${encodeURIComponent(job)}/${encodeURIComponent(date)}`;
}
