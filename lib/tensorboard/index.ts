// TensorBoard event files: proto definitions, summary values, the event file writer and reader.
export * from './proto.js';
export * from './summaries.js';
export * from './writer.js';
export * from './reader.js';
