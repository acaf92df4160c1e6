/**
 * The open run's progress in words: "step 140 of 938 (epoch 1 of 1)". The step and the plan come from
 * the run (its status, else its last metrics line); the total is never smaller than the step shown.
 */
export interface ProgressInput {
  status: string;
  /** The last step the run reports (status.json, else the last metrics line; a finished run's result). */
  step: number | null;
  /** The steps it plans (status.json, else config.json). */
  totalSteps: number | null;
  /** Batches in one epoch (config.json). */
  perEpoch: number | null;
}

/** "step 140 of 938 (epoch 1 of 1)", or "" when the step is not known yet. */
export function stepText(p: Omit<ProgressInput, 'status'>): string {
  if (p.step === null || !Number.isFinite(p.step)) return '';
  const step = Math.max(0, Math.round(p.step));
  const total = p.totalSteps && p.totalSteps > 0 ? Math.max(p.totalSteps, step) : null;
  let s = total ? `step ${step} of ${total}` : `step ${step}`;
  if (total && p.perEpoch && p.perEpoch > 0) {
    const epochs = Math.max(1, Math.ceil(total / p.perEpoch));
    const epoch = Math.min(epochs, Math.floor(Math.max(0, step - 1) / p.perEpoch) + 1);
    s += ` (epoch ${epoch} of ${epochs})`;
  }
  return s;
}

/** One line on where the run is, by its status. */
export function progressText(p: ProgressInput): string {
  const at = stepText(p);
  switch (p.status) {
    case 'starting': return 'starting: loading the data…';
    case 'training': return at ? `training: ${at}` : 'training: waiting for the first logged step…';
    case 'finishing': return `stopping${at ? ` at ${at}` : ''}: writing a checkpoint…`;
    case 'done': return `finished${p.step !== null ? `: ${p.step} steps` : ''}`;
    case 'stopped': return `stopped${at ? ` at ${at}` : ''}: its checkpoint is kept; Resume continues it`;
    case 'failed': return `failed${at ? ` at ${at}` : ''}`;
    case 'incomplete': return 'incomplete: no weights yet';
    default: return p.status;
  }
}
