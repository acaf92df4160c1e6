/** Errors with the exit code the CLI returns for them (browser-safe). */

/** A mistake in what the user typed (a flag, a file, a key): the CLI exits with 2. */
export class UsageError extends Error {
  readonly exitCode = 2;
}
