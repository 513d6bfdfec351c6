// Writes BraTS patients as tf.train.Example shards + spec.json in the layout docs/contracts.md gives
// ("BraTS features"), so preprocess.brats and the adapter are tested on real records without waiting on
// (or depending on) the tfrecord.write stage.
import path from 'node:path';
import { readNifti } from '../../lib/nifti/read.js';
import { encodeExample, type Features } from '../../lib/tfrecord/example.js';
import { TFRecordShardWriter, writeJsonAtomic } from '../../lib/tfrecord/writer.js';
import type { BratsIndex } from '../../stages/brats-ingest/ingest.js';

const text = (s: string): Uint8Array => new TextEncoder().encode(s);

export async function bratsFeatures(root: string, sample: BratsIndex['samples'][number]): Promise<Features> {
  const modalities = Object.keys(sample.images);
  const volumes = [];
  for (const m of modalities) volumes.push(await readNifti(path.join(root, sample.images[m]!)));
  const first = volumes[0]!;
  const voxels = first.data.length;
  const data = new Float32Array(voxels * modalities.length);
  volumes.forEach((v, m) => data.set(v.data, m * voxels));
  const features: Features = {
    id: { kind: 'bytes', value: [text(sample.id)] },
    group: { kind: 'bytes', value: [text(sample.group)] },
    subset: { kind: 'bytes', value: [text(sample.subset)] },
    'volume/shape': { kind: 'int64', value: first.dims.slice(0, 3).map(BigInt) },
    'volume/modalities': { kind: 'bytes', value: modalities.map(text) },
    'volume/data': { kind: 'bytes', value: [new Uint8Array(data.buffer)] },
    'volume/spacing': { kind: 'float', value: Float32Array.from(first.spacing) },
    'volume/affine': { kind: 'float', value: Float32Array.from(first.affine) },
  };
  if (sample.label) {
    const seg = await readNifti(path.join(root, sample.label));
    features['label/data'] = { kind: 'bytes', value: [Uint8Array.from(seg.data)] };
  }
  return features;
}

export async function writeBratsRecords(index: BratsIndex, outDir: string): Promise<void> {
  const writer = await TFRecordShardWriter.create(outDir, { compression: 'gzip', shardRecords: 4 });
  for (const sample of index.samples) await writer.write(encodeExample(await bratsFeatures(index.root, sample)));
  const shards = await writer.close();
  await writeJsonAtomic(path.join(outDir, 'spec.json'), {
    format: 'tf.train.Example',
    dataset: 'brats',
    compression: 'gzip',
    records: index.samples.length,
    shards,
    features: {
      id: { type: 'bytes', shape: [], encoding: 'utf8' },
      group: { type: 'bytes', shape: [], encoding: 'utf8' },
      subset: { type: 'bytes', shape: [], encoding: 'utf8' },
      'volume/shape': { type: 'int64', shape: [3] },
      'volume/modalities': { type: 'bytes', shape: [4], encoding: 'utf8' },
      'volume/data': { type: 'bytes', shape: [], dtype: 'float32', encoding: 'raw-le' },
      'volume/spacing': { type: 'float', shape: [3] },
      'volume/affine': { type: 'float', shape: [16] },
      'label/data': { type: 'bytes', shape: [], dtype: 'uint8', encoding: 'raw-le', optional: true },
    },
  });
}
