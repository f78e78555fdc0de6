import { Resvg } from '@resvg/resvg-js';
import { DOMParser } from 'linkedom';
import { describe, expect, it } from 'vitest';
import { driftOverTimeSvg, histogramSvg, runHealthSvg, svgToPng } from '../src/observe/charts.js';
import { NightscoreError } from '../src/errors.js';

/**
 * Charts drawn on the server for drift and run health: each is a standalone SVG (well-formed
 * XML with the SVG namespace, which resvg's strict parser checks), holding the labels a person
 * reads, no script and no link; the same data gives the same bytes, whatever the time zone.
 */

// Taken before any chart is drawn: drawing must add nothing to the global scope (a DOM of its own per call).
const GLOBALS = Object.keys(globalThis).sort();

const DATES = ['2025-03-01', '2025-03-02', '2025-03-03', '2025-03-04', '2025-03-05'];
const histogram = {
  title: 'monthly_charges',
  labels: ['≤ 18.2', '18.2–25.1', '25.1–35', '35–45.3', '> 45.3'],
  reference: [200, 200, 200, 200, 200],
  run: [10, 20, 30, 40, 0],
};
const drift = {
  dates: DATES,
  series: [
    { column: 'monthly_charges', values: [0.02, 0.05, 0.12, 0.2, 0.31] },
    { column: 'tenure', values: [0.01, null, 0.02, 0.015, 0.01] },
  ],
  thresholds: { warn: 0.1, drift: 0.25 },
};
const health = {
  dates: DATES,
  rows: [1_200_000, 1_250_000, null, 1_190_000, 1_330_000],
  rejectRate: [0.001, 0.002, null, 0.04, 0.002],
  durationMs: [180_000, 190_000, null, 240_000, 200_000],
};

/** The chart as a tree, after checking it is an SVG that a strict parser takes. */
function parse(svg: string) {
  expect(() => new Resvg(svg)).not.toThrow();
  const doc = new DOMParser().parseFromString(svg, 'image/svg+xml');
  const root = doc.documentElement;
  expect(root.tagName).toBe('svg');
  expect(root.getAttribute('xmlns')).toBe('http://www.w3.org/2000/svg');
  // A legend entry holds its full name as a tooltip (<title>): the text is what is drawn.
  const texts = [...doc.querySelectorAll('text')].map((t) => (t.textContent ?? '').replace(t.querySelector('title')?.textContent ?? '', ''));
  const titles = [...doc.querySelectorAll('title')].map((t) => t.textContent ?? '');
  return { root, texts, titles };
}

/** Nothing a browser would run or fetch: no script, no handler, no URL but the namespace's name. */
function expectInert(svg: string): void {
  expect(svg).not.toMatch(/<script|<foreignObject|\son\w+=|href=|url\(|@import/i);
  expect(svg.replaceAll('xmlns="http://www.w3.org/2000/svg"', '')).not.toMatch(/https?:/);
  expect(svg).not.toContain('NaN');
}

describe('histogramSvg', () => {
  it('draws the shares of reference and run per bin, with the bins, the column and a legend', () => {
    const svg = histogramSvg(histogram);
    const { root, texts, titles } = parse(svg);
    expect([root.getAttribute('width'), root.getAttribute('height')]).toEqual(['320', '120']);
    expect(texts).toEqual(expect.arrayContaining(['monthly_charges', 'reference', 'run', '≤ 18.2', '> 45.3', '0%']));
    // Shares, not counts: 200 of 1,000 reference rows, 40 of 100 run rows.
    expect(titles).toContain('35–45.3: reference 20.0%, run 40.0%');
    expect(titles).toContain('> 45.3: reference 20.0%, run 0.0%');
    expectInert(svg);
  });

  it('draws an all-zero series as empty bars, not NaN', () => {
    const svg = histogramSvg({ ...histogram, run: [0, 0, 0, 0, 0] });
    const { titles } = parse(svg);
    expect(titles).toContain('≤ 18.2: reference 20.0%, run 0.0%');
    expectInert(svg);
    expectInert(histogramSvg({ title: 'empty', labels: ['a'], reference: [0], run: [0] }));
  });

  it('escapes what a column name or label holds', () => {
    const name = '<script>alert(1)</script> & "x"';
    const svg = histogramSvg({ ...histogram, title: name, labels: [name, 'b', 'c', 'd', 'e'] });
    expect(parse(svg).texts).toContain('<script>alert(1)</script> & "x"');
    expectInert(svg);
  });

  it('refuses counts that do not fit the bins', () => {
    expect(() => histogramSvg({ ...histogram, run: [1, 2] })).toThrow(NightscoreError);
    expect(() => histogramSvg({ ...histogram, run: [1, 2, 3, 4, NaN] })).toThrow(/not a count/);
  });
});

describe('driftOverTimeSvg', () => {
  it('draws PSI per column over the dates, with the thresholds and a legend of the columns', () => {
    const svg = driftOverTimeSvg(drift);
    const { texts, titles } = parse(svg);
    expect(texts).toEqual(expect.arrayContaining(['monthly_charges', 'tenure', 'warn 0.1', 'drift 0.25', '0.30']));
    expect(texts).toEqual(expect.arrayContaining(['Mar 1', 'Mar 3', 'Mar 5']));
    expect(titles).toContain('monthly_charges 2025-03-05: PSI 0.31');
    // A date without a value is a gap, not a point at zero.
    expect(titles.filter((t) => t.startsWith('tenure '))).toHaveLength(4);
    expectInert(svg);
  });

  it('draws one date, or none, without NaN', () => {
    expectInert(driftOverTimeSvg({ ...drift, dates: ['2025-03-01'], series: [{ column: 'a', values: [0.3] }] }));
    expectInert(driftOverTimeSvg({ ...drift, dates: [], series: [] }));
  });

  it('refuses a date that is not a calendar date', () => {
    expect(() => driftOverTimeSvg({ ...drift, dates: ['03/01/2025', ...DATES.slice(1)] })).toThrow(/not a calendar date/);
  });
});

describe('runHealthSvg', () => {
  it('draws rows read, reject rate and duration per date, each with its latest value', () => {
    const svg = runHealthSvg(health);
    const { root, texts, titles } = parse(svg);
    expect(root.getAttribute('width')).toBe('248');
    expect(texts).toEqual(expect.arrayContaining(['rows read', 'reject rate', 'duration', 'Mar 1', '1,330,000', '0.2%', '3.3m', '0m', '1M']));
    expect(titles).toEqual(expect.arrayContaining(['2025-03-04: 1,190,000', '2025-03-04: 4.0%', '2025-03-04: 4.0m']));
    expect(titles.filter((t) => t.startsWith('2025-03-03'))).toEqual([]);
    expectInert(svg);
  });

  it('says so when no date has a value', () => {
    const none = [null, null];
    const { texts } = parse(runHealthSvg({ dates: DATES.slice(0, 2), rows: none, rejectRate: none, durationMs: none }));
    expect(texts.filter((t) => t === 'no runs')).toHaveLength(3);
  });
});

describe('the same data', () => {
  const draw = () => [histogramSvg(histogram), driftOverTimeSvg(drift), runHealthSvg(health)];

  it('gives the same bytes, in any time zone, and leaves no global behind', () => {
    const first = draw();
    const zone = process.env.TZ;
    try {
      process.env.TZ = 'Pacific/Kiritimati';
      expect(draw()).toEqual(first);
      process.env.TZ = 'America/Los_Angeles';
      expect(draw()).toEqual(first);
    } finally {
      if (zone === undefined) delete process.env.TZ;
      else process.env.TZ = zone;
    }
    expect(Object.keys(globalThis).sort()).toEqual(GLOBALS);
  });
});

describe('svgToPng', () => {
  it('gives a PNG of the size the SVG gives', () => {
    for (const [svg, width, height] of [
      [histogramSvg(histogram), 320, 120],
      [runHealthSvg(health), 248, 196],
    ] as const) {
      const png = svgToPng(svg);
      expect([...png.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
      const ihdr = new DataView(png.buffer, png.byteOffset + 16, 8);
      expect([ihdr.getUint32(0), ihdr.getUint32(4)]).toEqual([width, height]);
    }
  });
});
