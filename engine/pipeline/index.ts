// The pipeline loader's public API: load and validate a pipeline file, render its graph.
export { formatDiagnostic, PipelineError, type Diagnostic } from './diagnostics.js';
export { canonicalJson } from './canonical.js';
export { loadPipeline, loadPipelineFromText } from './loader.js';
export { parseOverride } from './overrides.js';
export { dependentsOf, renderGraph } from './graph.js';
export type { CommandPart, InputRef, LoadOptions, ParamSource, ResolvedPipeline, ResolvedStage } from './types.js';
