// Interruption (DESIGN.md): the first SIGINT/SIGTERM asks running stages to checkpoint and stop (their
// AbortSignal fires); a second one exits at once after writing state synchronously. Exit code 130 either way.
export const INTERRUPT_EXIT_CODE = 130;

export interface InterruptHandlers {
  /** Called on the first signal, after the AbortController fired. */
  onFirst(signal: NodeJS.Signals): void;
  /** Called on the second signal; must be synchronous (the process exits right after). */
  onSecond(signal: NodeJS.Signals): void;
}

/** Installs the two-stage handlers for SIGINT and SIGTERM; returns a function that removes them. */
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
  process.on('SIGINT', listener);
  process.on('SIGTERM', listener);
  return () => {
    process.off('SIGINT', listener);
    process.off('SIGTERM', listener);
  };
}

export const STOPPING_MESSAGE = 'stopping: finishing the current step, then checkpointing (Ctrl+C again to exit now)';
