// Loading pretrained weights into a freshly built model by layer name and shape. Partial loads are normal
// (a different head, more input channels): every layer is reported as loaded or skipped with the reason, and
// `strict` turns any mismatch into an error.
import fs from 'node:fs';
import path from 'node:path';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import type { Tensor } from '@tensorflow/tfjs-core';
import { MODEL_JSON, decodeStoredWeights, readStoredWeights } from './model-io.js';
import { getTf } from './backend.js';

export interface SkippedLayer {
  layer: string;
  reason: 'shape mismatch' | 'missing in source';
  /** e.g. "enc1_conv1/kernel expected [3,3,4,16], found [3,3,3,16]" or the missing weight names. */
  detail: string;
}

export interface LoadReport {
  /** The path given as the pretrained input. */
  source: string | null;
  /** The model.json whose manifest was used. */
  modelJson: string | null;
  /** Weight shard replacing the manifest's own (a `.weights.bin` given directly). */
  weightsFile: string | null;
  strict: boolean;
  /** Layers whose weights all came from the source. */
  loaded: string[];
  /** Model layers left at their seeded initial weights, with why. */
  skipped: SkippedLayer[];
  /** Source layers that have no counterpart in the model. */
  notInModel: string[];
  counts: { loaded: number; skipped: number; notInModel: number; modelLayersWithWeights: number };
}

function shapeText(shape: readonly (number | null)[]): string {
  return `[${shape.join(',')}]`;
}

function layerOf(weightName: string): string {
  const slash = weightName.lastIndexOf('/');
  return slash < 0 ? weightName : weightName.slice(0, slash);
}

/** Finds model.json under a flow checkpoint folder: the newest one at most two levels down. */
function findModelJsonBelow(dir: string): string | null {
  const candidates: { file: string; mtime: number }[] = [];
  const visit = (current: string, level: number): void => {
    for (const entry of fs.readdirSync(current, { withFileTypes: true })) {
      const full = path.join(current, entry.name);
      if (entry.isFile() && entry.name === MODEL_JSON) candidates.push({ file: full, mtime: fs.statSync(full).mtimeMs });
      else if (entry.isDirectory() && level < 2 && !entry.name.startsWith('.')) visit(full, level + 1);
    }
  };
  visit(dir, 0);
  candidates.sort((a, b) => b.mtime - a.mtime || a.file.localeCompare(b.file));
  return candidates[0]?.file ?? null;
}

/**
 * Where the weights are: a LayersModel folder, a model.json, a `.weights.bin` beside its model.json
 * (`<name>.json` or `model.json`), or a flow checkpoint folder holding a LayersModel folder.
 */
export function resolvePretrainedSource(source: string): { modelJson: string; weightsFile: string | null } {
  if (!fs.existsSync(source)) {
    throw new Error(`${source}: pretrained weights not found: give a LayersModel folder, a model.json or a .weights.bin`);
  }
  const stat = fs.statSync(source);
  if (stat.isDirectory()) {
    const direct = path.join(source, MODEL_JSON);
    if (fs.existsSync(direct)) return { modelJson: direct, weightsFile: null };
    const below = findModelJsonBelow(source);
    if (below !== null) return { modelJson: below, weightsFile: null };
    throw new Error(`${source}: no model.json in this folder or its subfolders: not a LayersModel or flow checkpoint folder`);
  }
  if (source.endsWith('.json')) return { modelJson: source, weightsFile: null };
  if (source.endsWith('.bin')) {
    const dir = path.dirname(source);
    const stem = path.basename(source).replace(/(\.weights)?\.bin$/, '');
    for (const candidate of [path.join(dir, `${stem}.json`), path.join(dir, MODEL_JSON)]) {
      if (fs.existsSync(candidate)) return { modelJson: candidate, weightsFile: source };
    }
    throw new Error(
      `${source}: a weights file needs its model.json (the manifest of weight names, shapes and dtypes) beside it, ` +
        `as ${stem}.json or model.json`,
    );
  }
  throw new Error(`${source}: not a folder, .json or .bin: cannot read pretrained weights from it`);
}

/** Copies matching weights from `source` into `model`; returns what was loaded and skipped. */
export function loadPretrainedWeights(model: LayersModel, source: string, options: { strict: boolean }): LoadReport {
  const { modelJson, weightsFile } = resolvePretrainedSource(source);
  const stored = readStoredWeights(modelJson, weightsFile ?? undefined);
  const named = decodeStoredWeights(stored);
  try {
    const sourceLayers = new Set(Object.keys(named).map(layerOf));
    const loaded: string[] = [];
    const skipped: SkippedLayer[] = [];
    const assignments: [LayersModel['weights'][number], Tensor][] = [];
    const modelLayers = model.layers.filter((layer) => layer.weights.length > 0);
    for (const layer of modelLayers) {
      const missing = layer.weights.filter((w) => named[w.originalName] === undefined).map((w) => w.originalName);
      if (missing.length > 0) {
        skipped.push({
          layer: layer.name,
          reason: 'missing in source',
          detail: sourceLayers.has(layer.name)
            ? `source layer lacks ${missing.join(', ')}`
            : `no layer named ${layer.name} in ${stored.modelJsonPath}`,
        });
        continue;
      }
      const mismatches = layer.weights
        .filter((w) => shapeText(named[w.originalName]!.shape) !== shapeText(w.shape))
        .map((w) => `${w.originalName} expected ${shapeText(w.shape)}, found ${shapeText(named[w.originalName]!.shape)}`);
      if (mismatches.length > 0) {
        skipped.push({ layer: layer.name, reason: 'shape mismatch', detail: mismatches.join('; ') });
        continue;
      }
      for (const w of layer.weights) assignments.push([w, named[w.originalName]!]);
      loaded.push(layer.name);
    }
    const modelLayerNames = new Set(modelLayers.map((layer) => layer.name));
    const notInModel = [...sourceLayers].filter((name) => !modelLayerNames.has(name)).sort();
    const report: LoadReport = {
      source,
      modelJson: stored.modelJsonPath,
      weightsFile,
      strict: options.strict,
      loaded,
      skipped,
      notInModel,
      counts: {
        loaded: loaded.length,
        skipped: skipped.length,
        notInModel: notInModel.length,
        modelLayersWithWeights: modelLayers.length,
      },
    };
    if (options.strict && (skipped.length > 0 || notInModel.length > 0)) {
      throw new Error(
        `strict pretrained load from ${stored.modelJsonPath} failed: ${formatLoadReport(report)}\n` +
          `Set strict: false to load what matches and keep the rest at their seeded initial weights`,
      );
    }
    // Assign only after every check passed, so a strict failure leaves the model untouched.
    for (const [variable, value] of assignments) variable.write(value);
    return report;
  } finally {
    getTf().dispose(Object.values(named));
  }
}

/** The report when no pretrained input is given. */
export function emptyLoadReport(model: LayersModel, strict: boolean): LoadReport {
  const layers = model.layers.filter((layer) => layer.weights.length > 0).length;
  return {
    source: null,
    modelJson: null,
    weightsFile: null,
    strict,
    loaded: [],
    skipped: [],
    notInModel: [],
    counts: { loaded: 0, skipped: 0, notInModel: 0, modelLayersWithWeights: layers },
  };
}

/** Human summary printed by model.build and written to load-report.txt. */
export function formatLoadReport(report: LoadReport): string {
  if (report.source === null) return 'no pretrained weights: all layers initialised from the seed';
  const lines = [
    `pretrained ${report.modelJson}${report.weightsFile !== null ? ` (weights ${report.weightsFile})` : ''}: ` +
      `loaded ${report.counts.loaded} of ${report.counts.modelLayersWithWeights} layers, ` +
      `skipped ${report.counts.skipped}, ${report.counts.notInModel} source layers not in model`,
  ];
  for (const skip of report.skipped) lines.push(`  skipped ${skip.layer}: ${skip.reason}: ${skip.detail}`);
  if (report.notInModel.length > 0) lines.push(`  not in model: ${report.notInModel.join(', ')}`);
  return lines.join('\n');
}
