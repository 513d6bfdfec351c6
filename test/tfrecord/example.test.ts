// The hand-written Example codec checked against protobufjs (a real protobuf library) both ways,
// on hand-picked edge cases and on random Examples (fast-check).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import protobuf from 'protobufjs';
import fc from 'fast-check';
import {
  bytesFeature,
  decodeExample,
  encodeExample,
  floatFeature,
  getInt,
  getString,
  getFloats,
  int64Feature,
  ExampleError,
  type Feature,
  type Features,
} from '../../lib/tfrecord/example.js';

// Untyped literal: protobufjs' IField type lacks keyType although fromJSON accepts map fields.
const descriptor: Record<string, unknown> = {
  nested: {
    tensorflow: {
      nested: {
        BytesList: { fields: { value: { rule: 'repeated', type: 'bytes', id: 1 } } },
        FloatList: { fields: { value: { rule: 'repeated', type: 'float', id: 1, options: { packed: true } } } },
        Int64List: { fields: { value: { rule: 'repeated', type: 'int64', id: 1, options: { packed: true } } } },
        Feature: {
          oneofs: { kind: { oneof: ['bytesList', 'floatList', 'int64List'] } },
          fields: {
            bytesList: { type: 'BytesList', id: 1 },
            floatList: { type: 'FloatList', id: 2 },
            int64List: { type: 'Int64List', id: 3 },
          },
        },
        Features: { fields: { feature: { keyType: 'string', type: 'Feature', id: 1 } } },
        Example: { fields: { features: { type: 'Features', id: 1 } } },
        // Same field numbers without [packed]: how an old or different writer may lay lists out.
        FloatListUnpacked: { fields: { value: { rule: 'repeated', type: 'float', id: 1, options: { packed: false } } } },
        Int64ListUnpacked: { fields: { value: { rule: 'repeated', type: 'int64', id: 1, options: { packed: false } } } },
        FeatureUnpacked: {
          fields: {
            bytesList: { type: 'BytesList', id: 1 },
            floatList: { type: 'FloatListUnpacked', id: 2 },
            int64List: { type: 'Int64ListUnpacked', id: 3 },
          },
        },
        FeaturesUnpacked: { fields: { feature: { keyType: 'string', type: 'FeatureUnpacked', id: 1 } } },
        ExampleUnpacked: { fields: { features: { type: 'FeaturesUnpacked', id: 1 } } },
      },
    },
  },
};
const root = protobuf.Root.fromJSON(descriptor as protobuf.INamespace);
const ExampleType = root.lookupType('tensorflow.Example');
const ExampleUnpackedType = root.lookupType('tensorflow.ExampleUnpacked');

type PbFeature = { bytesList?: { value: Uint8Array[] }; floatList?: { value: number[] }; int64List?: { value: Array<string | number> } };

function toProtobufJs(features: Features, sorted: boolean): { features: { feature: Record<string, PbFeature> } } {
  const out: Record<string, PbFeature> = {};
  const names = Object.keys(features);
  if (sorted) names.sort();
  for (const name of names) {
    const f = features[name]!;
    if (f.kind === 'bytes') out[name] = { bytesList: { value: f.value } };
    else if (f.kind === 'float') out[name] = { floatList: { value: Array.from(f.value) } };
    else if (f.kind === 'int64') out[name] = { int64List: { value: f.value.map((v) => v.toString()) } };
    else out[name] = {};
  }
  return { features: { feature: out } };
}

function fromProtobufJs(message: protobuf.Message): Features {
  const obj = ExampleType.toObject(message, { longs: String, bytes: Array, defaults: false }) as {
    features?: { feature?: Record<string, { bytesList?: { value?: number[][] }; floatList?: { value?: number[] }; int64List?: { value?: string[] } }> };
  };
  const out: Features = {};
  for (const [name, f] of Object.entries(obj.features?.feature ?? {})) {
    if (f.bytesList) out[name] = { kind: 'bytes', value: (f.bytesList.value ?? []).map((b) => Uint8Array.from(b)) };
    else if (f.floatList) out[name] = { kind: 'float', value: Float32Array.from(f.floatList.value ?? []) };
    else if (f.int64List) out[name] = { kind: 'int64', value: (f.int64List.value ?? []).map((v) => BigInt(v)) };
    else out[name] = { kind: 'empty' };
  }
  return out;
}

/** Comparable plain form (typed arrays and bigints to arrays/strings; -0 kept distinct via Object.is in floats). */
function plain(features: Features): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const name of Object.keys(features).sort()) {
    const f = features[name]!;
    out[name] =
      f.kind === 'bytes'
        ? { kind: f.kind, value: f.value.map((b) => Array.from(b)) }
        : f.kind === 'float'
          ? { kind: f.kind, value: Array.from(f.value, (v) => (Number.isNaN(v) ? 'NaN' : v)) }
          : f.kind === 'int64'
            ? { kind: f.kind, value: f.value.map(String) }
            : { kind: 'empty' };
  }
  return out;
}

const featureArb: fc.Arbitrary<Feature> = fc.oneof(
  fc.array(fc.uint8Array({ maxLength: 40 }), { maxLength: 4 }).map((value): Feature => ({ kind: 'bytes', value })),
  fc.array(fc.float({ noDefaultInfinity: false }), { maxLength: 6 }).map((v): Feature => ({ kind: 'float', value: Float32Array.from(v) })),
  fc.array(fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n }), { maxLength: 6 }).map((value): Feature => ({ kind: 'int64', value })),
  fc.constant<Feature>({ kind: 'empty' }),
);
const featuresArb = fc.dictionary(fc.string({ unit: 'grapheme', maxLength: 12 }), featureArb, { maxKeys: 6 }).map((d) => {
  // fc.dictionary may produce "__proto__"-like keys on a null prototype object; copy into a plain record.
  const out: Features = {};
  for (const k of Object.keys(d)) out[k] = d[k]!;
  return out;
});

test('encodeExample gives the same bytes as protobufjs for random Examples (sorted keys)', () => {
  fc.assert(
    fc.property(featuresArb, (features) => {
      const ours = encodeExample(features);
      const theirs = ExampleType.encode(ExampleType.fromObject(toProtobufJs(features, true))).finish();
      assert.deepEqual(Buffer.from(ours).toString('hex'), Buffer.from(theirs).toString('hex'));
    }),
    { numRuns: 300 },
  );
});

test('decodeExample reads what protobufjs writes, packed and unpacked', () => {
  fc.assert(
    fc.property(featuresArb, (features) => {
      const packed = ExampleType.encode(ExampleType.fromObject(toProtobufJs(features, false))).finish();
      assert.deepEqual(plain(decodeExample(packed)), plain(features));
      const unpacked = ExampleUnpackedType.encode(ExampleUnpackedType.fromObject(toProtobufJs(features, false))).finish();
      assert.deepEqual(plain(decodeExample(unpacked)), plain(features));
    }),
    { numRuns: 300 },
  );
});

test('protobufjs reads what encodeExample writes', () => {
  fc.assert(
    fc.property(featuresArb, (features) => {
      const decoded = fromProtobufJs(ExampleType.decode(encodeExample(features)));
      assert.deepEqual(plain(decoded), plain(features));
    }),
    { numRuns: 200 },
  );
});

test('insertion order is kept when asked, sorted order otherwise', () => {
  const features: Features = { zeta: int64Feature(1), alpha: bytesFeature('a') };
  const sorted = decodeExample(encodeExample(features));
  assert.deepEqual(Object.keys(sorted), ['alpha', 'zeta']);
  const kept = decodeExample(encodeExample(features, { order: 'insertion' }));
  assert.deepEqual(Object.keys(kept), ['zeta', 'alpha']);
});

test('helpers build and read features', () => {
  const features: Features = {
    id: bytesFeature('car_01'),
    height: int64Feature(1280),
    big: int64Feature(-(1n << 62n)),
    spacing: floatFeature([1, 1.5, 2.25]),
  };
  const back = decodeExample(encodeExample(features));
  assert.equal(getString(back, 'id'), 'car_01');
  assert.equal(getInt(back, 'height'), 1280);
  assert.throws(() => getInt(back, 'big'), /beyond the range/);
  assert.deepEqual(Array.from(getFloats(back, 'spacing')), [1, 1.5, 2.25]);
  assert.throws(() => getInt(back, 'id'), (err: Error) => err instanceof ExampleError && /'id' should be a int64 list but is a bytes list/.test(err.message));
  assert.throws(() => getString(back, 'missing'), /'missing' should be a bytes list but is missing/);
  assert.throws(() => int64Feature(2 ** 60), /not a safe integer/);
});

test('decodeExample rejects malformed protobuf', () => {
  const good = encodeExample({ name: bytesFeature('hello world') });
  // Cut inside the map entry: the outer length runs past the end.
  assert.throws(() => decodeExample(good.subarray(0, good.length - 3)), (err: Error) => err instanceof ExampleError && /runs past the end/.test(err.message));
  assert.throws(() => decodeExample(Uint8Array.of(0x0a, 0xff)), /truncated varint/);
  assert.throws(() => decodeExample(Uint8Array.of(0x0f)), /unsupported wire type/);
  // A packed float list whose length is not a multiple of 4.
  assert.throws(() => decodeExample(Uint8Array.from([0x0a, 0x0c, 0x0a, 0x0a, 0x0a, 0x01, 0x66, 0x12, 0x05, 0x12, 0x03, 0x0a, 0x01, 0x00].slice(0, 14))), ExampleError);
  assert.deepEqual(decodeExample(new Uint8Array(0)), {});
});
