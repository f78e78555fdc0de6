/**
 * Charts for people to look at drift and run health: plain data in, an SVG string out, drawn
 * by Observable Plot into a linkedom document (no browser), and a PNG through resvg. The SVG
 * holds no script and names no font file or URL, so the page (which runs no script) can put it
 * inline and the CLI can write it to a file. The same data gives the same bytes.
 *
 * Plot, linkedom and resvg take a while to load: the page and the CLI import this module
 * lazily (`await import(...)`), only when they draw.
 */
import * as Plot from '@observablehq/plot';
import { Resvg } from '@resvg/resvg-js';
import { parseHTML } from 'linkedom';
import { NightscoreError } from '../errors.js';

/** A column's reference and run counts on the same bins, for a run page's table of columns. */
export interface HistogramChartData {
  /** The column's name, drawn above the bars. */
  title: string;
  /** One label per bin, in the order to draw them. */
  labels: string[];
  /** Counts per bin in the reference; drawn as shares of their total. */
  reference: number[];
  /** Counts per bin in the run; drawn as shares of their total. */
  run: number[];
}

/** PSI per column over a range of dates, for `nightscore drift --svg`. */
export interface DriftOverTimeChartData {
  /** Calendar dates (`YYYY-MM-DD`), one per value of each series. */
  dates: string[];
  /** One line per column; `null` where the date has no value (no run, column not profiled). */
  series: Array<{ column: string; values: Array<number | null> }>;
  /** The PSI thresholds, drawn as rules. */
  thresholds: { warn: number; drift: number };
}

/** The first things an operator looks at, per date, for a job's section of the page. */
export interface RunHealthChartData {
  /** Calendar dates (`YYYY-MM-DD`), one per value of each series. */
  dates: string[];
  rows: Array<number | null>;
  /** Rejected rows as a share of rows read (0 to 1). */
  rejectRate: Array<number | null>;
  durationMs: Array<number | null>;
}

const SVG_NS = 'http://www.w3.org/2000/svg';
const REFERENCE_FILL = '#a9b1bd';
const RUN_FILL = '#1565c0';
// Set on the root so the text stays dark on a white ground in a dark-mode viewer of a lone .svg.
const SVG_STYLE = { background: '#fff', color: '#1d2330' };
const CHAR_WIDTH = 6;

/**
 * Bars of the share of reference and run rows per bin: the reference as a wide grey bar, the
 * run as a narrower blue one inside it, so a shift reads at a glance at this small size.
 * Each bar's tooltip (an SVG `<title>`) gives the bin and both shares.
 */
export function histogramSvg(data: HistogramChartData): string {
  const n = data.labels.length;
  checkLengths('histogram', n, { reference: data.reference, run: data.run });
  const reference = countsToShares(data.reference, 'reference');
  const run = countsToShares(data.run, 'run');
  const bins = data.labels.map((label, i) => ({ i, label, reference: reference[i]!, run: run[i]! }));
  const top = Math.max(0, ...reference, ...run);
  const width = 320;
  const marginLeft = 34;
  const tip = (b: (typeof bins)[number]) => `${b.label}: reference ${formatShare(b.reference)}, run ${formatShare(b.run)}`;
  return renderSvg({
    width,
    height: 120,
    marginTop: 18,
    marginLeft,
    marginRight: 6,
    marginBottom: 20,
    x: {
      type: 'band',
      domain: bins.map((b) => b.i),
      // Indexes, not labels, on the axis: two bins may share a label and Plot would merge them.
      ticks: thinTicks(data.labels, width - marginLeft - 6),
      tickFormat: (i: number) => truncate(data.labels[i] ?? '', 12),
      label: null,
      padding: 0.1,
    },
    y: { domain: [0, top > 0 ? top : 1], nice: true, ticks: 2, tickFormat: '.0%', label: null },
    marks: [
      Plot.barY(bins, { x: 'i', y: 'reference', fill: REFERENCE_FILL, title: tip }),
      Plot.barY(bins, { x: 'i', y: 'run', fill: RUN_FILL, insetLeft: 3, insetRight: 3, title: tip }),
      Plot.ruleY([0]),
      headline(data.title, 'top-left', 'currentColor', 2 - marginLeft),
      headline('run', 'top-right', RUN_FILL),
      headline('reference', 'top-right', REFERENCE_FILL, -4 - 3 * CHAR_WIDTH),
    ],
  });
}

/**
 * A line with points per column over the dates, the warn and drift thresholds as dashed and
 * solid rules, and a legend of the columns in the right margin (drawn as marks: Plot's own
 * legends are HTML, which a lone SVG cannot hold).
 */
export function driftOverTimeSvg(data: DriftOverTimeChartData): string {
  for (const s of data.series) checkLengths('drift over time', data.dates.length, { [s.column]: s.values });
  const days = data.dates.map((d) => parseDate(d));
  const columns = data.series.map((s) => s.column);
  const points = data.series.flatMap((s) =>
    s.values.map((psi, i) => ({ column: s.column, day: days[i]!, date: data.dates[i]!, psi: finiteOrNull(psi, 'PSI') })),
  );
  const legendWidth = 24 + CHAR_WIDTH * Math.max(0, ...columns.map((c) => truncate(c, 28).length));
  const height = Math.max(240, 50 + 14 * columns.length);
  const { warn, drift } = data.thresholds;
  return renderSvg({
    width: 640 + legendWidth,
    height,
    marginTop: 24,
    marginRight: legendWidth,
    marginLeft: 44,
    x: { type: 'utc', domain: dayDomain(days), ticks: dayTicks(days, 10), tickFormat: '%b %-d', label: null },
    y: { domain: [0, Math.max(drift * 1.2, ...points.map((p) => p.psi ?? 0))], nice: true, grid: true, label: 'PSI' },
    color: { type: 'ordinal', domain: columns, scheme: 'tableau10' },
    marks: [
      Plot.ruleY([warn], { stroke: '#a66f00', strokeDasharray: '4,3' }),
      Plot.ruleY([drift], { stroke: '#c62828' }),
      Plot.lineY(points, { x: 'day', y: 'psi', z: 'column', stroke: 'column' }),
      Plot.dot(points, { x: 'day', y: 'psi', fill: 'column', r: 2.5, title: (p: (typeof points)[number]) => `${p.column} ${p.date}: PSI ${p.psi === null ? '' : +p.psi.toPrecision(3)}` }),
      thresholdLabel(`warn ${warn}`, warn, '#a66f00'),
      thresholdLabel(`drift ${drift}`, drift, '#c62828'),
      ...columns.flatMap((column, i) => legendEntry(column, i)),
    ],
  });
}

/** A challenger's share of rows agreeing with the champion per date, one line per challenger. */
export interface AgreementChartData {
  dates: string[];
  series: Array<{ name: string; values: Array<number | null> }>;
}

/** Agreement per date (0 to 1), a line with points per challenger and a legend in the right margin, as driftOverTimeSvg draws PSI. */
export function agreementSvg(data: AgreementChartData): string {
  for (const s of data.series) checkLengths('agreement', data.dates.length, { [s.name]: s.values });
  const days = data.dates.map((d) => parseDate(d));
  const names = data.series.map((s) => s.name);
  const points = data.series.flatMap((s) => s.values.map((v, i) => ({ name: s.name, day: days[i]!, date: data.dates[i]!, value: finiteOrNull(v, 'agreement') })));
  const legendWidth = 24 + CHAR_WIDTH * Math.max(0, ...names.map((c) => truncate(c, 28).length));
  const low = Math.min(1, ...points.map((p) => p.value ?? 1));
  return renderSvg({
    width: 420 + legendWidth,
    height: Math.max(160, 50 + 14 * names.length),
    marginTop: 20,
    marginRight: legendWidth,
    marginLeft: 44,
    x: { type: 'utc', domain: dayDomain(days), ticks: dayTicks(days, 6), tickFormat: '%b %-d', label: null },
    y: { domain: [Math.max(0, low - 0.02), 1], nice: true, grid: true, label: 'agreement', tickFormat: '.1~%' },
    color: { type: 'ordinal', domain: names, scheme: 'tableau10' },
    marks: [
      Plot.lineY(points, { x: 'day', y: 'value', z: 'name', stroke: 'name' }),
      Plot.dot(points, { x: 'day', y: 'value', fill: 'name', r: 2.5, title: (p: (typeof points)[number]) => `${p.name} ${p.date}: ${p.value === null ? 'no comparison' : formatShare(p.value)}` }),
      ...names.flatMap((name, i) => legendEntry(name, i)),
    ],
  });
}

/**
 * Three sparklines stacked in one SVG, rows read, reject rate and duration, each with its own
 * scale and its latest value, on one date axis drawn under the last. Plot facets share one y
 * scale, so each line is its own plot, nested in one root.
 */
export function runHealthSvg(data: RunHealthChartData): string {
  const n = data.dates.length;
  checkLengths('run health', n, { rows: data.rows, rejectRate: data.rejectRate, durationMs: data.durationMs });
  const days = data.dates.map((d) => parseDate(d));
  const panels = [
    { name: 'rows read', values: data.rows, format: formatCount, tick: '~s' as string | ((v: number) => string) },
    { name: 'reject rate', values: data.rejectRate, format: formatShare, tick: '.1~%' },
    durationPanel(data.durationMs),
  ];
  const { document } = parseHTML('<!doctype html><html><body></body></html>');
  const root = document.createElementNS(SVG_NS, 'svg');
  const width = 248;
  const marginLeft = 40;
  let y = 0;
  for (const [k, panel] of panels.entries()) {
    const last = k === panels.length - 1;
    const height = last ? 84 : 56;
    const points = panel.values.map((v, i) => ({ day: days[i]!, date: data.dates[i]!, value: finiteOrNull(v, panel.name) }));
    const latest = points.findLast((p) => p.value !== null);
    const svg = plotInto(document, {
      width,
      height,
      marginTop: 18,
      marginLeft,
      // Room for half of the last date's label, which a nested <svg> would otherwise clip.
      marginRight: 20,
      marginBottom: last ? 30 : 4,
      x: { type: 'utc', domain: dayDomain(days), ticks: dayTicks(days, 3), tickFormat: '%b %-d', label: null, axis: last ? 'bottom' : null },
      y: { domain: [0, Math.max(0, ...points.map((p) => p.value ?? 0)) || 1], nice: true, ticks: 2, tickFormat: panel.tick, label: null },
      marks: [
        Plot.ruleY([0], { strokeOpacity: 0.3 }),
        Plot.lineY(points, { x: 'day', y: 'value', stroke: RUN_FILL }),
        Plot.dot(points, { x: 'day', y: 'value', fill: RUN_FILL, r: 1.8, title: (p: (typeof points)[number]) => `${p.date}: ${panel.format(p.value ?? 0)}` }),
        headline(panel.name, 'top-left', 'currentColor', 2 - marginLeft),
        headline(latest ? panel.format(latest.value ?? 0) : 'no runs', 'top-right', latest ? RUN_FILL : '#8a93a3'),
      ],
    });
    svg.setAttribute('y', String(y));
    root.appendChild(svg);
    y += height;
  }
  for (const [name, value] of Object.entries({ xmlns: SVG_NS, width: String(width), height: String(y), viewBox: `0 0 ${width} ${y}`, style: 'background:#fff;color:#1d2330' })) {
    root.setAttribute(name, value);
  }
  return root.outerHTML;
}

/**
 * A PNG of `svg` at the size its root gives, on a white ground. Text is drawn with this
 * machine's fonts: on one without any (a slim container image), text is left out.
 */
export function svgToPng(svg: string): Uint8Array {
  const png = new Resvg(svg, { background: '#fff', font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' } }).render().asPng();
  return new Uint8Array(png.buffer, png.byteOffset, png.byteLength);
}

type PlotOptions = Plot.PlotOptions;
type Document = ReturnType<typeof parseHTML>['document'];
type SvgElement = ReturnType<Document['createElementNS']>;

/** Draws into a document of its own, so no call sees what another left behind. */
function renderSvg(options: PlotOptions): string {
  const { document } = parseHTML('<!doctype html><html><body></body></html>');
  const svg = plotInto(document, options);
  // Plot leaves it out (a browser's DOM knows the namespace); a file read on its own needs it.
  svg.setAttribute('xmlns', SVG_NS);
  return svg.outerHTML;
}

function plotInto(document: Document, options: PlotOptions): SvgElement {
  const svg = Plot.plot({ ...options, style: SVG_STYLE, document: document as unknown as PlotOptions['document'] });
  return svg as unknown as SvgElement;
}

/** One line of text in the margin above the frame. */
function headline(text: string, frameAnchor: 'top-left' | 'top-right', fill: string, dx = 0): Plot.Markish {
  const start = frameAnchor === 'top-left';
  return Plot.text([truncate(text, 40)], {
    frameAnchor,
    text: Plot.identity,
    dx,
    dy: -10,
    textAnchor: start ? 'start' : 'end',
    fill,
    fontWeight: start ? 'bold' : 'normal',
  });
}

/** Drawn over the lines, on a white halo, so a line through it does not hide it. */
function thresholdLabel(text: string, y: number, fill: string): Plot.Markish {
  return Plot.text([text], { frameAnchor: 'right', y, dx: -2, dy: -7, textAnchor: 'end', text: Plot.identity, fill, stroke: '#fff', strokeWidth: 3 });
}

function legendEntry(column: string, i: number): Plot.Markish[] {
  const at = { frameAnchor: 'top-right', dy: 6 + 14 * i } as const;
  return [
    Plot.dot([column], { ...at, dx: 14, fill: Plot.identity, r: 4 }),
    Plot.text([column], { ...at, dx: 22, text: (c: string) => truncate(c, 28), textAnchor: 'start', title: Plot.identity }),
  ];
}

/**
 * Durations drawn in one unit chosen by the longest, so the axis ticks fall on round numbers
 * of it (round numbers of milliseconds make ticks such as 1.7m).
 */
function durationPanel(values: Array<number | null>) {
  const longest = Math.max(0, ...values.map((v) => (v !== null && Number.isFinite(v) ? v : 0)));
  const [unit, ms] = longest >= 7_200_000 ? ['h', 3_600_000] : longest >= 120_000 ? ['m', 60_000] : longest >= 2000 ? ['s', 1000] : ['ms', 1];
  return {
    name: 'duration',
    values: values.map((v) => (v === null ? null : v / ms)),
    format: (v: number) => formatDuration(v * ms),
    tick: (v: number) => `${+v.toFixed(2)}${unit}`,
  };
}

function countsToShares(counts: number[], name: string): number[] {
  for (const c of counts) {
    if (!Number.isFinite(c) || c < 0) throw chartError(`the ${name} counts hold ${c}, not a count`);
  }
  const total = counts.reduce((a, b) => a + b, 0);
  // An empty column (no rows, or all missing) has no shares to draw: bars of height 0, not NaN.
  return counts.map((c) => (total > 0 ? c / total : 0));
}

/** Every step-th label, so that labels about as wide as the longest do not overlap. */
function thinTicks(labels: string[], plotWidth: number): number[] {
  const longest = Math.max(1, ...labels.map((l) => truncate(l, 12).length));
  const fit = Math.max(1, Math.floor(plotWidth / (longest * CHAR_WIDTH + 6)));
  const step = Math.ceil(labels.length / fit);
  return labels.map((_, i) => i).filter((i) => i % step === 0);
}

function dayDomain(days: Date[]): [Date, Date] {
  const times = days.map((d) => d.getTime());
  const first = times.length ? Math.min(...times) : Date.UTC(2000, 0, 1);
  const last = times.length ? Math.max(...times) : first;
  // A single date still needs a span for the axis to have a width.
  return first === last ? [new Date(first - 86_400_000), new Date(last + 86_400_000)] : [new Date(first), new Date(last)];
}

/**
 * At most `most` of the dates themselves, evenly spaced, first included: the scale's own
 * ticks for a few days fall on hours.
 */
function dayTicks(days: Date[], most: number): Date[] {
  const sorted = [...new Set(days.map((d) => d.getTime()))].sort((a, b) => a - b);
  const step = Math.ceil(sorted.length / most);
  return sorted.filter((_, i) => i % step === 0).map((t) => new Date(t));
}

function parseDate(date: string): Date {
  const day = /^\d{4}-\d{2}-\d{2}$/.test(date) ? new Date(`${date}T00:00:00Z`) : new Date(NaN);
  if (Number.isNaN(day.getTime())) throw chartError(`"${date}" is not a calendar date (YYYY-MM-DD)`);
  return day;
}

function finiteOrNull(value: number | null, name: string): number | null {
  if (value !== null && !Number.isFinite(value)) throw chartError(`a ${name} value of ${value}: give null for a date without one`);
  return value;
}

function checkLengths(chart: string, n: number, series: Record<string, unknown[]>): void {
  for (const [name, values] of Object.entries(series)) {
    if (values.length !== n) throw chartError(`the ${chart} chart has ${n} labels or dates but ${values.length} values of ${name}`);
  }
}

function chartError(message: string): NightscoreError {
  return new NightscoreError('INTERNAL', `cannot draw a chart: ${message}`, { hint: 'The chart is drawn from nightscore\'s own statistics: report it.' });
}

function truncate(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

function formatShare(share: number): string {
  return `${(share * 100).toFixed(1)}%`;
}

function formatCount(count: number): string {
  return Math.round(count).toLocaleString('en-US');
}

function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)}s`;
  if (ms < 3_600_000) return `${(ms / 60_000).toFixed(1)}m`;
  return `${(ms / 3_600_000).toFixed(1)}h`;
}
