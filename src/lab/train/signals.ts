/**
 * SIGINT and SIGTERM during training: the first one asks the trainer to stop after the current
 * step (it writes a checkpoint there and marks the run `stopped`); a second one exits at once.
 */
export type StopSignal = 'SIGINT' | 'SIGTERM';

/** The exit code of a command stopped by a signal: 128 + the signal's number. */
export const SIGNAL_EXIT: Readonly<Record<StopSignal, number>> = { SIGINT: 130, SIGTERM: 143 };

/** Calls `onStop` at the first SIGINT or SIGTERM; returns a function that removes the handlers. */
export function onStopSignals(onStop: (signal: StopSignal) => void): () => void {
  let seen = false;
  const handler = (signal: StopSignal): void => {
    if (seen) {
      process.stderr.write(`latentlab: ${signal} again: exiting now, without a checkpoint at this step\n`);
      process.exit(SIGNAL_EXIT[signal]);
    }
    seen = true;
    onStop(signal);
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return () => {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
  };
}
