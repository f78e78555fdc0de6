import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildModel } from '../scripts/onnx-builder.js';
import { runCli, Workspace } from './support/workspace.js';

/**
 * Every bad input a user can hand nightscore: each gets an error code, a message naming
 * where the problem is, and an exit code, never a stack trace.
 */
let ws: Workspace;
const FEATURES = ['a', 'b', 'c'];
const GOOD_CSV = 'id,a,b,c\n1,0.5,1,2\n2,1.5,2,3\n';

beforeAll(async () => {
  ws = await Workspace.create();
  await ws.model('models/abc.onnx', { weights: [0.1, -0.2, 0.3], bias: 0.05 });
  await ws.model('models/named.onnx', { weights: [0.1, -0.2, 0.3], bias: 0.05, featureNames: FEATURES });
  await ws.model('models/five.onnx', { weights: [1, 1, 1, 1, 1], bias: 0 });
  await ws.model('models/zipmap.onnx', { weights: [0.1, -0.2, 0.3], bias: 0, zipmap: true });
  await ws.model('models/bytes.onnx', { weights: [0.1, -0.2, 0.3], bias: 0, inputElem: 'uint8' });
  await ws.write('models/garbage.onnx', 'this is not a model');
  await ws.write('in/dt=2026-01-01/x.csv', GOOD_CSV);
});
afterAll(async () => {
  await ws.remove();
});

async function job(name: string, over: { model?: Record<string, unknown>; input?: Record<string, unknown>; output?: Record<string, unknown> } = {}) {
  return ws.job(`${name}.yaml`, {
    name,
    input: { uri: 'in/dt={date}/', format: 'csv', key: ['id'], ...over.input },
    model: { path: 'models/abc.onnx', features: FEATURES, ...over.model },
    output: { uri: `out/${name}/dt={date}/`, format: 'csv', ...over.output },
  });
}

function expectNoStack(stderr: string) {
  expect(stderr).not.toMatch(/\n\s+at /);
}

describe('bad input gets a clear error', () => {
  it('unknown column: names the file, the column and the header', async () => {
    const file = await job('unknown-col', { model: { features: ['a', 'b', 'tenure'] } });
    const res = await runCli(['run', file, '--date', '2026-01-01']);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/INPUT_MISSING_COLUMN: file:\/\/.*\/in\/dt=2026-01-01\/x\.csv:1: no column "tenure" \(feature\); the header has "id", "a", "b", "c"/);
    expect(res.stderr).toContain('hint: Fix model.features');
    expectNoStack(res.stderr);
    // The run failed while scoring, so its manifest says so and there is no _SUCCESS.
    expect(await ws.list('out/unknown-col/dt=2026-01-01')).toEqual(['_manifest.json']);
    expect((await ws.manifest('out/unknown-col/dt=2026-01-01')).error?.code).toBe('INPUT_MISSING_COLUMN');
  });

  it('wrong feature count: the model signature is checked before any data is read', async () => {
    const file = await job('five', { model: { path: 'models/five.onnx' } });
    const res = await runCli(['run', file, '--date', '2026-01-01']);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/MODEL_SIGNATURE: .*five\.onnx: input "input" has shape \[N, 5\], but the job has 3 features; expected \[N, 3\]/);
    expectNoStack(res.stderr);
    await expect(ws.list('out/five')).rejects.toThrow(/ENOENT/);
  });

  it('an input of a type nightscore does not read (uint8) is refused, naming the types it reads and the fix', async () => {
    const file = await job('bytes', { model: { path: 'models/bytes.onnx' } });
    const res = await runCli(['validate', file]);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/MODEL_SIGNATURE: .*bytes\.onnx: input "input" takes uint8; nightscore reads float32, float64, float16, int64, int32, bool, string/);
    expect(res.stderr).toContain('hint: Re-export the input with one of those element types');
  });

  it.each([1, 64])('a model with a fixed batch dimension of %i rows is MODEL_FIXED_BATCH at validate, naming the size and the fix', async (rows) => {
    const model = buildModel({
      inputs: [{ name: 'input', elem: 'float', shape: [rows, 3] }],
      outputs: [{ name: 'y', elem: 'float', shape: [rows, 1] }],
      nodes: [{ op: 'MatMul', inputs: ['input', 'W'], outputs: ['y'] }],
      floats: { W: { dims: [3, 1], values: [1, 1, 1] } },
    });
    const file = await job(`fixed-${rows}`, { model: { path: await ws.write(`models/fixed-${rows}.onnx`, model) } });
    for (const args of [['validate', file], ['run', file, '--date', '2026-01-01']]) {
      const res = await runCli(args);
      expect(res.code).toBe(1);
      expect(res.stderr).toContain(`MODEL_FIXED_BATCH: ${ws.path(`models/fixed-${rows}.onnx`)}: input "input" has a fixed batch dimension of ${rows} rows ([${rows}, 3])`);
      expect(res.stderr).toContain('dynamic batch dimension');
      expectNoStack(res.stderr);
    }
    await expect(ws.list(`out/fixed-${rows}`)).rejects.toThrow(/ENOENT/);
  });

  it('ZipMap model: scored from the tensor behind the ZipMap, its columns named by class label (test/zipmap.test.ts has the rest)', async () => {
    const file = await job('zipmap', { model: { path: 'models/zipmap.onnx' } });
    const res = await runCli(['run', file, '--date', '2026-01-01']);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect((await ws.csv('out/zipmap/dt=2026-01-01/part-00000.csv'))[0]).toEqual(['id', 'label', 'output_probability_0', 'output_probability_1']);

    const selected = await job('zipmap-label', { model: { path: 'models/zipmap.onnx' }, output: { columns: { label: 'label' } } });
    const ok = await runCli(['run', selected, '--date', '2026-01-01']);
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    expect(await ws.csv('out/zipmap-label/dt=2026-01-01/part-00000.csv')).toEqual([['id', 'label'], ['1', '1'], ['2', '1']]);
  });

  it('a file that is not a model', async () => {
    const file = await job('garbage', { model: { path: 'models/garbage.onnx' } });
    const res = await runCli(['run', file, '--date', '2026-01-01']);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/MODEL_INVALID: .*garbage\.onnx is not a loadable ONNX model/);
    expectNoStack(res.stderr);
  });

  it('a pinned model.sha256 refuses a model file that changed', async () => {
    const { createHash } = await import('node:crypto');
    const { readFile } = await import('node:fs/promises');
    const sha = createHash('sha256').update(await readFile(ws.path('models/abc.onnx'))).digest('hex');
    const pinned = await job('pinned', { model: { sha256: sha } });
    expect((await runCli(['run', pinned, '--date', '2026-01-01'])).code).toBe(0);
    const other = await job('pinned-other', { model: { sha256: 'f'.repeat(64) } });
    const res = await runCli(['run', other, '--date', '2026-01-01']);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(`MODEL_SHA_MISMATCH: ${ws.path('models/abc.onnx')} has sha256 ${sha}, but the job pins model.sha256 ${'f'.repeat(64)}`);
    await expect(ws.list('out/pinned-other')).rejects.toThrow(/ENOENT/);
  });

  it('a missing model file', async () => {
    const file = await job('nomodel', { model: { path: 'models/nope.onnx' } });
    const res = await runCli(['run', file, '--date', '2026-01-01']);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/MODEL_NOT_FOUND: cannot read model .*models\/nope\.onnx/);
  });

  it('no features listed and none in the model', async () => {
    const file = await ws.job('nofeatures.yaml', {
      name: 'nofeatures',
      input: { uri: 'in/dt={date}/', format: 'csv' },
      model: { path: 'models/abc.onnx' },
      output: { uri: 'out/nofeatures/', format: 'csv' },
    });
    const res = await runCli(['validate', file]);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('MODEL_NO_FEATURES: model.features is not set and');
  });

  it('features come from the model’s feature_names when the job lists none', async () => {
    const file = await ws.job('named.yaml', {
      name: 'named',
      input: { uri: 'in/dt={date}/', format: 'csv', key: ['id'] },
      model: { path: 'models/named.onnx' },
      output: { uri: 'out/named/dt={date}/', format: 'csv' },
    });
    const res = await runCli(['validate', file, '--date', '2026-01-01']);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(res.stdout).toContain('features a, b, c');
    expect(res.stdout).toContain('columns label, probabilities_0, probabilities_1');
    expect(res.stdout).toMatch(/input {4}2026-01-01: 1 object\(s\), \d+ bytes/);
  });

  it('validate --date reads every input header: a feature column missing from one file is INPUT_MISSING_COLUMN with a suggestion, as the run says it', async () => {
    await ws.write('in/dt=2026-01-15/a.csv', GOOD_CSV);
    await ws.write('in/dt=2026-01-15/b.csv', 'id,a,bb,c\n3,1,2,3\n');
    const file = await job('header', { model: { features: ['a', 'b', 'c'] } });
    const res = await runCli(['validate', file, '--date', '2026-01-15']);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/nightscore: INPUT_MISSING_COLUMN: file:\/\/.*\/in\/dt=2026-01-15\/b\.csv:1: no column "b" \(feature\); did you mean "bb"\?; the header has/);
    expect(res.stdout).toBe('');
    const run = await runCli(['run', file, '--date', '2026-01-15']);
    expect(run.stderr).toContain('no column "b" (feature); did you mean "bb"?');
    const good = await runCli(['validate', file, '--date', '2026-01-01']);
    expect(good.stdout).toContain('every feature and key column is there');
  });

  it('malformed CSV: names the file and line, and the run fails', async () => {
    await ws.write('in/dt=2026-01-02/x.csv', 'id,a,b,c\n1,0.5,1,2\n2,"1.5"x,2,3\n3,1,1,1\n');
    const file = await job('malformed');
    const res = await runCli(['run', file, '--date', '2026-01-02']);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/CSV_MALFORMED: file:\/\/.*\/x\.csv:3: malformed CSV: Invalid Closing Quote: got "x" at line 3/);
    expectNoStack(res.stderr);
  });

  it('an unclosed quote is capped by max_record_bytes instead of eating memory', async () => {
    await ws.write('in/dt=2026-01-06/x.csv', `id,a,b,c\n1,"${'z'.repeat(5000)}\n`);
    const file = await job('capped', { input: { csv: { max_record_bytes: 1000 } } });
    const res = await runCli(['run', file, '--date', '2026-01-06']);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/CSV_RECORD_TOO_LARGE: .*x\.csv:2: malformed CSV/);
    expect(res.stderr).toContain('input.csv.max_record_bytes');
  });

  it('empty file: no header row', async () => {
    await ws.write('in/dt=2026-01-03/x.csv', '');
    const file = await job('empty');
    const res = await runCli(['run', file, '--date', '2026-01-03']);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/INPUT_EMPTY: file:\/\/.*\/x\.csv: the file is empty; expected a header row/);
  });

  it('a header-only day reads zero rows and fails limits.min_rows', async () => {
    await ws.write('in/dt=2026-01-05/x.csv', 'id,a,b,c\n');
    const file = await job('header-only');
    const res = await runCli(['run', file, '--date', '2026-01-05']);
    expect(res.code).toBe(3);
    expect(res.stderr).toContain('TOO_FEW_ROWS: read 0 rows; limits.min_rows is 1');
  });

  it('missing date: no input for it, and the output folder is left untouched', async () => {
    const file = await job('missing');
    const res = await runCli(['run', file, '--date', '2026-01-04']);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/INPUT_NOT_FOUND: no input for 2026-01-04: .*\/in\/dt=2026-01-04\/ has no \.csv or \.csv\.gz objects/);
    expect(res.stderr).toContain('hint: Check the date');
    await expect(ws.list('out/missing')).rejects.toThrow(/ENOENT/);
  });

  it('invalid job YAML: names the file, the line, the key path and what was expected', async () => {
    const file = await ws.write(
      'bad.yaml',
      ['name: bad', 'input:', '  uri: in/', '  format: tsv', 'model: { path: models/abc.onnx }', 'output: { uri: out/, format: csv }', ''].join('\n'),
    );
    const res = await runCli(['run', file, '--date', '2026-01-01']);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/JOB_INVALID: .*bad\.yaml:4: input\.format: expected "csv" or "parquet", got "tsv"/);
    expectNoStack(res.stderr);
  });

  it.each([
    ['a typo in a key, at its own line', 'name: t\ninput: { uri: in/, format: csv }\nmodel: { path: m.onnx }\noutput: { uri: out/, format: csv }\n\n\n\nchunck:\n  rows: 5\n', /t\.yaml:8: chunck: unknown key; did you mean "chunk"\?/],
    ['a typo of a required key, named as a typo rather than the key missing', 'name: t\ninput: { uri: in/, format: csv }\nmodel: { path: m.onnx }\noutptu: { uri: out/, format: csv }\n', /t\.yaml:4: outptu: unknown key; did you mean "output"\?/],
    ['a typo in a nested key', 'name: t\ninput: { uri: in/, format: csv }\nmodel:\n  path: m.onnx\n  featurs: [a]\noutput: { uri: out/, format: csv }\n', /t\.yaml:5: model\.featurs: unknown key; did you mean "features"\?/],
    ['a missing key', 'name: t\ninput: { uri: in/, format: csv }\noutput: { uri: out/, format: csv }\n', /model: missing; invalid input: expected object, received undefined/],
    ['a wrong type', 'name: t\ninput: { uri: in/, format: csv }\nmodel: { path: m.onnx }\noutput: { uri: out/, format: csv }\nchunk: { rows: many }\n', /t\.yaml:5: chunk\.rows: invalid input: expected number, received string/],
    ['broken YAML', 'name: t\ninput: [unclosed\n', /t\.yaml:\d+: not valid YAML/],
    ['an unknown placeholder', 'name: t\ninput: { uri: "in/{day}/", format: csv }\nmodel: { path: m.onnx }\noutput: { uri: out/, format: csv }\n', /input\.uri: unknown placeholder \{day\}/],
    ['an unknown scheme', 'name: t\ninput: { uri: "gs://b/x/", format: csv }\nmodel: { path: m.onnx }\noutput: { uri: out/, format: csv }\n', /input\.uri: unsupported scheme "gs:\/\/"/],
  ])('invalid job file: %s', async (_label, text, pattern) => {
    const file = await ws.write('t.yaml', text);
    const res = await runCli(['validate', file]);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/JOB_INVALID/);
    expect(res.stderr).toMatch(pattern);
    expectNoStack(res.stderr);
  });

  it('bad usage exits 2', async () => {
    const file = await job('usage');
    expect((await runCli(['run', file])).code).toBe(2);
    expect((await runCli(['frobnicate'])).code).toBe(2);
    const badDate = await runCli(['run', file, '--date', '2026-02-30']);
    expect(badDate.code).toBe(2);
    expect(badDate.stderr).toContain('BAD_DATE: "2026-02-30" is not a calendar date in YYYY-MM-DD form');
    const traversal = await runCli(['run', file, '--date', '../../etc']);
    expect(traversal.code).toBe(2);
    expect((await runCli(['--help'])).code).toBe(0);
  });
});
