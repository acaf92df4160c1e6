/** The list of CLI commands; each module registers itself on the program. */
import type { Command } from 'commander';
import { register as registerData } from './data.js';
import { register as registerTrain } from './train.js';
import { register as registerEval } from './eval.js';
import { register as registerSummary } from './summary.js';
import { register as registerEncode } from './encode.js';
import { register as registerPlot } from './plot.js';
import { register as registerSample } from './sample.js';
import { register as registerGenerate } from './generate.js';
import { register as registerRecon } from './recon.js';
import { register as registerGif } from './gif.js';
import { register as registerStudy } from './study.js';
import { register as registerServe } from './serve.js';
import { register as registerDenoise } from './denoise.js';

export type Register = (program: Command) => void;

export const COMMANDS: Register[] = [registerTrain, registerEval, registerSummary, registerData, registerEncode, registerPlot, registerSample, registerGenerate, registerRecon, registerDenoise, registerGif, registerServe, registerStudy];
