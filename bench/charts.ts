/**
 * What drawing a chart costs (issue #27): the time to import src/observe/charts.ts, the first
 * call of each chart, then the median of 20 calls, on sizes a page and `nightscore drift` draw
 * (a histogram of 10 bins; 30 dates of 10 columns; 30 dates of run health).
 *
 *   npx tsx bench/charts.ts
 */
const started = performance.now();
const charts = await import('../src/observe/charts.js');
const importMs = performance.now() - started;

const dates = Array.from({ length: 30 }, (_, i) => new Date(Date.UTC(2025, 2, 1 + i)).toISOString().slice(0, 10));
const wave = (i: number, k: number) => Math.abs(Math.sin(i / 5 + k)) * 0.3;
const cases: Array<[string, () => string]> = [
  ['histogram (10 bins)', () => charts.histogramSvg({ title: 'monthly_charges', labels: dates.slice(0, 10), reference: [9, 8, 7, 6, 5, 5, 6, 7, 8, 9], run: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10] })],
  ['drift over time (30 dates x 10 columns)', () => charts.driftOverTimeSvg({ dates, series: Array.from({ length: 10 }, (_, k) => ({ column: `feature_${k}`, values: dates.map((_, i) => wave(i, k)) })), thresholds: { warn: 0.1, drift: 0.25 } })],
  ['run health (30 dates)', () => charts.runHealthSvg({ dates, rows: dates.map((_, i) => 1e6 + i * 1e4), rejectRate: dates.map((_, i) => wave(i, 0) / 10), durationMs: dates.map((_, i) => 180_000 + i * 1000) })],
];

function timeMs(f: () => unknown): number {
  const t = performance.now();
  f();
  return performance.now() - t;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log(`import: ${importMs.toFixed(0)} ms`);
for (const [name, draw] of cases) {
  const first = timeMs(draw);
  const runs = Array.from({ length: 20 }, () => timeMs(draw));
  const svg = draw();
  const png = timeMs(() => charts.svgToPng(svg));
  console.log(`${name}: first ${first.toFixed(1)} ms, median of 20 ${median(runs).toFixed(1)} ms, ${svg.length} bytes; svgToPng ${png.toFixed(1)} ms`);
}
