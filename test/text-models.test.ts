import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildModel } from '../scripts/onnx-builder.js';
import { runCli, Workspace } from './support/workspace.js';

/**
 * Text models lowercase through a C library locale. skl2onnx's TfidfVectorizer and
 * CountVectorizer exports start as this model does: the [N, 1] text column reshaped to [N],
 * then a StringNormalizer (locale en_US.UTF-8, onnxruntime's default too), then the
 * vocabulary (here a LabelEncoder stands in for the tokenizer and TfIdfVectorizer). A
 * machine without the locale cannot load the model; that is its own error, naming the locale.
 */

const DATE = '2026-12-01';

/** text (string [N, 1]) → spam (float [N]): 1 for "spam", 0 for "ham", 0.5 for any other word, after lowercasing. */
const textModel = (locale: string) =>
  buildModel({
    producer: 'skl2onnx',
    inputs: [{ name: 'text', elem: 'string', shape: ['N', 1] }],
    outputs: [{ name: 'spam', elem: 'float', shape: ['N'] }],
    nodes: [
      { op: 'Reshape', inputs: ['text', 'flat'], outputs: ['words'] },
      { op: 'StringNormalizer', inputs: ['words'], outputs: ['lower'], attrs: { case_change_action: 'LOWER', is_case_sensitive: 0, locale } },
      { op: 'LabelEncoder', domain: 'ai.onnx.ml', inputs: ['lower'], outputs: ['spam'], attrs: { keys_strings: ['spam', 'ham'], values_floats: { floats: [1, 0] }, default_float: 0.5 } },
    ],
    ints: { flat: { dims: [1], values: [-1] } },
  });

/** The locales this machine has (`locale -a`), as glibc spells them (C.utf8 for C.UTF-8). */
const installed = execFileSync('locale', ['-a'], { encoding: 'utf8' }).split('\n').map((l) => l.trim().toLowerCase().replace('utf-8', 'utf8'));

let ws: Workspace;
beforeAll(async () => {
  ws = await Workspace.create();
  await ws.write(`in/dt=${DATE}/a.csv`, 'id,text\n1,SPAM\n2,Ham\n3,hello\n');
});
afterAll(async () => ws?.remove());

async function run(locale: string) {
  const name = `text-${locale.toLowerCase().replace(/\W/g, '-')}`;
  await ws.write(`${name}.onnx`, textModel(locale));
  const job = await ws.job(`${name}.yaml`, {
    name,
    input: { uri: 'in/dt={date}/', format: 'csv', key: ['id'] },
    model: { path: `${name}.onnx`, features: ['text'] },
    output: { uri: `out/${name}/dt={date}/`, format: 'csv' },
  });
  return { name, res: await runCli(['run', job, '--date', DATE]) };
}

describe('a text model whose StringNormalizer asks for a locale', () => {
  it('is MODEL_LOCALE_MISSING (exit 1) naming the locale and both fixes, when the machine lacks it', async () => {
    expect(installed).not.toContain('xx_yy.utf8');
    const { res } = await run('xx_YY.UTF-8');
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('nightscore: MODEL_LOCALE_MISSING');
    expect(res.stderr).toContain('lowercases text in the locale "xx_YY.UTF-8", which this machine does not have installed');
    // Install it, or export with a locale every machine has.
    expect(res.stderr).toContain("apt-get install -y locales && sed -i 's/^# *xx_YY.UTF-8/xx_YY.UTF-8/' /etc/locale.gen && locale-gen");
    expect(res.stderr).toContain("set the StringNormalizer's locale attribute to C.UTF-8");
    expect(res.stderr).not.toContain('MODEL_INVALID');
  });

  it('scores when the locale is installed (C.UTF-8, which every glibc has)', async () => {
    expect(installed).toContain('c.utf8');
    const { name, res } = await run('C.UTF-8');
    expect(res.code, res.stderr).toBe(0);
    expect(await ws.csv(`out/${name}/dt=${DATE}/part-00000.csv`)).toEqual([['id', 'spam'], ['1', '1'], ['2', '0'], ['3', '0.5']]);
  });
});
