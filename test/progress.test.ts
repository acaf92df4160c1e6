/** Plain progress (no terminal): lines at a steady rate with an ETA, whatever the length of the run. */
import { describe, expect, it } from 'vitest';
import { formatSeconds, progress } from '../src/cli/progress.js';

function sink(): { stream: NodeJS.WritableStream & { isTTY?: boolean }; lines: string[] } {
  const lines: string[] = [];
  const stream = { isTTY: false, write: (s: string) => { lines.push(...s.split('\n').filter(Boolean)); return true; } } as unknown as NodeJS.WritableStream;
  return { stream, lines };
}

describe('plain progress', () => {
  it('a billion-step run still prints a line every 10 s, with its ETA', () => {
    let t = 0;
    const { stream, lines } = sink();
    const p = progress(1e9, 'train', { stream, now: () => t });
    // one step per 10 ms for 35 s: 5% is never reached, the clock decides
    for (let step = 1; step <= 3500; step++) { t = step * 10; p.update(step, { loss: '0.1' }); }
    expect(lines.length).toBe(4);   // the first step (t = 10 ms), then every 10 s after it
    expect(lines[1]).toBe('train 1001/1000000000 (0.0001%) loss 0.1 | ETA 115d17h');
  });

  it('a short run prints every 5% and the last step', () => {
    let t = 0;
    const { stream, lines } = sink();
    const p = progress(100, 'train', { stream, now: () => t });
    for (let step = 1; step <= 100; step++) { t += 1; p.update(step, {}); }
    expect(lines.length).toBe(21);
    expect(lines.at(-1)).toMatch(/^train 100\/100 \(100%\) {2}\| ETA 0s$/);
  });

  it('formats durations for people', () => {
    expect([5, 65, 3725, 90000].map(formatSeconds)).toEqual(['5s', '1m05s', '1h02m', '1d01h']);
  });
});
