/** Parsers for flag values: each throws one line naming the flag and what was expected. */
import { InvalidArgumentError } from 'commander';

export const num = (flag: string) => (v: string): number => {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError(`${flag}: expected a number, got '${v}'`);
  return n;
};

export const int = (flag: string) => (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n)) throw new InvalidArgumentError(`${flag}: expected an integer, got '${v}'`);
  return n;
};

export const oneOf = <T extends string>(flag: string, values: readonly T[]) => (v: string): T => {
  if (!values.includes(v as T)) throw new InvalidArgumentError(`${flag}: expected one of ${values.join(', ')}, got '${v}'`);
  return v as T;
};

export const numList = (flag: string, count?: number) => (v: string): number[] => {
  const parts = v.split(',').map((s) => s.trim());
  const nums = parts.map(Number);
  if (parts.some((p) => p === '') || nums.some((n) => !Number.isFinite(n)) || (count !== undefined && nums.length !== count))
    throw new InvalidArgumentError(`${flag}: expected ${count ?? 'a list of'} comma-separated numbers, got '${v}'`);
  return nums;
};
