import * as ort from 'onnxruntime-node';
import { REPO, type Workspace } from './workspace.js';

/** The torch MLP export the tests fetch from S3: model.onnx with its weights in model.onnx.data. */
export const TORCH_MLP = `${REPO}/models/torch-mlp`;
export const TORCH_MLP_FEATURES = Array.from({ length: 20 }, (_, i) => `f${i}`);

/**
 * A day of `count` rows for the torch MLP (float32 values in [-2, 2) from a seeded generator),
 * written as `in/dt=<date>/a.csv` with keys k0, k1, …; and onnxruntime's own predictions for
 * them, which a run must reproduce bit for bit.
 */
export async function torchMlpDay(ws: Workspace, date: string, count: number, seed: number): Promise<{ rows: number[][]; expected: Float32Array }> {
  let state = seed;
  const next = () => ((state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 4 - 2;
  const rows = Array.from({ length: count }, () => TORCH_MLP_FEATURES.map(() => Math.fround(next())));
  await ws.write(`in/dt=${date}/a.csv`, [`id,${TORCH_MLP_FEATURES.join(',')}`, ...rows.map((r, i) => `k${i},${r.join(',')}`)].join('\n') + '\n');
  const session = await ort.InferenceSession.create(`${TORCH_MLP}/model.onnx`);
  const expected = (await session.run({ input: new ort.Tensor('float32', Float32Array.from(rows.flat()), [count, TORCH_MLP_FEATURES.length]) })).p!.data as Float32Array;
  await session.release();
  return { rows, expected };
}
