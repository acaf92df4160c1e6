/** Saving what a panel shows as a PNG file (the browser's download of a canvas). */

/** A file name from the run's name and what is saved: "plain-grid.png". */
export function pngName(run: string, what: string): string {
  return `${(run || 'latentlab').replace(/[^A-Za-z0-9._-]/g, '_')}-${what}.png`;
}

/** Downloads a canvas as a PNG named `name`. */
export async function downloadPng(canvas: HTMLCanvasElement, name: string): Promise<void> {
  const blob = await new Promise<Blob | null>((resolve) => canvas.toBlob(resolve, 'image/png'));
  if (!blob) throw new Error(`${name}: the canvas could not be encoded as PNG`);
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** The canvases stacked into one (same backing size, drawn in order): the plane with its overlay. */
export function composite(...layers: HTMLCanvasElement[]): HTMLCanvasElement {
  const out = document.createElement('canvas');
  out.width = layers[0].width;
  out.height = layers[0].height;
  const ctx = out.getContext('2d')!;
  ctx.fillStyle = '#ffffff';
  ctx.fillRect(0, 0, out.width, out.height);
  for (const c of layers) ctx.drawImage(c, 0, 0);
  return out;
}

/** A copy of a canvas scaled up k times with its pixels kept sharp (pictures drawn at the images' own size). */
export function upscale(canvas: HTMLCanvasElement, k: number): HTMLCanvasElement {
  const out = document.createElement('canvas');
  out.width = canvas.width * k;
  out.height = canvas.height * k;
  const ctx = out.getContext('2d')!;
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(canvas, 0, 0, out.width, out.height);
  return out;
}

/** How much a picture drawn at the images' own size (grid, strip) is scaled up when exported. */
export const EXPORT_SCALE = 4;
