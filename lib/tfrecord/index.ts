// One import for users of TFRecord files: codec, framing, streaming reader/writer, spec.json.
export * from './example.js';
export * from './crc32c.js';
export * from './framing.js';
export * from './reader.js';
export * from './writer.js';
export * from './spec.js';
