/**
 * Colours and names for the ten classes. The palette is matplotlib's "tab10", so figures look
 * like the ones in the blog study this toolkit reproduces.
 */
import { FASHION_MNIST_INFO, MNIST_INFO, className, datasetInfo } from '../lab/data/image.js';

/** matplotlib tab10, index = digit. */
export const TAB10: readonly string[] = [
  '#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd',
  '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf',
];

/** The same palette as [r, g, b] bytes (for tests and pixel work). */
export const TAB10_RGB: readonly (readonly [number, number, number])[] = TAB10.map(hexToRgb);

/** The colour of a label (labels beyond 9 wrap around). */
export function labelColor(label: number): string {
  const i = ((Math.floor(label) % TAB10.length) + TAB10.length) % TAB10.length;
  return TAB10[i];
}

/** The colour of a label as [r, g, b] bytes. */
export function labelRgb(label: number): readonly [number, number, number] {
  return hexToRgb(labelColor(label));
}

/** '#rrggbb' → [r, g, b]. */
export function hexToRgb(hex: string): [number, number, number] {
  const h = hex.replace('#', '');
  return [parseInt(h.slice(0, 2), 16), parseInt(h.slice(2, 4), 16), parseInt(h.slice(4, 6), 16)];
}

/** A function naming a label in legends and row labels. */
export type LabelNamer = (label: number) => string;

/** MNIST: the digit itself. */
export const digitName: LabelNamer = (label) => className(MNIST_INFO, label);

/** Fashion-MNIST's class names (declared with the data set, in lab/data/image.ts). */
export const FASHION_MNIST_NAMES: readonly string[] = FASHION_MNIST_INFO.classes;

/** Fashion-MNIST class names (falls back to the number outside 0-9). */
export const fashionName: LabelNamer = (label) => className(FASHION_MNIST_INFO, label);

/** The namer for a data set name: its class names (anything unknown → MNIST's digits). */
export function labelNamer(dataset?: string): LabelNamer {
  const info = datasetInfo(dataset);
  return (label) => className(info, label);
}
