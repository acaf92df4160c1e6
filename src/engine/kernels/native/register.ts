/**
 * Importing this module makes `--backend native` (and `auto`) able to use the native addon.
 * Node only; the addon itself is loaded lazily, when the backend is created.
 */
import { registerBackend } from '../select.js';
import { createNativeBackend } from './index.js';

registerBackend('native', (opts) => createNativeBackend(opts));
