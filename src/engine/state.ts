/**
 * State dicts and the safetensors format (https://github.com/huggingface/safetensors):
 * an 8-byte little-endian header length, a JSON header, then the raw little-endian tensor bytes.
 * Written files load in PyTorch with `safetensors.torch.load_file` and vice versa.
 */

import { isTorchCheckpoint, loadTorchCheckpoint } from './torch_load.js';

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
interface HeaderEntry { dtype: string; shape: number[]; data_offsets: [number, number] }

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/**
 * Checks a parsed safetensors header as the format defines it: an object whose `__metadata__` maps
 * strings to strings and whose other keys are tensors {dtype, shape, data_offsets}, with shapes of
 * non-negative integers, offsets that agree with the shape and dtype, and data that covers the byte
 * buffer exactly, without overlaps or holes. Returns the tensors in the order of their data.
 */
function checkHeader(header: unknown, dataBytes: number, source: string): [string, HeaderEntry][] {
  const bad = (what: string) => new Error(`${source}: not a valid safetensors file (${what})`);
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw bad('its header is not a JSON object');
  const out: [string, HeaderEntry][] = [];
  for (const [name, v] of Object.entries(header)) {
    if (name === '__metadata__') {
      if (typeof v !== 'object' || v === null || Array.isArray(v) || Object.values(v).some((x) => typeof x !== 'string'))
        throw bad('__metadata__ is not an object of strings');
      continue;
    }
    const t = v as Partial<HeaderEntry> | null;
    if (typeof t !== 'object' || t === null || Array.isArray(t)) throw bad(`tensor '${name}' is not an object`);
    if (typeof t.dtype !== 'string' || !(t.dtype in BYTES)) throw bad(`tensor '${name}' has dtype ${JSON.stringify(t.dtype)}, expected one of ${Object.keys(BYTES).join(', ')}`);
    if (!Array.isArray(t.shape) || !t.shape.every(isCount)) throw bad(`tensor '${name}' has no shape of non-negative integers`);
    const o = t.data_offsets;
    if (!Array.isArray(o) || o.length !== 2 || !isCount(o[0]) || !isCount(o[1]) || o[1] < o[0]) throw bad(`tensor '${name}' has data_offsets ${JSON.stringify(o)}, expected [begin, end] with 0 <= begin <= end`);
    const need = t.shape.reduce((a: number, b: number) => a * b, 1) * BYTES[t.dtype];
    if (o[1] - o[0] !== need) throw bad(`tensor '${name}' has ${o[1] - o[0]} bytes of data, its shape [${t.shape}] and dtype ${t.dtype} need ${need}`);
    out.push([name, t as HeaderEntry]);
  }
  out.sort((a, b) => a[1].data_offsets[0] - b[1].data_offsets[0]);
  let end = 0;
  for (const [name, { data_offsets: [s, e] }] of out) {
    if (s !== end) throw bad(s < end ? `tensor '${name}' overlaps the one before it` : `a hole in the data before tensor '${name}'`);
    end = e;
  }
  if (end > dataBytes) throw bad(`truncated: the header needs ${end} bytes of data, the file has ${dataBytes}`);
  if (end < dataBytes) throw bad(`${dataBytes - end} bytes after the last tensor`);
  return out;
}

export function loadSafetensors(bytes: Uint8Array, source = 'safetensors data'): Safetensors {
  if (bytes.length < 8) throw new Error(`${source}: not a safetensors file (shorter than its 8-byte header length)`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const hlen = Number(dv.getBigUint64(0, true));
  if (hlen <= 0 || 8 + hlen > bytes.length) throw new Error(`${source}: not a safetensors file (header length ${hlen} does not fit in ${bytes.length} bytes)`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + hlen)));
  } catch {
    throw new Error(`${source}: not a safetensors file (its header is not JSON)`);
  }
  const base = 8 + hlen;
  const entries = checkHeader(header, bytes.length - base, source);
  const tensors: StateDict = new Map();
  const meta = (header as Record<string, unknown>).__metadata__;
  const metadata = (meta ?? {}) as Record<string, string>;
  for (const [name, { dtype, shape, data_offsets: [s, e] }] of entries) {
    const n = shape.reduce((a, b) => a * b, 1);
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

/**
 * A state dict from a file's bytes, whichever format it is in: safetensors (ours, or
 * safetensors.torch's), or a PyTorch checkpoint (`torch.save(model.state_dict())`, zip or legacy),
 * read by a restricted unpickler (./torch_load.ts). `source` names the file in errors.
 */
export function loadStateDict(bytes: Uint8Array, source = 'state dict'): Safetensors {
  if (isTorchCheckpoint(bytes)) return { tensors: loadTorchCheckpoint(bytes, source), metadata: {} };
  return loadSafetensors(bytes, source);
}
