// A mistake in how flow was called (an unknown run, a stage name that is not in the pipeline, a bad option):
// the CLI prints it without a stack and exits 2, as the README says.
export class UsageError extends Error {}
