/** What the bench's browser parts share: the Chromium they drive, their flags, their medians. */

/** Debian's Chromium, or $LATENTLAB_CHROMIUM. */
export const CHROMIUM = process.env.LATENTLAB_CHROMIUM ?? '/usr/bin/chromium';

/** The positive integer after `name` on the command line, else `dflt` (one line on a bad value). */
export function intArg(name: string, dflt: number): number {
  const i = process.argv.indexOf(name);
  if (i < 0) return dflt;
  const v = Number(process.argv[i + 1]);
  if (!Number.isInteger(v) || v < 1) throw new Error(`${name}: expected a positive integer, got '${process.argv[i + 1]}'`);
  return v;
}

/** The median of the finite values (the mean of the middle two for an even count), NaN for none. */
export function median(a: readonly number[]): number {
  const s = a.filter((x) => Number.isFinite(x)).sort((x, y) => x - y);
  if (!s.length) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Headless Chromium as the bench drives it (playwright-core, a dev dependency: loaded only here). */
export async function launchChromium(): Promise<import('playwright-core').Browser> {
  const { chromium } = await import('playwright-core');
  return chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu'] });
}
