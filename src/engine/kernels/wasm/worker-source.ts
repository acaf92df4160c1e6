/**
 * The worker's code as a self-contained JS string, so that it can be started without locating a file:
 * `new Worker(code, { eval: true })` in Node, a Blob URL in the browser.
 *
 * A worker receives { module, memory, ctrl, tid, spin } once, instantiates the kernels on the shared memory
 * and then loops: wait for the generation word of the control block to change (spinning a little first,
 * then Atomics.wait), run its share of the op, decrement the pending count and notify when it is the last.
 */
import { KERNEL_TABLE } from '../table.js';

const C = KERNEL_TABLE.wasmCtrl;

export const WORKER_SOURCE = String.raw`
'use strict';
(function () {
  var isNode = typeof process !== 'undefined' && process.versions != null && process.versions.node != null
    && typeof require === 'function';
  var port = isNode ? require('worker_threads').parentPort : self;
  function post(m) { port.postMessage(m); }
  function onFirst(fn) {
    if (isNode) port.once('message', fn);
    else { var h = function (e) { self.removeEventListener('message', h); fn(e.data); }; self.addEventListener('message', h); }
  }
  onFirst(function (d) {
    var inst;
    try {
      inst = new WebAssembly.Instance(d.module, { env: { memory: d.memory, abort: function () { throw new Error('wasm abort'); } } });
    } catch (e) { post({ error: String(e && e.message || e) }); return; }
    var run = inst.exports.run;
    var ctrlOff = d.ctrl, tid = d.tid, spin = d.spin;
    var c = new Int32Array(d.memory.buffer, ctrlOff, ${C.words});
    var gen = Atomics.load(c, ${C.generation});
    post({ ready: true });
    for (;;) {
      var n = 0;
      while (Atomics.load(c, ${C.generation}) === gen) {
        if (++n > spin) Atomics.wait(c, ${C.generation}, gen);
      }
      gen = Atomics.load(c, ${C.generation});
      if (Atomics.load(c, ${C.op}) < 0) break;
      try { run(ctrlOff, tid); }
      catch (e) { Atomics.store(c, ${C.error}, ${KERNEL_TABLE.wasmError.workerFailed}); }
      if (Atomics.sub(c, ${C.pending}, 1) === 1) Atomics.notify(c, ${C.pending});
    }
    if (Atomics.sub(c, ${C.pending}, 1) === 1) Atomics.notify(c, ${C.pending});
  });
})();
`;
