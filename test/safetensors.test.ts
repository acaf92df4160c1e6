/** safetensors files with metadata that is not ASCII: the header is padded by UTF-8 bytes, not characters. */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { f32, i64, loadSafetensors, saveSafetensors, type StateDict } from '../src/engine/state.js';

const META = { note: 'naïve café — 日本語 ✓', label: 'T-shirt/top', empty: '' };

function sample(): StateDict {
  const sd: StateDict = new Map();
  sd.set('w', f32([2, 3], Float32Array.from([1, -2, 3.5, 4, 5, -6.25])));
  sd.set('n', i64([], BigInt64Array.from([7n])));
  return sd;
}

/** A Python with PyTorch's safetensors package (see tools/fixtures), or null. */
function safetensorsPython(): string | null {
  for (const py of ['/work/.venv-torch/bin/python', '/usr/bin/python3']) {
    const r = spawnSync(py, ['-c', 'import safetensors.torch'], { stdio: 'ignore' });
    if (r.status === 0) return py;
  }
  return null;
}

describe('safetensors header', () => {
  it('with non-ASCII metadata, the header length counts bytes and the data starts 8-byte aligned', () => {
    const bytes = saveSafetensors(sample(), META);
    const hlen = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
    expect((8 + hlen) % 8).toBe(0);
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + hlen)));
    expect(header.__metadata__).toEqual(META);
    expect(bytes.length).toBe(8 + hlen + 6 * 4 + 8);
    const back = loadSafetensors(bytes);
    expect(back.metadata).toEqual(META);
    expect(Array.from(back.tensors.get('w')!.data as Float32Array)).toEqual([1, -2, 3.5, 4, 5, -6.25]);
    expect((back.tensors.get('n')!.data as BigInt64Array)[0]).toBe(7n);
  });

  const py = safetensorsPython();
  it.runIf(py !== null)("loads in PyTorch's safetensors (metadata and tensors)", () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'st-'));
    try {
      const file = path.join(dir, 'meta.safetensors');
      writeFileSync(file, saveSafetensors(sample(), META));
      const script = [
        'import json, sys',
        'from safetensors import safe_open',
        'with safe_open(sys.argv[1], framework="pt") as f:',
        '    out = {"meta": f.metadata(), "w": f.get_tensor("w").flatten().tolist(), "n": int(f.get_tensor("n"))}',
        'print(json.dumps(out))',
      ].join('\n');
      const r = spawnSync(py!, ['-c', script, file], { encoding: 'utf8' });
      expect(r.stderr).toBe('');
      expect(JSON.parse(r.stdout)).toEqual({ meta: META, w: [1, -2, 3.5, 4, 5, -6.25], n: 7 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
