/**
 * The planner: how a chain of layers (a Sequential) runs on a backend, so that the layers themselves stay
 * forward, backward and parameters. It decides two things per forward pass:
 *
 * - fusion: a layer that can apply an activation to its output (BatchNorm2d: `takesAct`) directly followed
 *   by an activation whose derivative is known from its output (`fusableAct`) runs as one kernel; the
 *   activation layer's own forward and backward are skipped. The result is the same.
 * - layouts: on a backend with a channel-blocked layout (`Backend.channelBlock`, native), activations may
 *   stay blocked between layers. A layer with `outChannels` (a multiple of the block) gives a blocked
 *   output when every layer that will see it takes it: layers that keep the layout (`blockedInput:
 *   'keep'`), then one that reads either layout ('any') or ends the chain with a conversion ('convert'),
 *   or the end of the chain. The planner's reorder steps do every conversion, before a 'convert' layer,
 *   after a layer whose blocked output is a conversion (`blockedOutput: 'convert'`), and at the end; a
 *   layer that writes blocked output itself (`blockedOutput: 'native'`) is asked to by `ForwardOptions`.
 *
 * - bias folding: a layer that adds a per-channel bias (`foldableBias`: ConvTranspose2d) directly followed
 *   by a batch-norm in training mode (`takesInputBias`) leaves the bias out (`skipBias`) and the batch-norm
 *   accounts for it (`inputBias`: its running mean includes it). The batch's mean absorbs any per-channel
 *   constant, so the output is the same and the bias's gradient is exactly zero: one pass less over the
 *   activation forward (the bias add) and backward (the bias gradient's sum).
 * - in place: a layer that can write its output over its input (`inPlaceForward`: a batch-norm in training,
 *   which then recovers x from y in its backward; an activation whose derivative is known from its output)
 *   directly after a layer whose output nothing else reads (`scratchOutput`: a convolution, a Linear), or after
 *   views of it (`view`: Flatten, Unflatten), is told so (`ForwardOptions.inPlace`). One activation-sized buffer
 *   less to stream through: native batch-norm forward 0.53-0.67 ms a step instead of 0.95-1.17 (4 alternating
 *   rounds); the LeakyReLU after the decoder's Linear and Unflatten 0.10 -> 0.014 ms (native), the training
 *   step 0.19 ms shorter on native and 0.40 on wasm (paired medians, 150 and 40 alternating rounds).
 *
 * - features: a Flatten between a blocked activation and a Linear (`viewsBlocked`, `featureLayout`) passes it on
 *   as blocked features, and an Unflatten right after a Linear views the blocked features the Linear writes
 *   as a blocked activation (`ForwardOptions.inFeatures` / `outFeatures`): the Linear permutes its weights
 *   instead of the chain reordering the activation, forward and backward (kernels/index.ts blockedFeatureOrder).
 *
 * - a batch-norm read by the convolution after it: a batch-norm in training (`preNorm`), with its fused activation,
 *   directly followed by a ConvTranspose2d (`normShape`) that the backend fuses it into (Backend.fusesNormConvTranspose:
 *   native, the model's last layer, into one channel) computes its statistics only (`ForwardOptions.statsOnly`) and
 *   passes its input on; the convolution applies the normalisation and activation as it reads it
 *   (`ForwardOptions.preNorm`), and its backward computes the batch-norm's too (the batch-norm's step is marked
 *   `backwardInNext` and skipped backward). The batch-norm's output and the convolution's input gradient are never
 *   stored: the kernels compute them again where they need them.
 *
 * - a batch-norm applied by the convolution before it: a batch-norm in training with its fused activation, directly
 *   after a convolution (`outNormShape`) that the backend fuses it into (Backend.fusesConvNorm: native, a convolution
 *   from one channel, the model's first), whose output it could write over (`postNorm`: its backward then recovers x
 *   from y): the convolution computes the batch's statistics from its input and writes the batch-norm's output
 *   (`ForwardOptions.postNorm`), which the batch-norm takes as it is (`ForwardOptions.normApplied`). The convolution's
 *   output is never stored: one pass over the activation instead of three. When the convolution's input needs no
 *   gradient (`needsInputGrad` false: the model's first layer) and the backend fuses the backward too
 *   (Backend.fusesConvNormBackward), the convolution's backward computes the batch-norm's
 *   (`ForwardOptions.postNormBackward`; the batch-norm's step is marked `backwardInPrev` and skipped backward): the
 *   batch-norm's input gradient is never stored; else the batch-norm's backward is its own.
 *
 * The chain's input and output are NCHW. A container runs the steps in order (a reorder step with
 * `reorderTo`), and backward in reverse, where a reorder step converts the gradient back (`from`) and
 * element-wise layers may write their input gradient over the gradient they are handed unless it is the
 * caller's (`BackwardOptions.inPlace`).
 */
import { NO_ACT, type Act, type Backend, type ConvShape, type Layout, type NormArgs, type PostNormArgs } from './index.js';
import { Tensor } from '../tensor.js';

/** What a layer's forward may be asked, besides its input (all optional; a layer used on its own gets none). */
export interface ForwardOptions {
  /** Layout of the output (layers with `blockedOutput: 'native'`); default 'nchw'. */
  layout?: Layout;
  /** An activation to apply to the output (layers with `takesAct`); default none. */
  act?: Act;
  /** Leave the per-channel bias out of the output (layers with `foldableBias`): the next layer accounts for it. */
  skipBias?: boolean;
  /** A per-channel bias the previous layer left out (layers with `takesInputBias`): the result is as if it were in the input. */
  inputBias?: Float32Array;
  /**
   * The input is a buffer of the previous layer's that nothing reads again (layers with `inPlaceForward`): the
   * layer may write its output over it.
   */
  inPlace?: boolean;
  /**
   * The input's features are a blocked activation of this many channels, flattened (layers with
   * `featureLayout`: a Linear after a Flatten; see blockedFeatureOrder); its input gradient is given so too.
   */
  inFeatures?: number;
  /** Write the output's features as a blocked activation of this many channels (a Linear before an Unflatten). */
  outFeatures?: number;
  /**
   * Compute the batch statistics only and return the input as it is (layers with `preNorm`): the next layer
   * normalises it as it reads it (its `ForwardOptions.preNorm`) and computes this layer's backward.
   */
  statsOnly?: boolean;
  /** The input is to be read through this batch-norm (layers with `normShape`), whose backward this layer computes. */
  preNorm?: PreNorm;
  /** Apply the batch-norm after this layer (and its activation) to the output (layers with `outNormShape`). */
  postNorm?: PostNorm;
  /**
   * The layer before applied this batch-norm (its ForwardOptions.postNorm): the input is the output, written over
   * by it, with the statistics in place (layers with `postNorm`).
   */
  normApplied?: boolean;
  /** This layer's backward computes its postNorm batch-norm's too (see Backend.convNormBackward). */
  postNormBackward?: boolean;
}

/** A batch-norm in training that the layer before it applies (see ForwardOptions.postNorm / normApplied). */
export interface PostNorm {
  /** The parameters and the activation, and where the batch's statistics go. */
  args(): PostNormArgs;
  /** Calls write(dgamma, dbeta) with where the gradients go (overwritten), then takes them in. */
  writeGrads(write: (dgamma: Float32Array, dbeta: Float32Array) => void): void;
}

/** A batch-norm in training that the layer after it applies (see ForwardOptions.statsOnly / preNorm). */
export interface PreNorm {
  /** The parameters, the last forward's statistics and the activation. */
  args(): NormArgs;
  /** Calls write(dgamma, dbeta) with where the gradients go (overwritten), then takes them in. */
  writeGrads(write: (dgamma: Float32Array, dbeta: Float32Array) => void): void;
}

/** What a layer's backward may be told, besides dy. */
export interface BackwardOptions {
  /**
   * dy is a temporary of the chain (not the caller's), so an element-wise backward may write its input
   * gradient over it instead of into a buffer of its own (less memory, fewer cache misses).
   */
  inPlace?: boolean;
}

/** What the planner reads from a layer (Module declares these; each layer sets the ones that apply). */
export interface Plannable {
  readonly typeName: string;
  forward(x: Tensor, opts?: ForwardOptions): Tensor;
  backward(dy: Tensor, opts?: BackwardOptions): Tensor;
  /**
   * How the layer takes a blocked input: 'keep' (computes in it; output and input gradient in the same
   * layout: batch-norm, activations), 'any' (reads either layout: convolutions), 'convert' (NCHW only, but a
   * blocked chain may end here with a reorder: Flatten). Undefined: NCHW only, and no blocked chain reaches it.
   */
  readonly blockedInput?: 'keep' | 'any' | 'convert';
  /** How the layer gives a blocked output: 'native' (its forward writes ForwardOptions.layout) or 'convert'. */
  readonly blockedOutput?: 'native' | 'convert';
  /** Channels of an [N, C, H, W] output (with blockedOutput; 0: the output is not such an activation). */
  readonly outChannels?: number;
  /** Whether forward applies ForwardOptions.act to its output (and backward differentiates it). */
  readonly takesAct?: boolean;
  /** The activation this layer applies, when a preceding `takesAct` layer may compute it instead. */
  readonly fusableAct?: Act | null;
  /** Whether backward takes BackwardOptions (element-wise layers that may write dx over dy). */
  readonly inPlaceGrad?: boolean;
  /** The per-channel bias this layer adds last and can leave to the next layer (ForwardOptions.skipBias). */
  readonly foldableBias?: Float32Array | null;
  /** Whether forward takes ForwardOptions.inputBias (a batch-norm: only its running mean depends on it in training). */
  readonly takesInputBias?: boolean;
  /** Training mode (Module.training): the bias is folded only into a batch-norm that uses the batch's statistics. */
  readonly training?: boolean;
  /** Whether the output is a buffer of the layer's own that its backward does not read (convolutions, Linear). */
  readonly scratchOutput?: boolean;
  /**
   * Whether forward takes ForwardOptions.inPlace and then writes its output over its input: a batch-norm (which
   * recovers x from y in its backward), an activation whose derivative is known from its output.
   */
  readonly inPlaceForward?: boolean;
  /** Whether the output is the input's memory, viewed in another shape (Flatten, Unflatten). */
  readonly view?: boolean;
  /** Whether forward takes ForwardOptions.inFeatures / outFeatures (a Linear: it permutes its weights instead). */
  readonly featureLayout?: boolean;
  /**
   * A view between an activation and its features (Flatten, Unflatten) that passes a blocked activation on as
   * blocked features to a `featureLayout` layer after it, or from one before it (ForwardOptions.layout 'blocked').
   */
  readonly viewsBlocked?: boolean;
  /** A batch-norm in training that the next layer may apply to its input (ForwardOptions.statsOnly), else null. */
  readonly preNorm?: PreNorm | null;
  /** The shape of the convolution this layer is when it can read its input through a batch-norm (ForwardOptions.preNorm), else null. */
  readonly normShape?: ConvShape | null;
  /** The shape of the convolution this layer is, for a batch-norm after it to be applied by it (ForwardOptions.postNorm). */
  readonly outNormShape?: ConvShape | null;
  /**
   * A batch-norm in training that the layer before it may apply, with this activation, writing the output and the
   * statistics where the batch-norm's backward finds them (ForwardOptions.normApplied), else null.
   */
  postNorm?(act: Act): PostNorm | null;
  /** False when the layer's input needs no gradient (a first convolution): its backward computes none. */
  readonly needsInputGrad?: boolean;
}

/** One step of a plan: a reorder of the activation, or a layer (with what its forward is asked). */
export type Step =
  | { kind: 'reorder'; to: Layout; from: Layout }
  | { kind: 'layer'; index: number; layer: Plannable; opts: ForwardOptions | undefined; fused: number; backwardInNext?: boolean;
      backwardInPrev?: boolean };

export interface Plan {
  steps: Step[];
  /** The layout of each layer's output as the layers after it see it (a fused activation's is its layer's). */
  layouts: Layout[];
}

/** The plan of one forward pass of `layers` on `backend`. */
export function planChain(layers: readonly Plannable[], backend: Backend, opts: { fuse: boolean; blocked: boolean }): Plan {
  const block = opts.blocked ? backend.channelBlock ?? 0 : 0;
  const L = layers;
  const outLayout = L.map((m, i): Layout => {
    if (!m.blockedOutput || !block) return 'nchw';
    const ch = m.outChannels ?? 0;
    let ok = ch > 0 && ch % block === 0, j = i + 1;
    while (ok && j < L.length && L[j].blockedInput === 'keep') j++;
    ok &&= j === L.length || L[j].blockedInput === 'any' || L[j].blockedInput === 'convert';
    return ok ? 'blocked' : 'nchw';
  });
  const steps: Step[] = [];
  const layouts: Layout[] = [];
  let cur: Layout = 'nchw';
  let channels = 0;  // of the blocked activation, while cur is 'blocked'
  let features = 0;  // the previous layer (a Flatten) passed on a blocked activation of this many channels as features
  let folded: Float32Array | null = null;  // the bias the previous layer left to this one
  const reorder = (to: Layout): void => {
    if (cur !== to) steps.push({ kind: 'reorder', from: cur, to });
    cur = to;
  };
  for (let i = 0; i < L.length; i++) {
    const m = L[i], next = L[i + 1];
    const o: ForwardOptions = {};
    // a Flatten between a blocked activation and a Linear views it as blocked features: no reorder, the Linear
    // reads them through permuted weights
    const flattenView = cur === 'blocked' && m.viewsBlocked === true && next?.featureLayout === true;
    if (features) { o.inFeatures = features; features = 0; }
    else if (flattenView) { o.layout = 'blocked'; features = channels; }
    else if (cur === 'blocked' && m.blockedInput !== 'keep' && m.blockedInput !== 'any') reorder('nchw');
    const fuse = opts.fuse && m.takesAct === true && next !== undefined && next.fusableAct != null;
    if (m.blockedOutput === 'native' && outLayout[i] === 'blocked') o.layout = 'blocked';
    // an Unflatten right after a Linear whose output nothing else reads: the Linear writes blocked features
    // (permuted weights), which the Unflatten views as the blocked activation the layers after it take
    const prevStep = steps[steps.length - 1];
    const unflattenView = m.viewsBlocked === true && m.blockedOutput === 'convert' && outLayout[i] === 'blocked'
      && prevStep?.kind === 'layer' && prevStep.index === i - 1 && prevStep.layer.featureLayout === true && prevStep.opts !== undefined;
    if (unflattenView) { prevStep.opts!.outFeatures = m.outChannels; o.layout = 'blocked'; layouts[i - 1] = 'blocked'; }
    if (fuse) o.act = next.fusableAct!;
    if (folded) o.inputBias = folded;
    folded = null;
    const prev = steps[steps.length - 1];
    // the previous layer (with its fused activation), a batch-norm in training on a blocked activation, applied by this one
    const shape = m.normShape;
    const pn = opts.fuse && shape && prev?.kind === 'layer' && prev.index + prev.fused === i - 1 && cur === 'blocked'
      && prev.opts !== undefined && prev.opts.normApplied !== true ? prev.layer.preNorm : null;
    if (pn && prev?.kind === 'layer' && backend.fusesNormConvTranspose?.(shape!, prev.opts!.act ?? NO_ACT) === true) {
      prev.opts!.statsOnly = true;
      delete prev.opts!.inPlace;
      prev.backwardInNext = true;
      o.preNorm = pn;
    }
    // a batch-norm in training (with its fused activation) applied by the convolution before it
    const outShape = prev?.kind === 'layer' && prev.index === i - 1 && prev.fused === 0 && prev.opts !== undefined
      ? prev.layer.outNormShape : null;
    const post = opts.fuse && outShape && m.postNorm && backend.fusesConvNorm?.(outShape, o.act ?? NO_ACT) === true
      ? m.postNorm(o.act ?? NO_ACT) : null;
    let backwardInPrev = false;
    if (post && prev?.kind === 'layer') {
      prev.opts!.postNorm = post;
      o.normApplied = true;
      if (prev.layer.needsInputGrad === false && backend.fusesConvNormBackward?.(outShape!, o.act ?? NO_ACT) === true) {
        prev.opts!.postNormBackward = true;
        backwardInPrev = true;
      }
    } else if (opts.fuse && m.inPlaceForward === true && producer(steps, i)?.layer.scratchOutput === true) o.inPlace = true;
    if (opts.fuse && m.foldableBias && next?.takesInputBias === true && next.training === true) {
      o.skipBias = true;
      folded = m.foldableBias;
    }
    // options only for a layer that declared them (a custom module's forward may take something else)
    const asked = m.blockedOutput === 'native' || m.takesAct === true || o.skipBias === true || o.inputBias !== undefined
      || o.inPlace === true || m.featureLayout === true || o.layout !== undefined || o.preNorm !== undefined || o.normApplied === true;
    steps.push({ kind: 'layer', index: i, layer: m, opts: asked ? o : undefined, fused: fuse ? 1 : 0, ...(backwardInPrev ? { backwardInPrev } : {}) });
    // the layout after the layer: what it was asked for, else what it keeps
    if (m.blockedOutput) cur = o.layout ?? 'nchw';
    else if (m.blockedInput !== 'keep') cur = 'nchw';
    if (m.blockedOutput === 'convert' && outLayout[i] === 'blocked') reorder('blocked');
    if (cur === 'blocked' && m.outChannels) channels = m.outChannels;
    layouts[i] = flattenView ? 'blocked' : cur;
    if (fuse) layouts[++i] = cur;
  }
  reorder('nchw');
  return { steps, layouts };
}

/**
 * The layer step whose output buffer layer i reads, through views (Flatten, Unflatten) between them; null when it
 * comes from elsewhere (a reorder, a fused pair, the chain's input).
 */
function producer(steps: readonly Step[], i: number): Extract<Step, { kind: 'layer' }> | null {
  let want = i - 1;
  for (let k = steps.length - 1; k >= 0; k--, want--) {
    const s = steps[k];
    if (s.kind !== 'layer' || s.index !== want || s.fused !== 0) return null;
    if (s.layer.view !== true) return s;
  }
  return null;
}

/** t in layout `to` (an activation [N, C, ...]): t itself, or a copy in `out` through the backend's reorder. */
export function reorderTo(backend: Backend, t: Tensor, to: Layout, out: Float32Array): Tensor {
  if (t.layout === to) return t;
  if (!backend.channelBlock || !backend.reorderLayout) throw new Error(`the ${backend.name} backend has no blocked layout`);
  const [N, C] = t.shape;
  backend.reorderLayout(N, C, t.size / (N * C), t.data, out, to);
  return new Tensor(t.shape, out, to);
}

/** Whether two arrays share any memory (the backward pass never overwrites the caller's dy). */
export function overlaps(a: Float32Array, b: Float32Array): boolean {
  return a.buffer === b.buffer && a.byteOffset < b.byteOffset + b.byteLength && b.byteOffset < a.byteOffset + a.byteLength;
}

