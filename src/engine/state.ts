/**
 * State dicts and the safetensors format (https://github.com/huggingface/safetensors):
 * an 8-byte little-endian header length, a JSON header, then the raw little-endian tensor bytes.
 * Written files load in PyTorch with `safetensors.torch.load_file` and vice versa.
 */

export type DType = 'F32' | 'I64';

export interface StateEntry {
  dtype: DType;
  shape: number[];
  /** F32 -> Float32Array, I64 -> BigInt64Array. */
  data: Float32Array | BigInt64Array;
}

/** An ordered map from PyTorch-style names (`encoder.0.weight`) to tensors. */
export type StateDict = Map<string, StateEntry>;

export function f32(shape: number[], data: Float32Array): StateEntry {
  return { dtype: 'F32', shape, data };
}

export function i64(shape: number[], data: BigInt64Array): StateEntry {
  return { dtype: 'I64', shape, data };
}

const BYTES: Record<string, number> = { F32: 4, I64: 8, F64: 8, I32: 4, F16: 2, BF16: 2, U8: 1, I8: 1, I16: 2, BOOL: 1 };

/** Serialises a state dict (and optional string metadata) to safetensors bytes. */
export function saveSafetensors(sd: StateDict, metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, e] of sd) {
    const n = e.shape.reduce((a, b) => a * b, 1);
    if (e.data.length !== n) throw new Error(`safetensors: '${name}' has ${e.data.length} elements, shape [${e.shape}] needs ${n}`);
    const bytes = n * BYTES[e.dtype];
    header[name] = { dtype: e.dtype, shape: e.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  // the header is padded with spaces so that the data starts 8-byte aligned: counted in UTF-8 bytes, not
  // characters (metadata may hold any text)
  const json = new TextEncoder().encode(JSON.stringify(header));
  const jsonBytes = new Uint8Array(Math.ceil(json.length / 8) * 8).fill(0x20);
  jsonBytes.set(json);
  const out = new Uint8Array(8 + jsonBytes.length + offset);
  const dv = new DataView(out.buffer);
  dv.setBigUint64(0, BigInt(jsonBytes.length), true);
  out.set(jsonBytes, 8);
  let pos = 8 + jsonBytes.length;
  for (const e of sd.values()) {
    const src = new Uint8Array(e.data.buffer, e.data.byteOffset, e.data.byteLength);
    out.set(src, pos);
    pos += src.length;
  }
  return out;
}

export interface Safetensors { tensors: StateDict; metadata: Record<string, string> }

/**
 * Parses safetensors bytes. F32 and I64 load as they are; F64, F16, BF16 and integer types are
 * converted to F32 (I32/I16/I8/U8/BOOL) so that files written elsewhere load too.
 * `source` names the file in error messages.
 */
export function loadSafetensors(bytes: Uint8Array, source = 'safetensors data'): Safetensors {
  if (bytes.length < 8) throw new Error(`${source}: not a safetensors file (shorter than its 8-byte header length)`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const hlen = Number(dv.getBigUint64(0, true));
  if (hlen <= 0 || 8 + hlen > bytes.length) throw new Error(`${source}: not a safetensors file (header length ${hlen} does not fit in ${bytes.length} bytes)`);
  let header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] } | Record<string, string>>;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + hlen)));
  } catch {
    throw new Error(`${source}: not a safetensors file (its header is not JSON)`);
  }
  const base = 8 + hlen;
  const tensors: StateDict = new Map();
  let metadata: Record<string, string> = {};
  const entries = Object.entries(header).filter(([k]) => k !== '__metadata__');
  if (header.__metadata__) metadata = header.__metadata__ as Record<string, string>;
  // keep the order of the data, which is the order the writer used
  entries.sort((a, b) => (a[1] as { data_offsets: number[] }).data_offsets[0] - (b[1] as { data_offsets: number[] }).data_offsets[0]);
  for (const [name, info] of entries) {
    const { dtype, shape, data_offsets } = info as { dtype: string; shape: number[]; data_offsets: [number, number] };
    const n = shape.reduce((a, b) => a * b, 1);
    const [s, e] = data_offsets;
    if (!(dtype in BYTES)) throw new Error(`${source}: tensor '${name}' has unsupported dtype ${dtype}`);
    if (e - s !== n * BYTES[dtype] || base + e > bytes.length)
      throw new Error(`${source}: tensor '${name}' is truncated or inconsistent (expected ${n * BYTES[dtype]} bytes)`);
    // a copy (Uint8Array.prototype.slice even for a Node Buffer, whose slice() is a view): aligned and independent
    const raw = Uint8Array.prototype.slice.call(bytes, base + s, base + e);
    const rdv = new DataView(raw.buffer);
    let entry: StateEntry;
    if (dtype === 'F32') entry = { dtype: 'F32', shape, data: new Float32Array(raw.buffer) };
    else if (dtype === 'I64') entry = { dtype: 'I64', shape, data: new BigInt64Array(raw.buffer) };
    else {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) {
        switch (dtype) {
          case 'F64': out[i] = rdv.getFloat64(i * 8, true); break;
          case 'I32': out[i] = rdv.getInt32(i * 4, true); break;
          case 'I16': out[i] = rdv.getInt16(i * 2, true); break;
          case 'I8': out[i] = rdv.getInt8(i); break;
          case 'U8': case 'BOOL': out[i] = rdv.getUint8(i); break;
          case 'BF16': out[i] = bf16ToF32(rdv.getUint16(i * 2, true)); break;
          case 'F16': out[i] = f16ToF32(rdv.getUint16(i * 2, true)); break;
        }
      }
      entry = { dtype: 'F32', shape, data: out };
    }
    tensors.set(name, entry);
  }
  return { tensors, metadata };
}

const cvt = new DataView(new ArrayBuffer(4));
function bf16ToF32(h: number): number {
  cvt.setUint32(0, h << 16);
  return cvt.getFloat32(0);
}

function f16ToF32(h: number): number {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}
