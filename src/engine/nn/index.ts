/** Layers, after torch.nn. */
export { Module, Parameter, getDefaultBackend, setDefaultBackend, type BufferEntry, type LoadResult } from './module.js';
export { Conv2d, type ConvOptions } from './conv.js';
export { ConvTranspose2d, type ConvTransposeOptions } from './conv_transpose.js';
export { BatchNorm2d, type BatchNormOptions } from './batchnorm.js';
export { Linear } from './linear.js';
export { Activation, LeakyReLU, ReLU, Tanh, Sigmoid } from './activation.js';
export { Flatten, Unflatten } from './shape.js';
export { Sequential } from './sequential.js';
export { manualSeed, kaimingUniform, biasUniform, fanIn } from './init.js';
