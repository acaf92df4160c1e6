/** Messages between the page and the analysis worker (analysis-worker.ts): latent math too slow for the page's thread. */

export type AnalysisRequest =
  /** UMAP of n × dim latents to the plane (projection.ts umap2d). */
  | { type: 'umap'; z: Float32Array; n: number; dim: number; seed: number }
  /** k-NN accuracy of test latents against train latents (eval.ts knn, k = 5). */
  | { type: 'knn'; z: Float32Array; labels: Uint8Array; refZ: Float32Array; refLabels: Uint8Array; dim: number; k: number };

export type AnalysisMessage =
  | { type: 'progress'; done: number; total: number; phase: string }
  | { type: 'umap'; embedding: Float32Array; ms: number }
  | { type: 'knn'; accuracy: number; n: number; references: number; ms: number }
  | { type: 'error'; error: string };
