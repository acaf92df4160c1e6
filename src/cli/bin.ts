#!/usr/bin/env node
/**
 * The installed `latentlab` command (package.json "bin"). npm links it as node_modules/.bin/latentlab,
 * a symlink whose name is not main.js, so main.ts's own "am I the script being run" check does not
 * fire there; this file runs the CLI unconditionally.
 */
import { main } from './main.js';

main(process.argv).then((code) => { process.exitCode = code; });
