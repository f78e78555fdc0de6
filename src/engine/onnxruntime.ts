/**
 * onnxruntime-node behind the Engine seam: the one module that imports it. Its tensors and
 * value metadata are mapped to engine.ts's plain types here, and nowhere else.
 */
import { createRequire } from 'node:module';
import * as ort from 'onnxruntime-node';
import type { Engine, EngineModel, LoadSettings, Tensor, TensorType, ValueInfo } from './engine.js';

/** The package's own version, as installed: what actually scores, whatever package.json asked for. */
const VERSION = (createRequire(import.meta.url)('onnxruntime-node/package.json') as { version: string }).version;

/** Native calls not yet returned: loads, runs and releases (see Engine.settled). */
const inFlight = new Set<Promise<unknown>>();

function tracked<T>(call: Promise<T>): Promise<T> {
  inFlight.add(call);
  const done = () => inFlight.delete(call);
  call.then(done, done);
  return call;
}

export const onnxruntime: Engine = {
  name: 'onnxruntime',
  version: VERSION,
  async settled() {
    while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
  },
  async load(graph: Uint8Array, settings: LoadSettings): Promise<EngineModel> {
    const session = await tracked(ort.InferenceSession.create(graph, {
      intraOpNumThreads: settings.threads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
      // Every native error also rejects the call, and nightscore reports it with a code; the
      // native log line would only repeat it, colourised, outside the JSON log on stderr.
      logSeverityLevel: 4,
      // From bytes, onnxruntime would look for external data in the working directory, where
      // another export's model.onnx.data may sit.
      ...(settings.externalData ? { extra: { session: { model_external_initializers_file_folder_path: settings.externalData } } } : {}),
    }));
    return {
      inputs: session.inputMetadata.map(valueInfo),
      outputs: session.outputMetadata.map(valueInfo),
      async run(feeds, fetches) {
        const tensors: Record<string, ort.Tensor> = {};
        for (const [name, t] of Object.entries(feeds)) tensors[name] = t instanceof ort.Tensor ? t : new ort.Tensor(t.type, t.data as never, t.dims);
        const result = await tracked(fetches ? session.run(tensors, [...fetches]) : session.run(tensors));
        // Only tensors are fetched (the scorer selects tensor outputs), and an ort.Tensor is a Tensor.
        return result as unknown as Record<string, Tensor>;
      },
      release: () => tracked(session.release()),
    };
  },
};

function valueInfo(m: ort.InferenceSession.ValueMetadata): ValueInfo {
  return m.isTensor ? { name: m.name, isTensor: true, type: m.type as TensorType, shape: [...m.shape] } : { name: m.name, isTensor: false };
}
