/**
 * A VAE's plane is its prior N(0, I): rings at 1 and 2 standard deviations around the origin, drawn on
 * the plane's overlay, and the caption saying what the dots and the decodes are. On a PCA plane (D > 2)
 * the prior projects onto the two orthonormal components as N(0, I) in two dimensions around the
 * origin's projection, so the same rings hold there.
 */
import type { Transform } from '../../../viz/axes.js';
import { isVaeRun, latentDim, state, toPlane } from '../store.js';

/** Draws the prior's 1- and 2-sigma rings (nothing for a plain autoencoder). */
export function drawPrior(ctx: CanvasRenderingContext2D, T: Transform): void {
  delete ctx.canvas.dataset.prior;
  if (!isVaeRun() || !state.latents) return;
  const c = toPlane(new Float32Array(latentDim()));
  const cx = T.toPx(c.x), cy = T.toPy(c.y);
  // where the rings are, in CSS pixels of the canvas: centre, then the 1-sigma radii along x and y
  ctx.canvas.dataset.prior = [cx, cy, Math.abs(T.toPx(c.x + 1) - cx), Math.abs(T.toPy(c.y + 1) - cy)].map((v) => v.toFixed(1)).join(',');
  ctx.save();
  ctx.strokeStyle = 'rgba(60,60,60,0.75)';
  ctx.fillStyle = 'rgba(60,60,60,0.9)';
  ctx.font = '12px sans-serif';
  for (const k of [1, 2]) {
    const rx = Math.abs(T.toPx(c.x + k) - cx), ry = Math.abs(T.toPy(c.y + k) - cy);
    ctx.setLineDash(k === 1 ? [] : [6, 4]);
    ctx.lineWidth = 1.5;
    ctx.beginPath(); ctx.ellipse(cx, cy, rx, ry, 0, 0, Math.PI * 2); ctx.stroke();
    ctx.fillText(`${k}σ`, cx + rx * Math.SQRT1_2 + 3, cy - ry * Math.SQRT1_2 - 3);
  }
  ctx.restore();
}

/** The plane's caption for a VAE run; null for a plain autoencoder. */
export function priorCaption(): string | null {
  if (!isVaeRun() || !state.latents) return null;
  const D = latentDim();
  const plane = D > 2 ? 'the PCA plane of its latent space' : 'its latent space';
  return `VAE, ${D}-D latent: the plane is ${plane} under the prior N(0, I) (rings at 1σ and 2σ); each dot is the encoder's mean for a test image (${state.latents.source}); hovering decodes the decoder's output (its mean) at that z.`;
}
