/** The pictures layer (browser-safe: no Node modules). Node rendering lives in ./node.js. */
export * from './ctx.js';
export * from './palette.js';
export * from './axes.js';
export * from './scatter.js';
export * from './grid.js';
export * from './curves.js';
export * from './figures.js';
export * from './gif.js';
