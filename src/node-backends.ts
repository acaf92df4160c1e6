/** Registers the Node-only backends (wasm over worker_threads, the optional native addon). */
import './engine/kernels/wasm/node.js';
import './engine/kernels/native/register.js';
