/**
 * PyTorch checkpoints (`torch.save(model.state_dict(), 'model.pt')`) read without Python: the zip
 * format of PyTorch >= 1.6 and the legacy format before it (`_use_new_zipfile_serialization=False`).
 *
 * A pickle can run any code when Python unpickles it. This reader is restricted, like tinygrad's
 * `nn/state.py`: it interprets the pickle opcodes itself and knows only the few callables a state
 * dict needs (an OrderedDict, `torch._utils._rebuild_tensor_v2`, `_rebuild_parameter`, the typed
 * storages). Anything else (a module class, `os.system`, ...) is refused with one line naming it.
 *
 * Tensors come back as a StateDict: float types as F32, int64 as I64 (num_batches_tracked), other
 * integer types as F32, as `loadSafetensors` does. Strided views are gathered into contiguous data.
 */
import { unzipSync } from 'fflate';
import type { StateDict, StateEntry } from './state.js';

/** The first bytes of a legacy torch.save file: PROTO 2, then the magic number 0x1950a86a20f9469cfc6c as LONG1. */
const LEGACY_MAGIC = [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];
const ZIP_MAGIC = [0x50, 0x4b, 0x03, 0x04];

const startsWith = (b: Uint8Array, m: number[]) => b.length >= m.length && m.every((v, i) => b[i] === v);

/** True when the bytes look like a PyTorch checkpoint (zip or legacy format). */
export function isTorchCheckpoint(bytes: Uint8Array): boolean {
  return startsWith(bytes, ZIP_MAGIC) || startsWith(bytes, LEGACY_MAGIC);
}

/** A storage type: the element kind and its size in bytes. */
interface StorageType { kind: 'F32' | 'F64' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL'; bytes: number }

const STORAGES: Record<string, StorageType> = {
  FloatStorage: { kind: 'F32', bytes: 4 }, DoubleStorage: { kind: 'F64', bytes: 8 }, HalfStorage: { kind: 'F16', bytes: 2 },
  BFloat16Storage: { kind: 'BF16', bytes: 2 }, LongStorage: { kind: 'I64', bytes: 8 }, IntStorage: { kind: 'I32', bytes: 4 },
  ShortStorage: { kind: 'I16', bytes: 2 }, CharStorage: { kind: 'I8', bytes: 1 }, ByteStorage: { kind: 'U8', bytes: 1 },
  BoolStorage: { kind: 'BOOL', bytes: 1 },
};

class Storage { constructor(readonly type: StorageType, readonly key: string, public bytes: Uint8Array | null = null) {} }
class TensorRef { constructor(readonly storage: Storage, readonly offset: number, readonly size: number[], readonly stride: number[]) {} }
class OrderedDict extends Map<unknown, unknown> {}
class Global { constructor(readonly module: string, readonly name: string) {} }
const MARK = Symbol('mark');

type Callable = (args: unknown[]) => unknown;

/** The only callables a pickle may name. */
const CALLABLES: Record<string, Callable> = {
  'collections.OrderedDict': () => new OrderedDict(),
  'torch._utils._rebuild_tensor_v2': (a) => rebuildTensor(a),
  'torch._utils._rebuild_tensor': (a) => rebuildTensor(a),
  'torch._utils._rebuild_parameter': (a) => a[0],
  'torch._utils._rebuild_parameter_with_state': (a) => a[0],
};

function rebuildTensor(a: unknown[]): TensorRef {
  const [storage, offset, size, stride] = a;
  if (!(storage instanceof Storage) || typeof offset !== 'number' || !Array.isArray(size) || !Array.isArray(stride))
    throw new PickleError('a tensor with an unexpected layout');
  return new TensorRef(storage, offset, size as number[], stride as number[]);
}

class PickleError extends Error {}

/**
 * Interprets one pickle starting at `pos`; `persistentLoad` turns a persistent id into a storage.
 * Returns the value and the position after STOP.
 */
function unpickle(b: Uint8Array, pos: number, persistentLoad: (pid: unknown) => unknown): { value: unknown; end: number } {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const stack: unknown[] = [];
  const memo = new Map<number, unknown>();
  const need = (n: number) => { if (pos + n > b.length) throw new PickleError('it ends in the middle of a pickle'); };
  const u8 = () => { need(1); return b[pos++]; };
  const u16 = () => { need(2); const v = dv.getUint16(pos, true); pos += 2; return v; };
  const u32 = () => { need(4); const v = dv.getUint32(pos, true); pos += 4; return v; };
  const u64 = () => { need(8); const v = Number(dv.getBigUint64(pos, true)); pos += 8; return v; };
  const bytes = (n: number) => { need(n); const v = b.subarray(pos, pos + n); pos += n; return v; };
  const utf8 = (n: number) => new TextDecoder().decode(bytes(n));
  const line = () => { const e = b.indexOf(0x0a, pos); if (e < 0) throw new PickleError('it ends in the middle of a pickle'); const s = new TextDecoder().decode(b.subarray(pos, e)); pos = e + 1; return s; };
  const pop = () => { if (!stack.length) throw new PickleError('its pickle pops an empty stack'); return stack.pop(); };
  const popMark = () => {
    const i = stack.lastIndexOf(MARK);
    if (i < 0) throw new PickleError('its pickle has no mark');
    const items = stack.splice(i);
    items.shift();
    return items;
  };
  const top = () => { if (!stack.length) throw new PickleError('its pickle reads an empty stack'); return stack[stack.length - 1]; };
  const setItems = (d: unknown, kv: unknown[]) => {
    if (!(d instanceof Map)) throw new PickleError('its pickle sets items on something that is not a dict');
    for (let i = 0; i + 1 < kv.length; i += 2) d.set(kv[i], kv[i + 1]);
  };
  const global = (module: string, name: string) => {
    const full = `${module}.${name}`;
    if (module === 'torch' && STORAGES[name]) return STORAGES[name];
    if (CALLABLES[full]) return new Global(module, name);
    throw new PickleError(`its pickle names '${full}', and only tensors and dicts of tensors are read`);
  };
  for (;;) {
    const op = u8();
    switch (op) {
      case 0x80: u8(); break;                                   // PROTO
      case 0x95: u64(); break;                                  // FRAME
      case 0x7d: stack.push(new Map()); break;                  // EMPTY_DICT
      case 0x5d: stack.push([]); break;                         // EMPTY_LIST
      case 0x29: stack.push([]); break;                         // EMPTY_TUPLE (tuples are arrays)
      case 0x28: stack.push(MARK); break;                       // MARK
      case 0x58: stack.push(utf8(u32())); break;                // BINUNICODE
      case 0x8c: stack.push(utf8(u8())); break;                 // SHORT_BINUNICODE
      case 0x8d: stack.push(utf8(u64())); break;                // BINUNICODE8
      case 0x55: stack.push(new TextDecoder('latin1').decode(bytes(u8()))); break;   // SHORT_BINSTRING
      case 0x54: stack.push(new TextDecoder('latin1').decode(bytes(u32()))); break;  // BINSTRING
      case 0x43: stack.push(bytes(u8())); break;                // SHORT_BINBYTES
      case 0x42: stack.push(bytes(u32())); break;               // BINBYTES
      case 0x8e: stack.push(bytes(u64())); break;               // BINBYTES8
      case 0x4a: need(4); stack.push(dv.getInt32(pos, true)); pos += 4; break;   // BININT
      case 0x4b: stack.push(u8()); break;                       // BININT1
      case 0x4d: stack.push(u16()); break;                      // BININT2
      case 0x8a: {                                              // LONG1
        const n = u8(), v = bytes(n);
        let x = 0n;
        for (let i = n - 1; i >= 0; i--) x = (x << 8n) | BigInt(v[i]);
        if (n && v[n - 1] & 0x80) x -= 1n << BigInt(8 * n);
        stack.push(x >= BigInt(Number.MIN_SAFE_INTEGER) && x <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(x) : x);
        break;
      }
      case 0x47: need(8); stack.push(dv.getFloat64(pos, false)); pos += 8; break;  // BINFLOAT
      case 0x4e: stack.push(null); break;                       // NONE
      case 0x88: stack.push(true); break;                       // NEWTRUE
      case 0x89: stack.push(false); break;                      // NEWFALSE
      case 0x74: stack.push(popMark()); break;                  // TUPLE
      case 0x85: stack.push([pop()]); break;                    // TUPLE1
      case 0x86: { const y = pop(), x = pop(); stack.push([x, y]); break; }           // TUPLE2
      case 0x87: { const z = pop(), y = pop(), x = pop(); stack.push([x, y, z]); break; } // TUPLE3
      case 0x6c: stack.push(popMark()); break;                  // LIST
      case 0x61: { const v = pop(); (top() as unknown[]).push(v); break; }             // APPEND
      case 0x65: { const vs = popMark(); (top() as unknown[]).push(...vs); break; }     // APPENDS
      case 0x64: { const m = new Map(); setItems(m, popMark()); stack.push(m); break; } // DICT
      case 0x73: { const v = pop(), k = pop(); setItems(top(), [k, v]); break; }        // SETITEM
      case 0x75: { const kv = popMark(); setItems(top(), kv); break; }                  // SETITEMS
      case 0x63: { const m = line(), n = line(); stack.push(global(m, n)); break; }      // GLOBAL
      case 0x93: { const n = pop(), m = pop(); stack.push(global(String(m), String(n))); break; } // STACK_GLOBAL
      case 0x52: {                                              // REDUCE
        const args = pop(), f = pop();
        if (!(f instanceof Global) || !Array.isArray(args)) throw new PickleError('its pickle calls something that is not a known callable');
        stack.push(CALLABLES[`${f.module}.${f.name}`](args));
        break;
      }
      case 0x81: throw new PickleError('its pickle builds an object (NEWOBJ), and only tensors and dicts of tensors are read');
      case 0x62: pop(); break;                                  // BUILD: state of an OrderedDict (_metadata), not needed
      case 0x71: memo.set(u8(), top()); break;                  // BINPUT
      case 0x72: memo.set(u32(), top()); break;                 // LONG_BINPUT
      case 0x94: memo.set(memo.size, top()); break;             // MEMOIZE
      case 0x68: case 0x6a: {                                   // BINGET, LONG_BINGET
        const k = op === 0x68 ? u8() : u32();
        if (!memo.has(k)) throw new PickleError(`its pickle reads memo ${k}, which was never set`);
        stack.push(memo.get(k));
        break;
      }
      case 0x51: stack.push(persistentLoad(pop())); break;      // BINPERSID
      case 0x2e: return { value: pop(), end: pos };             // STOP
      default: throw new PickleError(`its pickle has opcode 0x${op.toString(16)}, which a state dict does not use`);
    }
  }
}

/** Storage descriptions in a persistent id: ('storage', type, key, location, numel, ...). */
function storageFromPid(pid: unknown, storages: Map<string, Storage>): Storage {
  if (!Array.isArray(pid) || pid[0] !== 'storage' || typeof pid[1] !== 'object' || !pid[1] || !('kind' in pid[1]))
    throw new PickleError('its pickle refers to something other than a tensor storage');
  const key = String(pid[2]);
  let s = storages.get(key);
  if (!s) { s = new Storage(pid[1] as StorageType, key); storages.set(key, s); }
  return s;
}

/** Contiguous data of a (possibly strided) tensor view, converted as loadSafetensors converts. */
function materialize(name: string, t: TensorRef, source: string): StateEntry {
  const { storage, offset, size, stride } = t;
  const bytes = storage.bytes;
  if (!bytes) throw new Error(`${source}: tensor '${name}' has no data in the file`);
  const n = size.reduce((a, b) => a * b, 1);
  const esz = storage.type.bytes;
  const count = bytes.length / esz;
  // the largest element index the view touches must be inside the storage
  const last = n === 0 ? offset : offset + size.reduce((a, d, i) => a + (d - 1) * stride[i], 0);
  if (offset < 0 || last >= count && n > 0) throw new Error(`${source}: tensor '${name}' reaches past its storage (${count} elements)`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const read = (i: number): number | bigint => {
    const p = i * esz;
    switch (storage.type.kind) {
      case 'F32': return dv.getFloat32(p, true);
      case 'F64': return dv.getFloat64(p, true);
      case 'F16': return f16(dv.getUint16(p, true));
      case 'BF16': { const c = new DataView(new ArrayBuffer(4)); c.setUint32(0, dv.getUint16(p, true) << 16); return c.getFloat32(0); }
      case 'I64': return dv.getBigInt64(p, true);
      case 'I32': return dv.getInt32(p, true);
      case 'I16': return dv.getInt16(p, true);
      case 'I8': return dv.getInt8(p);
      default: return dv.getUint8(p);
    }
  };
  const isLong = storage.type.kind === 'I64';
  const out = isLong ? new BigInt64Array(n) : new Float32Array(n);
  const idx = new Array(size.length).fill(0);
  for (let k = 0; k < n; k++) {
    let p = offset;
    for (let d = 0; d < size.length; d++) p += idx[d] * stride[d];
    const v = read(p);
    if (isLong) (out as BigInt64Array)[k] = v as bigint; else (out as Float32Array)[k] = v as number;
    for (let d = size.length - 1; d >= 0; d--) { if (++idx[d] < size[d]) break; idx[d] = 0; }
  }
  return isLong ? { dtype: 'I64', shape: [...size], data: out as BigInt64Array } : { dtype: 'F32', shape: [...size], data: out as Float32Array };
}

function f16(h: number): number {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** The state dict (name -> tensor) in a pickled value: a dict of tensors, or {state_dict: {...}}, {model: {...}}. */
function toStateDict(value: unknown, source: string): StateDict {
  let d = value;
  if (d instanceof Map && ![...d.values()].some((v) => v instanceof TensorRef)) {
    for (const k of ['state_dict', 'model_state_dict', 'model']) if (d.get(k) instanceof Map) { d = d.get(k); break; }
  }
  if (!(d instanceof Map)) throw new Error(`${source}: a PyTorch file that holds no dict of tensors (save model.state_dict())`);
  const out: StateDict = new Map();
  for (const [k, v] of d) {
    if (!(v instanceof TensorRef)) throw new Error(`${source}: key '${String(k)}' is not a tensor (save model.state_dict())`);
    out.set(String(k), materialize(String(k), v, source));
  }
  return out;
}

function loadZip(bytes: Uint8Array, source: string): StateDict {
  let files: Record<string, Uint8Array>;
  try { files = unzipSync(bytes); } catch (e) { throw new Error(`${source}: a damaged PyTorch zip checkpoint (${(e as Error).message})`, { cause: e }); }
  const pkl = Object.keys(files).find((f) => /^[^/]+\/data\.pkl$/.test(f));
  if (!pkl) throw new Error(`${source}: a zip file without <name>/data.pkl, not a PyTorch checkpoint`);
  const prefix = pkl.slice(0, -'data.pkl'.length);
  const order = files[`${prefix}byteorder`];
  if (order && new TextDecoder().decode(order).trim() !== 'little') throw new Error(`${source}: a big-endian PyTorch checkpoint, which is not supported`);
  const storages = new Map<string, Storage>();
  const { value } = unpickle(files[pkl], 0, (pid) => storageFromPid(pid, storages));
  for (const s of storages.values()) {
    const data = files[`${prefix}data/${s.key}`];
    if (!data) throw new Error(`${source}: storage ${s.key} is missing from the zip`);
    s.bytes = data;
  }
  return toStateDict(value, source);
}

function loadLegacy(bytes: Uint8Array, source: string): StateDict {
  const none = () => { throw new PickleError('a persistent id outside the main pickle'); };
  let pos = unpickle(bytes, 0, none).end;              // magic number
  const proto = unpickle(bytes, pos, none);            // protocol version
  if (proto.value !== 1001) throw new Error(`${source}: legacy PyTorch format version ${String(proto.value)}, expected 1001`);
  const sys = unpickle(bytes, proto.end, none);        // sys_info
  if (sys.value instanceof Map && sys.value.get('little_endian') === false) throw new Error(`${source}: a big-endian PyTorch checkpoint, which is not supported`);
  const storages = new Map<string, Storage>();
  const main = unpickle(bytes, sys.end, (pid) => {
    // (..., view_metadata): a view (view_key, offset, size) into a root storage
    if (Array.isArray(pid) && Array.isArray(pid[5])) throw new PickleError('storage views (re-save it with a current PyTorch)');
    return storageFromPid(pid, storages);
  });
  const keys = unpickle(bytes, main.end, none);
  if (!Array.isArray(keys.value)) throw new Error(`${source}: a legacy checkpoint without its list of storages`);
  pos = keys.end;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (const k of keys.value) {
    const s = storages.get(String(k));
    if (!s) throw new Error(`${source}: storage ${String(k)} is listed but not used`);
    if (pos + 8 > bytes.length) throw new Error(`${source}: truncated (storage ${String(k)} is missing)`);
    const numel = Number(dv.getBigInt64(pos, true));
    pos += 8;
    const len = numel * s.type.bytes;
    if (numel < 0 || pos + len > bytes.length) throw new Error(`${source}: truncated (storage ${String(k)} needs ${len} bytes)`);
    s.bytes = bytes.subarray(pos, pos + len);
    pos += len;
  }
  return toStateDict(main.value, source);
}

/**
 * Reads the state dict of a PyTorch checkpoint (zip or legacy format). Throws one line naming
 * `source` and what is wrong; a pickle naming anything but tensors and dicts is refused.
 */
export function loadTorchCheckpoint(bytes: Uint8Array, source = 'PyTorch checkpoint'): StateDict {
  try {
    if (startsWith(bytes, ZIP_MAGIC)) return loadZip(bytes, source);
    if (startsWith(bytes, LEGACY_MAGIC)) return loadLegacy(bytes, source);
  } catch (e) {
    if (e instanceof PickleError) throw new Error(`${source}: refused: ${e.message}`, { cause: e });
    throw e;
  }
  throw new Error(`${source}: not a PyTorch checkpoint (neither the zip nor the legacy format)`);
}
