/** The list of CLI commands; each module registers itself on the program. */
import type { Command } from 'commander';
import { register as registerData } from './data.js';

export type Register = (program: Command) => void;

export const COMMANDS: Register[] = [registerData];
