/**
 * ZipMap unwrapped at load. Classifiers exported by skl2onnx, onnxmltools (LightGBM, XGBoost)
 * and CatBoost end in an ai.onnx.ml ZipMap: it turns the [N, C] probability tensor into a
 * list of N maps from class label to probability, which has no column form. nightscore scores
 * the tensor instead: the graph is rewritten so that the output the ZipMap wrote (same name)
 * is the tensor it read, bit for bit, and its class labels are kept to name the columns.
 *
 * The rewrite works on the protobuf wire format, as metadata.ts reads it: only the model's
 * graph is re-assembled, and of it only the nodes and outputs that change are re-encoded;
 * every other field (a tree ensemble's attributes, initializers) is copied as bytes.
 */
import protobuf from 'protobufjs/minimal.js';

/** An output nightscore scores from the tensor behind an operator that makes no columns. */
export interface UnwrappedOutput {
  /** The graph output, by the name the model gives it. */
  output: string;
  from: 'ZipMap';
  /** The ZipMap's class labels, in column order (int64 labels as decimal text). */
  labels: string[];
}

// Field numbers of onnx.proto's messages.
const MODEL_GRAPH = 7;
const GRAPH_NODE = 1;
const GRAPH_INPUT = 11;
const GRAPH_OUTPUT = 12;
const GRAPH_VALUE_INFO = 13;
const GRAPH_INITIALIZER = 5;
const TENSOR_NAME = 8;
const NODE_INPUT = 1;
const NODE_OUTPUT = 2;
const NODE_OP_TYPE = 4;
const NODE_ATTRIBUTE = 5;
const NODE_DOMAIN = 7;
const ATTRIBUTE_NAME = 1;
const ATTRIBUTE_INTS = 8;
const ATTRIBUTE_STRINGS = 9;
const VALUE_INFO_NAME = 1;
const VALUE_INFO_TYPE = 2;
const TYPE_TENSOR = 1;
const TENSOR_TYPE_ELEM = 1;
const TENSOR_TYPE_SHAPE = 2;
const SHAPE_DIM = 1;
const DIM_VALUE = 1;
const ELEM_FLOAT = 1;
const LENGTH_DELIMITED = 2;
const VARINT = 0;

/** One field of a message, as its bytes in the message (tag included) and its body. */
interface Field {
  field: number;
  raw: Uint8Array;
  body: Uint8Array | undefined;
}

interface NodeInfo {
  inputs: string[];
  outputs: string[];
  op: string;
  domain: string;
  labels: string[] | undefined;
}

/**
 * The model with every ZipMap that ends the graph removed, and the outputs it unwrapped.
 * A ZipMap is unwrapped when its output is a graph output no node reads, and its input is a
 * tensor one node of the graph makes (not a graph input, initializer or output): that tensor
 * is renamed to the output's name, so the output keeps its name and its values are the tensor's.
 * Anything else is left as it is (and a non-tensor output selected is MODEL_NON_TENSOR_OUTPUT).
 * Returns the bytes given when there is nothing to unwrap. Throws on bytes that are not protobuf.
 */
export function unwrapZipMaps(bytes: Uint8Array): { bytes: Uint8Array; unwrapped: UnwrappedOutput[] } {
  const top = fields(bytes);
  const graphs = top.filter((f) => f.field === MODEL_GRAPH && f.body);
  // A graph split over two fields is merged by the reader; no exporter writes one, and a
  // rewrite of one half could not see the other.
  if (graphs.length !== 1) return { bytes, unwrapped: [] };
  const graph = graphs[0]!;
  const rewritten = unwrapInGraph(graph.body!);
  if (!rewritten) return { bytes, unwrapped: [] };
  const out = top.map((f) => (f === graph ? delimited(MODEL_GRAPH, rewritten.graph) : f.raw));
  return { bytes: concat(out), unwrapped: rewritten.unwrapped };
}

function unwrapInGraph(body: Uint8Array): { graph: Uint8Array; unwrapped: UnwrappedOutput[] } | undefined {
  const graph = fields(body);
  const nodes = new Map<Field, NodeInfo>();
  for (const f of graph) if (f.field === GRAPH_NODE && f.body) nodes.set(f, readNode(f.body));
  if (![...nodes.values()].some((n) => n.op === 'ZipMap')) return undefined;
  const outputs = graph.filter((f) => f.field === GRAPH_OUTPUT && f.body).map((f) => nameOf(f.body!, VALUE_INFO_NAME));
  const sources = new Set([
    ...graph.filter((f) => f.field === GRAPH_INPUT && f.body).map((f) => nameOf(f.body!, VALUE_INFO_NAME)),
    ...graph.filter((f) => f.field === GRAPH_INITIALIZER && f.body).map((f) => nameOf(f.body!, TENSOR_NAME)),
  ]);
  const all = [...nodes.values()];
  const renames = new Map<string, string>();
  const dropped = new Set<Field>();
  const unwrapped: UnwrappedOutput[] = [];
  for (const [field, node] of nodes) {
    if (node.op !== 'ZipMap' || node.domain !== 'ai.onnx.ml' || !node.labels || node.inputs.length !== 1 || node.outputs.length !== 1) continue;
    const [tensor, output] = [node.inputs[0]!, node.outputs[0]!];
    const makers = all.filter((n) => n.outputs.includes(tensor));
    const unwrappable =
      outputs.includes(output) && !outputs.includes(tensor) && !sources.has(tensor) && makers.length === 1 && !all.some((n) => n.inputs.includes(output)) && !renames.has(tensor);
    if (!unwrappable) continue;
    renames.set(tensor, output);
    dropped.add(field);
    unwrapped.push({ output, from: 'ZipMap', labels: node.labels });
  }
  if (unwrapped.length === 0) return undefined;
  const retyped = new Map(unwrapped.map((u) => [u.output, u.labels.length]));
  const out: Uint8Array[] = [];
  for (const f of graph) {
    if (dropped.has(f)) continue;
    const node = nodes.get(f);
    if (node && [...node.inputs, ...node.outputs].some((n) => renames.has(n))) {
      out.push(delimited(GRAPH_NODE, renameInNode(f.body!, renames)));
    } else if (f.field === GRAPH_OUTPUT && f.body && retyped.has(nameOf(f.body, VALUE_INFO_NAME))) {
      out.push(delimited(GRAPH_OUTPUT, floatMatrix(f.body, retyped.get(nameOf(f.body, VALUE_INFO_NAME))!)));
    } else if (f.field === GRAPH_VALUE_INFO && f.body && (renames.has(nameOf(f.body, VALUE_INFO_NAME)) || retyped.has(nameOf(f.body, VALUE_INFO_NAME)))) {
      // Shape hints for the renamed tensor (or a map type for the output) would contradict the graph.
      continue;
    } else {
      out.push(f.raw);
    }
  }
  return { graph: concat(out), unwrapped };
}

function readNode(body: Uint8Array): NodeInfo {
  const node: NodeInfo = { inputs: [], outputs: [], op: '', domain: '', labels: undefined };
  for (const f of fields(body)) {
    if (!f.body) continue;
    if (f.field === NODE_INPUT) node.inputs.push(text(f.body));
    else if (f.field === NODE_OUTPUT) node.outputs.push(text(f.body));
    else if (f.field === NODE_OP_TYPE) node.op = text(f.body);
    else if (f.field === NODE_DOMAIN) node.domain = text(f.body);
  }
  // Attributes are read only for a ZipMap: a tree ensemble's are megabytes nobody needs here.
  if (node.op === 'ZipMap') node.labels = classLabels(body);
  return node;
}

/** The class labels of a ZipMap: classlabels_strings or classlabels_int64s, exactly one of them. */
function classLabels(node: Uint8Array): string[] | undefined {
  let strings: string[] | undefined;
  let ints: string[] | undefined;
  for (const f of fields(node)) {
    if (f.field !== NODE_ATTRIBUTE || !f.body) continue;
    const name = nameOf(f.body, ATTRIBUTE_NAME);
    if (name === 'classlabels_strings') strings = fields(f.body).filter((a) => a.field === ATTRIBUTE_STRINGS && a.body).map((a) => text(a.body!));
    else if (name === 'classlabels_int64s') ints = int64s(f.body);
  }
  if ((strings === undefined) === (ints === undefined)) return undefined;
  const labels = strings ?? ints!;
  return labels.length > 0 ? labels : undefined;
}

/** The `ints` of an attribute, packed or not, as exact decimal text. */
function int64s(attribute: Uint8Array): string[] {
  const reader = protobuf.Reader.create(attribute);
  const out: string[] = [];
  const one = (r: protobuf.Reader) => {
    const v = r.int64() as unknown as number | { low: number; high: number };
    out.push(typeof v === 'number' ? String(v) : BigInt.asIntN(64, (BigInt(v.high >>> 0) << 32n) | BigInt(v.low >>> 0)).toString());
  };
  while (reader.pos < reader.len) {
    const tag = reader.uint32();
    if (tag >>> 3 !== ATTRIBUTE_INTS) reader.skipType(tag & 7);
    else if ((tag & 7) === VARINT) one(reader);
    else if ((tag & 7) === LENGTH_DELIMITED) {
      const packed = protobuf.Reader.create(reader.bytes());
      while (packed.pos < packed.len) one(packed);
    } else reader.skipType(tag & 7);
  }
  return out;
}

/** A node with its input and output names renamed; its other fields as they were. */
function renameInNode(body: Uint8Array, renames: Map<string, string>): Uint8Array {
  return concat(
    fields(body).map((f) => {
      if ((f.field !== NODE_INPUT && f.field !== NODE_OUTPUT) || !f.body) return f.raw;
      const name = text(f.body);
      return renames.has(name) ? delimited(f.field, utf8(renames.get(name)!)) : f.raw;
    }),
  );
}

/** A graph output's ValueInfo typed as ZipMap's input: float [N, C], N unknown. */
function floatMatrix(valueInfo: Uint8Array, width: number): Uint8Array {
  const w = protobuf.Writer.create();
  w.uint32((TYPE_TENSOR << 3) | LENGTH_DELIMITED).fork();
  w.uint32((TENSOR_TYPE_ELEM << 3) | VARINT).int32(ELEM_FLOAT);
  w.uint32((TENSOR_TYPE_SHAPE << 3) | LENGTH_DELIMITED).fork();
  w.uint32((SHAPE_DIM << 3) | LENGTH_DELIMITED).fork().ldelim();
  w.uint32((SHAPE_DIM << 3) | LENGTH_DELIMITED).fork().uint32((DIM_VALUE << 3) | VARINT).int64(width).ldelim();
  w.ldelim().ldelim();
  const type = w.finish();
  return concat([...fields(valueInfo).filter((f) => f.field !== VALUE_INFO_TYPE).map((f) => f.raw), delimited(VALUE_INFO_TYPE, type)]);
}

/** The top-level fields of a message, in order. */
function fields(bytes: Uint8Array): Field[] {
  const reader = protobuf.Reader.create(bytes);
  const out: Field[] = [];
  while (reader.pos < reader.len) {
    const start = reader.pos;
    const tag = reader.uint32();
    const body = (tag & 7) === LENGTH_DELIMITED ? reader.bytes() : (reader.skipType(tag & 7), undefined);
    out.push({ field: tag >>> 3, raw: bytes.subarray(start, reader.pos), body });
  }
  return out;
}

function nameOf(message: Uint8Array, field: number): string {
  const f = fields(message).find((x) => x.field === field && x.body);
  return f ? text(f.body!) : '';
}

function delimited(field: number, body: Uint8Array): Uint8Array {
  return concat([protobuf.Writer.create().uint32((field << 3) | LENGTH_DELIMITED).uint32(body.length).finish(), body]);
}

const decoder = new TextDecoder();
const text = (b: Uint8Array) => decoder.decode(b);
const utf8 = (s: string) => new TextEncoder().encode(s);

function concat(parts: Uint8Array[]): Uint8Array {
  return Buffer.concat(parts);
}
