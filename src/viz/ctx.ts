/**
 * The drawing surface: the subset of the standard Canvas 2D API the figures use, so a browser
 * `CanvasRenderingContext2D` (or an OffscreenCanvas one) works as well as @napi-rs/canvas in Node.
 */
export type Ctx2D = Pick<
  CanvasRenderingContext2D,
  | 'fillStyle' | 'strokeStyle' | 'lineWidth' | 'lineCap' | 'lineJoin' | 'globalAlpha'
  | 'font' | 'textAlign' | 'textBaseline'
  | 'save' | 'restore' | 'translate' | 'rotate'
  | 'beginPath' | 'closePath' | 'moveTo' | 'lineTo' | 'arc' | 'rect' | 'fill' | 'stroke' | 'clip'
  | 'fillRect' | 'strokeRect' | 'fillText' | 'measureText' | 'setLineDash'
  | 'createImageData' | 'putImageData'
> & {
  /** Present on every modern context; used to decide whether putImageData is safe (identity transform). */
  getTransform?: () => { a: number; b: number; c: number; d: number; e: number; f: number };
};

/** A rectangle in canvas pixels. */
export interface Rect { x: number; y: number; width: number; height: number }

export const FONT_FAMILY = 'sans-serif';
export const FONT_SIZE = 14;

/** A CSS font string, e.g. font(14, true) = 'bold 14px sans-serif'. */
export function font(size = FONT_SIZE, bold = false): string {
  return `${bold ? 'bold ' : ''}${size}px ${FONT_FAMILY}`;
}

/** Fill a rectangle with white (the figure background). */
export function clearRect(ctx: Ctx2D, r: Rect, color = '#ffffff'): void {
  ctx.save();
  ctx.fillStyle = color;
  ctx.fillRect(r.x, r.y, r.width, r.height);
  ctx.restore();
}

/** Write text (single line) with the given alignment. */
export function text(
  ctx: Ctx2D, s: string, x: number, y: number,
  opts: { size?: number; bold?: boolean; align?: CanvasTextAlign; baseline?: CanvasTextBaseline; color?: string; rotate?: number } = {},
): void {
  ctx.save();
  ctx.font = font(opts.size ?? FONT_SIZE, opts.bold ?? false);
  ctx.fillStyle = opts.color ?? '#000000';
  ctx.textAlign = opts.align ?? 'left';
  ctx.textBaseline = opts.baseline ?? 'alphabetic';
  if (opts.rotate) {
    ctx.translate(x, y);
    ctx.rotate(opts.rotate);
    ctx.fillText(s, 0, 0);
  } else {
    ctx.fillText(s, x, y);
  }
  ctx.restore();
}

/** Inset a rectangle. */
export function inset(r: Rect, top: number, right: number, bottom: number, left: number): Rect {
  return { x: r.x + left, y: r.y + top, width: Math.max(1, r.width - left - right), height: Math.max(1, r.height - top - bottom) };
}
