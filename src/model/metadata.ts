import protobuf from 'protobufjs/minimal.js';

/** What nightscore reads from an ONNX file besides the graph: its metadata_props. */
export interface OnnxMetadata {
  props: Record<string, string>;
  producer: string | undefined;
}

// Field numbers of onnx.proto's ModelProto and StringStringEntryProto.
const MODEL_PRODUCER_NAME = 2;
const MODEL_METADATA_PROPS = 14;
const ENTRY_KEY = 1;
const ENTRY_VALUE = 2;

/**
 * Reads the model's top-level metadata without decoding the graph: onnxruntime-node does
 * not expose custom metadata, and decoding a large tree ensemble whole just to find
 * `feature_names` would cost memory for nothing. Throws on bytes that are not protobuf.
 */
export function readOnnxMetadata(bytes: Uint8Array): OnnxMetadata {
  const reader = protobuf.Reader.create(bytes);
  const props: Record<string, string> = {};
  let producer: string | undefined;
  while (reader.pos < reader.len) {
    const tag = reader.uint32();
    const field = tag >>> 3;
    if (field === MODEL_METADATA_PROPS && (tag & 7) === 2) {
      const entry = protobuf.Reader.create(reader.bytes());
      let key = '';
      let value = '';
      while (entry.pos < entry.len) {
        const t = entry.uint32();
        if (t >>> 3 === ENTRY_KEY) key = entry.string();
        else if (t >>> 3 === ENTRY_VALUE) value = entry.string();
        else entry.skipType(t & 7);
      }
      props[key] = value;
    } else if (field === MODEL_PRODUCER_NAME && (tag & 7) === 2) {
      producer = reader.string();
    } else {
      reader.skipType(tag & 7);
    }
  }
  return { props, producer };
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
