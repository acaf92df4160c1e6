/**
 * A safetensors header is checked in full before any data is read: each fault is one line naming the
 * file and what is wrong, never a raw TypeError and never garbage loaded silently.
 */
import { describe, expect, it } from 'vitest';
import { f32, loadSafetensors, saveSafetensors, type StateDict } from '../src/engine/state.js';

/** A file with the given header (any JSON) and `data` bytes after it. */
function withHeader(header: unknown, data = 8): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  return out;
}

describe('safetensors header validation', () => {
  it('a valid file still round-trips', () => {
    const sd: StateDict = new Map([['a', f32([2], Float32Array.of(1, 2))], ['b', f32([1, 1], Float32Array.of(3))]]);
    const back = loadSafetensors(saveSafetensors(sd, { k: 'v' }), 'ok.safetensors');
    expect(Array.from(back.tensors.get('b')!.data as Float32Array)).toEqual([3]);
    expect(back.metadata).toEqual({ k: 'v' });
  });

  const cases: [string, unknown, number, RegExp][] = [
    ['a null header', null, 8, /its header is not a JSON object/],
    ['an array header', [1, 2], 8, /its header is not a JSON object/],
    ['a tensor that is a number', { a: 5 }, 8, /tensor 'a' is not an object/],
    ['a tensor without a shape', { a: { dtype: 'F32', data_offsets: [0, 8] } }, 8, /tensor 'a' has no shape of non-negative integers/],
    ['a negative dimension', { a: { dtype: 'F32', shape: [-2], data_offsets: [0, 8] } }, 8, /tensor 'a' has no shape/],
    ['an unknown dtype', { a: { dtype: 'F99', shape: [2], data_offsets: [0, 8] } }, 8, /tensor 'a' has dtype "F99"/],
    ['negative offsets', { a: { dtype: 'F32', shape: [2], data_offsets: [-8, 0] } }, 8, /tensor 'a' has data_offsets \[-8,0\]/],
    ['offsets that disagree with the shape', { a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, 8, /tensor 'a' has 8 bytes of data, its shape \[3\] and dtype F32 need 12/],
    ['overlapping tensors', { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, 12, /tensor 'b' overlaps the one before it/],
    ['a hole in the data', { a: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, 8, /a hole in the data before tensor 'a'/],
    ['data past the end', { a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, 8, /truncated: the header needs 16 bytes of data, the file has 8/],
    ['metadata that is not strings', { __metadata__: { k: 1 }, a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, 8, /__metadata__ is not an object of strings/],
  ];
  for (const [what, header, data, msg] of cases) {
    it(`${what}: one line naming the file`, () => {
      let err: Error | null = null;
      try { loadSafetensors(withHeader(header, data), 'w.safetensors'); } catch (e) { err = e as Error; }
      expect(err).toBeInstanceOf(Error);
      expect(err!.constructor).toBe(Error);   // not a TypeError from inside the reader
      expect(err!.message).toMatch(/^w\.safetensors: not a valid safetensors file \(/);
      expect(err!.message).toMatch(msg);
      expect(err!.message).not.toContain('\n');
    });
  }
});
