/** Generate a chosen digit (supervised runs with a 2-D latent map). */
import { labelColor } from '../../../viz/palette.js';
import { $, el, gauss, paintDigit } from '../dom.js';
import { model } from '../model-client.js';
import { emit, latentDim, on, state } from '../store.js';

function renderGenerate(): void {
  const panel = $('gen-panel');
  const map = state.run?.config?.supervised as Record<string, [number, number]> | undefined;
  const box = $('gen-buttons');
  box.replaceChildren();
  if (!map || latentDim() !== 2) { panel.hidden = true; return; }
  panel.hidden = false;
  for (let d = 0; d < 10; d++) {
    const t = map[String(d)];
    if (!t) continue;
    const b = el('button', { type: 'button', text: String(d), 'aria-label': `generate digit ${d}`, title: `decode (${t[0]}, ${t[1]}) plus a little noise` });
    b.style.borderColor = labelColor(d);
    b.addEventListener('click', async () => {
      if (!state.modelReady) return;
      const token = state.token;
      const x = t[0] + 0.3 * gauss(), y = t[1] + 0.3 * gauss();
      const { images } = await model.decode(Float32Array.of(x, y), 1);
      if (token !== state.token) return;
      state.gen = { x, y, digit: d };
      const decoded = $<HTMLCanvasElement>('decoded');
      paintDigit(decoded, images);
      decoded.dataset.run = state.runName;
      $('decoded-z').textContent = `digit ${d}: z = [${x.toFixed(2)}, ${y.toFixed(2)}] (target (${t[0]}, ${t[1]}) + noise)`;
      emit('overlay');
    });
    box.append(b);
  }
}

export function mountGenerate(): void {
  on('run', renderGenerate);
  on('latents', renderGenerate);
  on('model', renderGenerate);
  on('reset', renderGenerate);
}
