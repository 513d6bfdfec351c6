// The engine's one door to the pipeline loader (engine/pipeline/, another engineer's): everything the
// executor and CLI need from it, re-exported so a change of its module layout touches one file here.
export { loadPipeline } from './pipeline/loader.js';
export { PipelineError, formatDiagnostic } from './pipeline/diagnostics.js';
export type { Diagnostic } from './pipeline/diagnostics.js';
export type { ResolvedPipeline, ResolvedStage, InputRef, CommandPart } from './pipeline/types.js';
export { canonicalJson } from './pipeline/canonical.js';
