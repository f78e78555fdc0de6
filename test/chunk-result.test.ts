import { describe, expect, it } from 'vitest';
import { emptyStats, mergeStats, type ChunkResult, type ChunkStats } from '../src/run/chunk-result.js';
import { readFailedPlan } from '../src/run/failed-run.js';
import { chunkFiles, type RunManifest } from '../src/run/manifest.js';
import { openLocation } from '../src/storage/open.js';
import { seededRandom } from '../src/random.js';
import { ColumnCounter, type ColumnCounts } from '../src/drift/counts.js';

/**
 * A chunk's counts merge exactly and whatever the order: chunks finish in any order, on any
 * worker, and partial merges (a retry's kept chunks, a page's running total) are merged again,
 * so every grouping and order of the same chunks must give the same JSON bytes.
 */

/** A seeded generator: the same cases on every run, and a failure names its seed. */
const random = seededRandom;
const int = (next: () => number, n: number) => Math.floor(next() * n);
const pick = <T>(next: () => number, from: T[]): T[] => from.filter(() => next() < 0.4);
const shuffle = <T>(next: () => number, items: T[]): T[] => {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = int(next, i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
};

// Keys a merge must order the same whatever it meets first: URIs that sort apart from how they
// are listed, non-ASCII, integer-like, and names that are Object.prototype's own.
const URIS = ['s3://raw/day/b.csv', 's3://raw/day/a.csv', 'file:///in/Z.csv', 'file:///in/é.csv', 'file:///in/a b.csv', 's3://raw/day/10.csv', 's3://raw/day/9.csv', '__proto__', 'constructor'];
const STAGES = ['drift', 'challenger:v2', 'challenger:v10', 'canary'];
const COUNTS = ['agree', 'disagree', 'bin:0', 'bin:10', 'bin:9', '7', '12', 'toString'];

/** Random counts of a chunk, keys in random order, some with stage counts. */
function randomStats(next: () => number): ChunkStats {
  const scored = int(next, 1e6);
  const rejected = int(next, 100);
  const inputs = Object.fromEntries(shuffle(next, pick(next, URIS)).map((uri) => [uri, int(next, 1e5)]));
  const stats: ChunkStats = { rows: { read: scored + rejected, scored, rejected }, inputs };
  if (next() < 0.7) {
    stats.stages = Object.fromEntries(shuffle(next, pick(next, STAGES)).map((stage) => [stage, Object.fromEntries(shuffle(next, pick(next, COUNTS)).map((c) => [c, int(next, 1e4)]))]));
  }
  return stats;
}

/** `parts` merged in a random order and a random grouping: groups of groups, each merged on its own first. */
function mergeRandomly(next: () => number, parts: ChunkStats[]): ChunkStats {
  const order = shuffle(next, parts);
  if (order.length <= 2) return mergeStats(order);
  const groups: ChunkStats[][] = [];
  for (let at = 0; at < order.length;) {
    const size = 1 + int(next, order.length - at);
    groups.push(order.slice(at, at + size));
    at += size;
  }
  // One group of all would merge them flat: split it, so that every level nests.
  if (groups.length === 1) return mergeStats([mergeRandomly(next, order.slice(0, 1)), mergeRandomly(next, order.slice(1))]);
  return mergeStats(shuffle(next, groups.map((g) => mergeRandomly(next, g))));
}

describe('chunk results', () => {
  it('merge to identical bytes in any grouping and order', () => {
    for (let seed = 1; seed <= 50; seed++) {
      const next = random(seed);
      const parts = Array.from({ length: 1 + int(next, 40) }, () => randomStats(next));
      const before = JSON.stringify(parts);
      const once = JSON.stringify(mergeStats(parts));
      for (let trial = 0; trial < 10; trial++) expect(JSON.stringify(mergeRandomly(next, parts)), `seed ${seed}, trial ${trial}`).toBe(once);
      // A merge reads its parts and changes none of them.
      expect(JSON.stringify(parts)).toBe(before);
    }
  });

  it('merge to the exact totals, every map in key order', () => {
    const next = random(99);
    const parts = Array.from({ length: 200 }, () => randomStats(next));
    const merged = mergeStats(parts);
    const total = (get: (s: ChunkStats) => number | undefined) => parts.reduce((n, s) => n + (get(s) ?? 0), 0);
    // Own properties only: `toString` of a map that has none is Object.prototype's.
    const own = (counts: Record<string, number> | undefined, key: string) => (counts && Object.hasOwn(counts, key) ? counts[key] : undefined);
    expect(merged.rows).toEqual({ read: total((s) => s.rows.read), scored: total((s) => s.rows.scored), rejected: total((s) => s.rows.rejected) });
    for (const uri of URIS) expect(merged.inputs[uri], uri).toBe(total((s) => own(s.inputs, uri)));
    for (const stage of STAGES) {
      for (const c of COUNTS) expect(merged.stages![stage]![c], `${stage} ${c}`).toBe(total((s) => own(own(s.stages as never, stage) as never, c)));
    }
    expect(Object.getPrototypeOf(merged.inputs)).toBe(Object.prototype);
    const integerLike = (k: string) => /^(?:0|[1-9]\d*)$/.test(k);
    // Integer-like keys come first in numeric order (the engine's rule), the others sorted.
    const ordered = (keys: string[]) => [...keys.filter(integerLike).sort((a, b) => Number(a) - Number(b)), ...keys.filter((k) => !integerLike(k)).sort()];
    expect(Object.keys(merged.inputs)).toEqual([...URIS].sort());
    expect(Object.keys(merged.stages!)).toEqual([...STAGES].sort());
    for (const counts of Object.values(merged.stages!)) expect(Object.keys(counts)).toEqual(ordered(COUNTS));
  });

  it('merged with the empty stats are themselves, on either side', () => {
    const next = random(5);
    for (let i = 0; i < 50; i++) {
      const raw = randomStats(next);
      // A chunk's own stats are a merge (scoreChunk merges its segments' counts): in key order.
      const stats = mergeStats([raw]);
      expect(stats).toEqual({ ...raw, ...(raw.stages && Object.keys(raw.stages).length === 0 ? { stages: undefined } : {}) });
      expect(JSON.stringify(mergeStats([stats, emptyStats()]))).toBe(JSON.stringify(stats));
      expect(JSON.stringify(mergeStats([emptyStats(), stats]))).toBe(JSON.stringify(stats));
    }
    expect(mergeStats([])).toEqual(emptyStats());
  });

  it('have no stages field until a stage counts, so a result reads as before stages had a place', () => {
    const stats = mergeStats([{ rows: { read: 2, scored: 1, rejected: 1 }, inputs: { 'file:///in/a.csv': 2 } }, emptyStats()]);
    expect(JSON.stringify(stats)).toBe('{"rows":{"read":2,"scored":1,"rejected":1},"inputs":{"file:///in/a.csv":2}}');
    expect(Object.keys(mergeStats([{ ...emptyStats(), stages: {} }]))).toEqual(['rows', 'inputs']);
  });

  it('refuse a stage count that is not an exact integer rather than round it', () => {
    const stage = (n: number): ChunkStats => ({ ...emptyStats(), stages: { drift: { 'bin:0': n } } });
    expect(() => mergeStats([stage(2 ** 53 - 1), stage(1)])).toThrow(expect.objectContaining({ code: 'STATS_NOT_EXACT', message: 'a drift count of 9007199254740991 + 1 is not an exact integer' }));
    expect(() => mergeStats([stage(0.1)])).toThrow(expect.objectContaining({ code: 'STATS_NOT_EXACT' }));
  });
});

/** A probability column's counts of `rows` random values, some missing. */
function probabilityCounts(next: () => number, rows: number): ColumnCounts {
  const counter = new ColumnCounter({ kind: 'probability' });
  for (let i = 0; i < rows; i++) counter.addNumber(next() < 0.1 ? null : next());
  return counter.result();
}

/** A chunk's drift counts per segment (drift.segment): the segments it met, each with its rows counted in every column. */
function segmentedStats(next: () => number): ChunkStats {
  const segments = shuffle(next, pick(next, ['value:north', 'value:south', 'value:OTHER', 'value:', 'other', 'null']));
  const drift_segments = Object.fromEntries(segments.map((key) => {
    const rows = 1 + int(next, 50);
    return [key, { rows, counts: { 'prediction:p': probabilityCounts(next, rows), 'feature:f': probabilityCounts(next, rows) } }];
  }));
  const scored = Object.values(drift_segments).reduce((a, s) => a + s.rows, 0);
  return { rows: { read: scored, scored, rejected: 0 }, inputs: {}, drift_segments };
}

describe('a chunk\'s drift counts per segment', () => {
  it('merge to identical bytes in any grouping and order, to the exact totals', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const next = random(seed);
      const parts = Array.from({ length: 1 + int(next, 20) }, () => segmentedStats(next));
      const once = mergeStats(parts);
      for (let trial = 0; trial < 5; trial++) expect(JSON.stringify(mergeRandomly(next, parts)), `seed ${seed}, trial ${trial}`).toBe(JSON.stringify(once));
      const met = [...new Set(parts.flatMap((p) => Object.keys(p.drift_segments!)))].sort();
      expect(Object.keys(once.drift_segments!)).toEqual(met);
      for (const key of met) {
        const of = parts.flatMap((p) => (Object.hasOwn(p.drift_segments!, key) ? [p.drift_segments![key]!] : []));
        expect(once.drift_segments![key]!.rows).toBe(of.reduce((a, s) => a + s.rows, 0));
        expect(once.drift_segments![key]!.counts['prediction:p']!.n).toBe(of.reduce((a, s) => a + s.counts['prediction:p']!.n, 0));
      }
    }
  });
});

describe('a failed run\'s chunk results read back', () => {
  const out = openLocation('file:///tmp/nightscore-chunk-result/out/');
  const uri = 'file:///tmp/nightscore-chunk-result/in/a.csv';
  const manifest = (stats: Record<string, unknown>): RunManifest => {
    const completed = { index: 0, stats, part: { uri: out.storage.uri(chunkFiles(out, 0).part), rows: 3 }, stagedRejects: null, segments: [{ uri, start: 0, newlines: 4 }] };
    return {
      retry: {
        spec: { input: { objects: [{ uri, version: 'v1', bytes: 40 }] }, models: [{ sha256: 'a'.repeat(64), engine: { name: 'onnxruntime', version: '1.0.0', threads: 1 } }], output: { format: 'csv' } },
        chunks: [{ index: 0, segments: [] }],
        completed: [completed as unknown as ChunkResult],
      },
    } as unknown as RunManifest;
  };
  const from = { source: 'file:///tmp/nightscore-chunk-result/out/_manifest.json', rerun: 'nightscore run j.yaml --date 2026-01-01' };
  const counted = { rows: { read: 3, scored: 3, rejected: 0 }, inputs: { [uri]: 3 } };

  it('keep the counts a stage added, and add none when no stage counted', () => {
    const stages = { drift: { 'bin:0': 2, 'bin:1': 1 } };
    expect(readFailedPlan(manifest({ ...counted, stages }), out, from).completed[0]!.stats).toEqual({ ...counted, stages });
    expect(Object.keys(readFailedPlan(manifest(counted), out, from).completed[0]!.stats)).toEqual(['rows', 'inputs']);
  });

  it('keep the drift counts per segment, and refuse ones that do not add up as a chunk writes them', () => {
    const next = random(7);
    const p = (rows: number) => ({ 'prediction:p': probabilityCounts(next, rows) });
    const drift_segments = { 'value:north': { rows: 2, counts: p(2) }, null: { rows: 1, counts: p(1) } };
    expect(readFailedPlan(manifest({ ...counted, drift_segments }), out, from).completed[0]!.stats.drift_segments).toEqual(drift_segments);
    const at = /retry\.completed\[0\]\.stats\.drift_segments/;
    expect(() => readFailedPlan(manifest({ ...counted, drift_segments: { 'value:north': { rows: 2, counts: p(2) } } }), out, from)).toThrow(new RegExp(`${at.source} is not segments whose rows add up to the chunk's 3 scored rows`));
    expect(() => readFailedPlan(manifest({ ...counted, drift_segments: { north: { rows: 3, counts: p(3) } } }), out, from)).toThrow(new RegExp(`${at.source}\\["north"\\] is not a segment key`));
    expect(() => readFailedPlan(manifest({ ...counted, drift_segments: { other: { rows: 3, counts: p(2) } } }), out, from)).toThrow(new RegExp(`${at.source}\\["other"\\]\\.counts\\["prediction:p"\\] is not counts of the segment's 3 rows`));
    expect(() => readFailedPlan(manifest({ ...counted, drift_segments: { other: { rows: 3, counts: { 'prediction:p': { bins: [3] } } } } }), out, from)).toThrow(/is not a column's drift counts/);
  });

  it('refuse a stage count that is not a whole number', () => {
    expect(() => readFailedPlan(manifest({ ...counted, stages: { drift: { 'bin:0': 0.5 } } }), out, from)).toThrow(/retry\.completed\[0\]\.stats\.stages\["drift"\]\["bin:0"\] is not a whole number from 0/);
    expect(() => readFailedPlan(manifest({ ...counted, stages: ['drift'] }), out, from)).toThrow(/retry\.completed\[0\]\.stats\.stages is not an object/);
  });
});
