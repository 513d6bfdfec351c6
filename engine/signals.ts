// Interruption (DESIGN.md): the first SIGINT/SIGTERM/SIGUSR1 asks running stages to checkpoint and stop (their
// AbortSignal fires); a second one exits at once after writing state synchronously. Exit code 130 either way.
// SIGUSR1 is what a batch scheduler sends ahead of a time limit or preemption (Slurm's `--signal=B:USR1@grace`,
// `scancel --signal=USR1`); SIGTERM is what `scancel` and a time limit send: both mean "save and stop" like Ctrl+C.
export const INTERRUPT_EXIT_CODE = 130;

/** The signals that stop a run gracefully (the first one) or at once (a second one). */
export const INTERRUPT_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGUSR1'];

export interface InterruptHandlers {
  /** Called on the first signal, after the AbortController fired. */
  onFirst(signal: NodeJS.Signals): void;
  /** Called on the second signal; must be synchronous (the process exits right after). */
  onSecond(signal: NodeJS.Signals): void;
}

/** Installs the two-stage handlers for INTERRUPT_SIGNALS; returns a function that removes them. */
export function installInterruptHandlers(controller: AbortController, handlers: InterruptHandlers): () => void {
  let count = 0;
  const listener = (sig: NodeJS.Signals): void => {
    count += 1;
    if (count === 1) {
      controller.abort(new Error(`received ${sig}`));
      handlers.onFirst(sig);
      return;
    }
    handlers.onSecond(sig);
    process.exit(INTERRUPT_EXIT_CODE);
  };
  for (const sig of INTERRUPT_SIGNALS) process.on(sig, listener);
  return () => {
    for (const sig of INTERRUPT_SIGNALS) process.off(sig, listener);
  };
}

export const STOPPING_MESSAGE = 'stopping: finishing the current step, then checkpointing (Ctrl+C again to exit now)';
