import protobuf from 'protobufjs/minimal.js';

/** What nightscore reads from an ONNX file besides the graph: its metadata_props, and the external data files its tensors live in. */
export interface OnnxMetadata {
  props: Record<string, string>;
  producer: string | undefined;
  /** The `location` of every tensor stored outside the file, each once, sorted. */
  externalData: string[];
}

// Field numbers of onnx.proto's messages.
const MODEL_PRODUCER_NAME = 2;
const MODEL_GRAPH = 7;
const MODEL_METADATA_PROPS = 14;
const MODEL_FUNCTIONS = 25;
const FUNCTION_NODE = 7;
const FUNCTION_ATTRIBUTE_PROTO = 11;
const GRAPH_NODE = 1;
const GRAPH_INITIALIZER = 5;
const GRAPH_SPARSE_INITIALIZER = 15;
const NODE_ATTRIBUTE = 5;
const ATTRIBUTE_TENSOR = [5, 10];
const ATTRIBUTE_GRAPH = [6, 11];
const ATTRIBUTE_SPARSE_TENSOR = [22, 23];
const SPARSE_VALUES_INDICES = [1, 2];
const TENSOR_EXTERNAL_DATA = 13;
const TENSOR_DATA_LOCATION = 14;
const DATA_LOCATION_EXTERNAL = 1;
const ENTRY_KEY = 1;
const ENTRY_VALUE = 2;
const LENGTH_DELIMITED = 2;
/** Subgraphs nest (If, Loop, Scan); a file nesting them deeper than this is not a model. */
const MAX_DEPTH = 64;

/**
 * Reads the model's metadata and the external data its tensors reference, walking the
 * protobuf wire format without decoding the graph into objects: onnxruntime-node exposes
 * neither, and decoding a large tree ensemble whole would cost memory for nothing (sub-readers
 * view the file's bytes, they do not copy them). Throws on bytes that are not protobuf.
 */
export function readOnnxMetadata(bytes: Uint8Array): OnnxMetadata {
  const reader = protobuf.Reader.create(bytes);
  const props: Record<string, string> = {};
  const external = new Set<string>();
  let producer: string | undefined;
  while (reader.pos < reader.len) {
    const tag = reader.uint32();
    const field = tag >>> 3;
    if ((tag & 7) !== LENGTH_DELIMITED) {
      reader.skipType(tag & 7);
    } else if (field === MODEL_METADATA_PROPS) {
      const [key, value] = entry(reader.bytes());
      props[key] = value;
    } else if (field === MODEL_PRODUCER_NAME) {
      producer = reader.string();
    } else if (field === MODEL_GRAPH) {
      graph(reader.bytes(), external, 0);
    } else if (field === MODEL_FUNCTIONS) {
      eachMessage(reader.bytes(), (f, body) => {
        if (f === FUNCTION_NODE) node(body, external, 0);
        else if (f === FUNCTION_ATTRIBUTE_PROTO) attribute(body, external, 0);
      });
    } else {
      reader.skipType(tag & 7);
    }
  }
  return { props, producer, externalData: [...external].sort() };
}

/** Calls `visit` with each length-delimited field of a message; skips the rest. */
function eachMessage(bytes: Uint8Array, visit: (field: number, body: Uint8Array) => void): void {
  const reader = protobuf.Reader.create(bytes);
  while (reader.pos < reader.len) {
    const tag = reader.uint32();
    if ((tag & 7) === LENGTH_DELIMITED) visit(tag >>> 3, reader.bytes());
    else reader.skipType(tag & 7);
  }
}

function graph(bytes: Uint8Array, out: Set<string>, depth: number): void {
  if (depth > MAX_DEPTH) throw new Error(`subgraphs nest deeper than ${MAX_DEPTH}`);
  eachMessage(bytes, (field, body) => {
    if (field === GRAPH_NODE) node(body, out, depth);
    else if (field === GRAPH_INITIALIZER) tensor(body, out);
    else if (field === GRAPH_SPARSE_INITIALIZER) sparse(body, out);
  });
}

function node(bytes: Uint8Array, out: Set<string>, depth: number): void {
  eachMessage(bytes, (field, body) => field === NODE_ATTRIBUTE && attribute(body, out, depth));
}

function attribute(bytes: Uint8Array, out: Set<string>, depth: number): void {
  eachMessage(bytes, (f, body) => {
    if (ATTRIBUTE_TENSOR.includes(f)) tensor(body, out);
    else if (ATTRIBUTE_GRAPH.includes(f)) graph(body, out, depth + 1);
    else if (ATTRIBUTE_SPARSE_TENSOR.includes(f)) sparse(body, out);
  });
}

function sparse(bytes: Uint8Array, out: Set<string>): void {
  eachMessage(bytes, (field, body) => SPARSE_VALUES_INDICES.includes(field) && tensor(body, out));
}

function tensor(bytes: Uint8Array, out: Set<string>): void {
  const reader = protobuf.Reader.create(bytes);
  let external = false;
  let location: string | undefined;
  while (reader.pos < reader.len) {
    const tag = reader.uint32();
    const field = tag >>> 3;
    if (field === TENSOR_DATA_LOCATION && (tag & 7) === 0) {
      external = reader.uint32() === DATA_LOCATION_EXTERNAL;
    } else if (field === TENSOR_EXTERNAL_DATA && (tag & 7) === LENGTH_DELIMITED) {
      const [key, value] = entry(reader.bytes());
      if (key === 'location') location = value;
    } else {
      reader.skipType(tag & 7);
    }
  }
  if (external) {
    if (location === undefined) throw new Error('a tensor stored externally names no location');
    out.add(location);
  }
}

function entry(bytes: Uint8Array): [string, string] {
  const reader = protobuf.Reader.create(bytes);
  let key = '';
  let value = '';
  while (reader.pos < reader.len) {
    const t = reader.uint32();
    if (t >>> 3 === ENTRY_KEY) key = reader.string();
    else if (t >>> 3 === ENTRY_VALUE) value = reader.string();
    else reader.skipType(t & 7);
  }
  return [key, value];
}

/**
 * The `feature_names` property as skl2onnx users write it: a JSON list of strings.
 * Returns undefined when absent, and throws a plain Error with the reason when malformed.
 */
export function featureNamesOf(meta: OnnxMetadata): string[] | undefined {
  const raw = meta.props.feature_names;
  if (raw === undefined) return undefined;
  const parsed: unknown = JSON.parse(raw);
  if (!Array.isArray(parsed) || parsed.length === 0 || !parsed.every((n) => typeof n === 'string' && n.length > 0)) {
    throw new Error('feature_names is not a non-empty JSON list of strings');
  }
  return parsed as string[];
}
