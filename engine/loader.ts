// The engine's one door to the pipeline loader (engine/pipeline/, another engineer's): everything the
// executor and CLI need from it, re-exported so a change of its module layout touches one file here.
export { loadPipeline, renderGraph, dependentsOf, PipelineError, formatDiagnostic, canonicalJson } from './pipeline/index.js';
export type { Diagnostic, ResolvedPipeline, ResolvedStage, InputRef, CommandPart } from './pipeline/index.js';
