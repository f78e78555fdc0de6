/**
 * Golden rows: a small CSV of input rows with the training library's own predictions beside
 * them, scored here and compared. A converter can export a model that loads and runs but
 * predicts something else (skl2onnx drops HistGradientBoosting's categorical splits); only a
 * comparison with the library it came from shows it. docs/registry.md, "Golden rows", is the contract.
 */
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { Readable } from 'node:stream';
import { NightscoreError } from '../errors.js';
import { BatchBuilder, mapColumns } from '../formats/batch.js';
import { openCsv } from '../formats/csv-read.js';
import { scanLayout } from '../formats/csv-scan.js';
import { float16Value, formatFloat32, formatFloat64 } from '../formats/numbers.js';
import { featureColumns } from './features.js';
import { createScorer, shownWidths, type OutputValues, type Scorer, type ScorerOptions } from './scorer.js';
import type { LoadedModel } from './session.js';

/** A golden file is a handful of rows, read whole: more than this is not one. */
export const MAX_GOLDEN_BYTES = 64 * 1024 * 1024;
/** The prefix of a column holding the library's prediction for an output column. */
export const EXPECTED = 'expected_';
const BATCH_ROWS = 4096;
const WORST_SHOWN = 5;

/** How the golden file's columns feed the model, when a job file gives it. */
export interface GoldenBinding {
  /** The job's model.features, model.input, model.inputs and output.columns. */
  scorer: ScorerOptions;
  /** The job's input.missing: which features' missing values are fed as NaN. */
  missing: 'reject' | 'nan' | Record<string, 'reject' | 'nan'>;
}

export interface GoldenOptions {
  /**
   * A cell passes when |got − expected| ≤ tolerance × (1 + |expected|): numpy's
   * isclose(got, expected, rtol=tolerance, atol=tolerance).
   * @defaultValue 1e-5
   */
  tolerance?: number;
  /** @defaultValue the model's own: feature_names, or every column not named expected_…; each input by its name when it has several */
  binding?: GoldenBinding;
}

/** A cell beyond the tolerance. */
export interface GoldenMiss {
  line: number;
  column: string;
  expected: string;
  got: string;
  /** |got − expected|; null for text, NaN or an infinity that differs. */
  diff: number | null;
}

/** A comparison's outcome; `checks` of a version record keep it, less `failed` and `worst`. */
export interface GoldenResult {
  file: string;
  sha256: string;
  rows: number;
  tolerance: number;
  /** The output columns compared. */
  columns: string[];
  /** The largest |got − expected| over the numeric cells. */
  max_abs_diff: number;
  /** Rows with a cell beyond the tolerance. */
  failed: number;
  /** The worst of them (at most five), worst first: each row's worst cell. */
  worst: GoldenMiss[];
}

/** Scores the rows of `file` with `model` and compares every expected_ column with the output column it names. */
export async function checkGolden(model: LoadedModel, file: string, opts: GoldenOptions = {}): Promise<GoldenResult> {
  const tolerance = opts.tolerance ?? 1e-5;
  const bytes = await readGolden(file);
  const csv = await openCsv(Readable.from([bytes]), { source: file, delimiter: ',', maxRecordBytes: 1024 * 1024 });
  const header = csv.header.names;
  let scorer = await createScorer(model, { ...(opts.binding?.scorer ?? ownBinding(model, header)), keys: [] });
  const found = header.filter((h) => h.startsWith(EXPECTED));
  if (found.length === 0) throw invalid(file, `no column is named ${EXPECTED}<output column>`, `Write the training library's predictions under ${shownNames(scorer)} (docs/registry.md, "Golden rows").`, 1);
  // An output whose width the graph leaves open is sized by the first golden rows, as a run sizes it by its date's first rows.
  let expected = scorer.open.length === 0 ? expectedColumns(file, found, scorer) : undefined;
  // Without a job, a missing value in the training data is the library's missing value: NaN.
  const columns = featureColumns(scorer.inputs, nanColumns(opts.binding?.missing ?? 'nan', scorer.features));
  const map = mapColumns(header, scorer.features, found, file);
  const layout = scanLayout(map.width, columns.map((c, j) => ({ at: map.features[j]!, float32: c.type === 'float32', missing: c.missing })), map.keys, scorer.features);
  const builder = new BatchBuilder(columns, BATCH_ROWS, file, found.length, layout.textColumn);
  const lines = recordLines(bytes, csv.header.eol);
  const tally = new Tally(tolerance);
  let rows = 0;
  const drain = async (b: BatchBuilder) => {
    const [reject] = b.takeRejects();
    if (reject) throw invalid(file, `line ${reject.line}: ${reject.reason}`, 'Every golden row must be one the job scores; fix or drop it.', reject.line);
    if (b.rows === 0) return;
    const batch = b.take();
    const { outputs: scored, failed } = await scorer.score(batch);
    // A golden row the model fails on is a disagreement no tolerance covers.
    if (failed[0]) {
      const line = lines[rows + failed[0].row + 1] ?? 0;
      throw new NightscoreError('MODEL_CHECK_FAILED', `the model fails on line ${line} of ${file}: ${failed[0].message}`, {
        source: file,
        line,
        hint: 'The training library scored this row; the ONNX model refuses it (an unknown category, an index out of range): fix the export and check again.',
      });
    }
    if (!expected) {
      scorer = await scorer.sized(shownWidths(scored, batch.rows));
      expected = expectedColumns(file, found, scorer);
    }
    const outputs = scored.map((o, i) => ({ columns: scorer.outputs[i]!, data: o.data }));
    const matched = expected;
    for (let r = 0; r < batch.rows; r++) {
      const line = lines[rows + r + 1] ?? 0;
      matched.forEach((e, k) => tally.add(line, e.name.slice(EXPECTED.length), String(batch.keys.value(r, k)), outputs[e.output]!, e.at, r, file));
      tally.endRow();
    }
    rows += batch.rows;
  };
  for await (const full of csv.scan(layout, builder)) await drain(full);
  await drain(builder);
  if (rows === 0) throw invalid(file, 'it has a header but no rows', 'Write a few hundred rows of the training or validation data with their predictions.');
  return { file: basename(file), sha256: createHash('sha256').update(bytes).digest('hex'), rows, tolerance, columns: found.map((name) => name.slice(EXPECTED.length)), max_abs_diff: tally.maxAbsDiff, failed: tally.failed, worst: tally.worst };
}

async function readGolden(file: string): Promise<Buffer> {
  try {
    const { size } = await stat(file);
    if (size > MAX_GOLDEN_BYTES) throw invalid(file, `it is ${size} bytes; a golden file is at most ${MAX_GOLDEN_BYTES}`, 'Keep a sample: a few hundred rows catch a converter\'s mistakes.');
    return await readFile(file);
  } catch (err) {
    if (err instanceof NightscoreError) throw err;
    throw invalid(file, `it cannot be read: ${(err as Error).message}`, 'Check the path of the golden file.');
  }
}

/** Without a job: the model's feature_names, else every column not named expected_…; a model of several inputs takes each from the column of its name. */
function ownBinding(model: LoadedModel, header: string[]): ScorerOptions {
  const inputs = model.session.inputs;
  if (inputs.length > 1) return { inputs: Object.fromEntries(inputs.map((i) => [i.name, [i.name]])) };
  return { features: model.featureNames ?? header.filter((h) => !h.startsWith(EXPECTED)) };
}

interface ExpectedColumn {
  name: string;
  /** Index of the output, and of the column within it. */
  output: number;
  at: number;
}

/** The expected_ columns of the header, each matched to the output column it names. */
function expectedColumns(file: string, found: string[], scorer: Scorer): ExpectedColumn[] {
  const names = scorer.outputs.flatMap((o) => o.names);
  return found.map((name) => {
    const output = scorer.outputs.findIndex((o) => o.names.includes(name.slice(EXPECTED.length)));
    if (output === -1) throw invalid(file, `column "${name}" names no output column of the model`, `The model's output columns are ${names.join(', ')}: name the predictions ${shownNames(scorer)}.`, 1);
    return { name, output, at: scorer.outputs[output]!.names.indexOf(name.slice(EXPECTED.length)) };
  });
}

/** The expected_ names of the model's output columns (an open output by its name and an index). */
function shownNames(scorer: Scorer): string {
  return scorer.outputs.flatMap((o) => (o.names.length > 0 ? o.names : [`${o.output}_<i>`])).map((n) => `${EXPECTED}${n}`).join(', ');
}

/** Counts the cells compared: the largest difference, the rows beyond the tolerance, the worst of them. */
class Tally {
  maxAbsDiff = 0;
  failed = 0;
  readonly worst: GoldenMiss[] = [];
  private rowWorst: { miss: GoldenMiss; excess: number } | undefined;
  private readonly excesses: number[] = [];

  constructor(private readonly tolerance: number) {}

  add(line: number, column: string, text: string, out: OutputValues, at: number, r: number, file: string): void {
    const width = out.columns.names.length;
    const value = out.data[r * width + at];
    const got = shownValue(out.columns.type, value);
    if (out.columns.type === 'string') {
      if (got !== text) this.miss({ line, column, expected: text, got, diff: null }, Infinity);
      return;
    }
    const e = expectedNumber(text);
    if (e === undefined) throw invalid(file, `line ${line}: ${EXPECTED}${column} is ${JSON.stringify(text)}, not a number`, 'Write the predictions as numbers (nan and inf as numpy writes them).', line);
    const g = out.columns.type === 'float16' ? float16Value(value as number) : Number(value);
    if (!Number.isFinite(e) || !Number.isFinite(g)) {
      if (!(g === e || (Number.isNaN(g) && Number.isNaN(e)))) this.miss({ line, column, expected: text, got, diff: null }, Infinity);
      return;
    }
    const diff = Math.abs(g - e);
    this.maxAbsDiff = Math.max(this.maxAbsDiff, diff);
    const allowed = this.tolerance * (1 + Math.abs(e));
    if (diff > allowed) this.miss({ line, column, expected: text, got, diff }, allowed > 0 ? diff / allowed : Infinity);
  }

  private miss(miss: GoldenMiss, excess: number): void {
    if (!this.rowWorst || excess > this.rowWorst.excess) this.rowWorst = { miss, excess };
  }

  endRow(): void {
    if (!this.rowWorst) return;
    this.failed++;
    const { miss, excess } = this.rowWorst;
    this.rowWorst = undefined;
    let at = this.excesses.findIndex((x) => excess > x);
    if (at === -1) at = this.excesses.length;
    if (at >= WORST_SHOWN) return;
    this.excesses.splice(at, 0, excess);
    this.worst.splice(at, 0, miss);
    this.excesses.length = Math.min(this.excesses.length, WORST_SHOWN);
    this.worst.length = Math.min(this.worst.length, WORST_SHOWN);
  }
}

/** An output value as nightscore writes it. */
function shownValue(type: string, value: unknown): string {
  if (type === 'float32') return formatFloat32(value as number);
  if (type === 'float16') return formatFloat32(float16Value(value as number));
  if (type === 'float64') return formatFloat64(value as number);
  return String(value);
}

/** A prediction as a training library writes it: a number, nan, inf, or a boolean. */
function expectedNumber(text: string): number | undefined {
  const t = text.trim();
  if (/^[+-]?nan$/i.test(t)) return NaN;
  if (/^[+-]?inf(inity)?$/i.test(t)) return t.startsWith('-') ? -Infinity : Infinity;
  if (/^true$/i.test(t)) return 1;
  if (/^false$/i.test(t)) return 0;
  const n = t === '' ? NaN : Number(t);
  return Number.isNaN(n) ? undefined : n;
}

/**
 * The line each record of a well-formed CSV starts on, the header's first: a line end inside
 * quotes belongs to its record, and blank lines hold none (as the scanner reads them).
 */
export function recordLines(bytes: Buffer, eol: 'lf' | 'cr'): number[] {
  const end = eol === 'cr' ? 0x0d : 0x0a;
  const lines: number[] = [];
  let line = 1;
  let quoted = false;
  let atStart = true;
  const bom = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
  for (let i = bom; i < bytes.length; i++) {
    const c = bytes[i];
    if (atStart) {
      if (c === end || (c === 0x0d && bytes[i + 1] === 0x0a)) {
        if (c !== end) i++;
        line++;
        continue;
      }
      lines.push(line);
      atStart = false;
    }
    if (c === 0x22) quoted = !quoted;
    else if (c === end) {
      line++;
      atStart = !quoted;
    }
  }
  return lines;
}

/** MODEL_CHECK_FAILED for a comparison with rows beyond the tolerance: how many, and the worst of them. */
export function checkFailedError(model: string, file: string, result: GoldenResult): NightscoreError {
  const worst = result.worst.map((m) => `line ${m.line} ${m.column}: expected ${m.expected}, got ${m.got}${m.diff === null ? '' : ` (off by ${m.diff.toPrecision(3)})`}`).join('; ');
  return new NightscoreError('MODEL_CHECK_FAILED', `${model} disagrees with ${file} on ${result.failed} of ${result.rows} rows beyond the tolerance ${result.tolerance} (|got − expected| ≤ ${result.tolerance} × (1 + |expected|)); worst: ${worst}`, {
    source: file,
    line: result.worst[0]?.line,
    column: result.worst[0] ? `${EXPECTED}${result.worst[0].column}` : undefined,
    hint: 'The ONNX model does not predict what the training library does on these rows: a converter\'s mistake (skl2onnx drops HistGradientBoosting\'s categorical splits), a step of the pipeline left out of the export, or features in another order. Fix the export and check again; raise --tolerance only for rounding (a float32 model differs from a float64 library by about 1e-7 of the value).',
  });
}

function invalid(file: string, what: string, hint: string, line?: number): NightscoreError {
  return new NightscoreError('GOLDEN_INVALID', `${file}: ${what}`, { source: file, line, hint });
}

/** The features input.missing feeds as NaN (featureColumns keeps those of float inputs). */
function nanColumns(missing: GoldenBinding['missing'], features: string[]): string[] {
  if (typeof missing === 'string') return missing === 'nan' ? features : [];
  return features.filter((f) => missing[f] === 'nan');
}
