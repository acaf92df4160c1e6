/**
 * Imported first by the CLI (main.ts): keeps V8's young generation at its starting size. By default
 * a semi-space doubles whenever a scavenge finds it busy, up to 16 MB (the young generation then
 * holds up to 3 x 16 MB); a training step allocates many small short-lived objects, so the young
 * generation of a run grew to its maximum and added about 15 MB to the peak RSS. With the growth
 * factor at 1 it stays at 1 MB semi-spaces; the objects of a step still die young, in more frequent
 * and smaller scavenges.
 *
 * `--max-semi-space-size` would say it directly but is read once when V8 starts (only on the
 * command line or NODE_OPTIONS); the growth factor is read at each growth, so it works when set
 * here (V8 11, Node 20). A V8 that enforces a minimum factor (2 in later versions) keeps its own
 * behaviour; the flag exists in every version, so setting it prints nothing.
 */
import v8 from 'node:v8';

v8.setFlagsFromString('--semi-space-growth-factor=1');
