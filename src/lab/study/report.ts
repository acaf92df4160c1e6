/**
 * A small document model for reports, rendered as Markdown (pictures as relative links) and as
 * ONE self-contained HTML file (pictures inlined as data: URIs, no external resources). Inline
 * text may use **bold**, `code` and [links](relative/path).
 */

export type Block =
  | { kind: 'h'; level: 1 | 2 | 3; text: string }
  | { kind: 'p'; text: string }
  | { kind: 'list'; items: string[] }
  | { kind: 'table'; head: string[]; rows: string[][]; align?: ('l' | 'r')[] }
  /** Pictures side by side (one or more), each with a caption. */
  | { kind: 'figures'; items: { src: string; alt: string; caption?: string }[] }
  | { kind: 'note'; text: string };

export interface ReportDoc { title: string; blocks: Block[] }

// ---------------------------------------------------------------------------------------------
// Markdown

const mdCell = (s: string): string => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

export function toMarkdown(doc: ReportDoc): string {
  const out: string[] = [`# ${doc.title}`, ''];
  for (const b of doc.blocks) {
    switch (b.kind) {
      case 'h': out.push(`${'#'.repeat(b.level + 1)} ${b.text}`, ''); break;
      case 'p': out.push(b.text, ''); break;
      case 'note': out.push(`> ${b.text}`, ''); break;
      case 'list': out.push(...b.items.map((i) => `- ${i}`), ''); break;
      case 'table': {
        out.push(`| ${b.head.map(mdCell).join(' | ')} |`);
        out.push(`|${b.head.map((_, i) => (b.align?.[i] === 'r' ? ' ---: ' : ' --- ')).join('|')}|`);
        for (const r of b.rows) out.push(`| ${r.map(mdCell).join(' | ')} |`);
        out.push('');
        break;
      }
      case 'figures': {
        if (b.items.length === 1) {
          const f = b.items[0];
          out.push(`![${f.alt}](${encodePath(f.src)})`);
          if (f.caption) out.push('', `*${f.caption}*`);
        } else {
          // a one-row table puts the pictures side by side on GitHub and most viewers
          out.push(`| ${b.items.map((f) => mdCell(f.caption ?? f.alt)).join(' | ')} |`);
          out.push(`|${b.items.map(() => ' --- ').join('|')}|`);
          out.push(`| ${b.items.map((f) => `![${f.alt}](${encodePath(f.src)})`).join(' | ')} |`);
        }
        out.push('');
        break;
      }
    }
  }
  return out.join('\n');
}

function encodePath(p: string): string {
  return p.split('/').map(encodeURIComponent).join('/');
}

// ---------------------------------------------------------------------------------------------
// HTML

export function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** Inline markup -> HTML: `code`, **bold**, [text](href) (hrefs kept relative; no http links made). */
export function inlineHtml(s: string): string {
  const parts: string[] = [];
  const re = /`([^`]+)`|\*\*([^*]+)\*\*|\[([^\]]+)\]\(([^)\s]+)\)/g;
  let last = 0, m: RegExpExecArray | null;
  while ((m = re.exec(s))) {
    parts.push(escapeHtml(s.slice(last, m.index)));
    if (m[1] !== undefined) parts.push(`<code>${escapeHtml(m[1])}</code>`);
    else if (m[2] !== undefined) parts.push(`<strong>${inlineHtml(m[2])}</strong>`);
    else parts.push(`<a href="${escapeHtml(encodePath(m[4]))}">${inlineHtml(m[3])}</a>`);
    last = m.index + m[0].length;
  }
  parts.push(escapeHtml(s.slice(last)));
  return parts.join('');
}

const MIME: Record<string, string> = { png: 'image/png', gif: 'image/gif', jpg: 'image/jpeg', jpeg: 'image/jpeg', svg: 'image/svg+xml' };

/** A data: URI of image bytes, by file extension. */
export function dataUri(file: string, bytes: Uint8Array): string {
  const ext = file.split('.').pop()!.toLowerCase();
  const mime = MIME[ext];
  if (!mime) throw new Error(`${file}: not an image type the report can inline (png, gif, jpg, svg)`);
  let b64: string;
  const B = (globalThis as { Buffer?: { from(b: Uint8Array): { toString(enc: string): string } } }).Buffer;
  if (B) b64 = B.from(bytes).toString('base64');
  else {
    let bin = '';
    for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    b64 = btoa(bin);
  }
  return `data:${mime};base64,${b64}`;
}

const CSS = `
body { font-family: -apple-system, "Segoe UI", Roboto, "Noto Sans KR", sans-serif; max-width: 1280px; margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.5; }
h1 { border-bottom: 2px solid #ddd; padding-bottom: .3em; } h2 { border-bottom: 1px solid #eee; padding-bottom: .2em; margin-top: 2em; }
table { border-collapse: collapse; margin: 1em 0; font-size: 14px; } th, td { border: 1px solid #ccc; padding: 4px 8px; } th { background: #f4f4f4; }
td.r { text-align: right; font-variant-numeric: tabular-nums; }
code { background: #f3f3f3; padding: 0 3px; border-radius: 3px; }
.figs { display: flex; flex-wrap: wrap; gap: 12px; align-items: flex-start; margin: 1em 0; }
.figs figure { margin: 0; flex: 1 1 0; min-width: 280px; } .figs img { width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 13px; color: #555; text-align: center; }
blockquote { border-left: 4px solid #e0a800; background: #fff8e1; margin: 1em 0; padding: .5em 1em; }
`;

/**
 * The HTML page. `readImage(src)` returns the bytes of a picture the document names (relative
 * path); every picture is inlined, so the page has no external resource at all.
 */
export function toHtml(doc: ReportDoc, readImage: (src: string) => Uint8Array): string {
  const out: string[] = [
    '<!DOCTYPE html>', '<html lang="en">', '<head>', '<meta charset="utf-8">',
    `<title>${escapeHtml(doc.title)}</title>`, `<style>${CSS}</style>`, '</head>', '<body>', `<h1>${escapeHtml(doc.title)}</h1>`,
  ];
  for (const b of doc.blocks) {
    switch (b.kind) {
      case 'h': out.push(`<h${b.level + 1}>${inlineHtml(b.text)}</h${b.level + 1}>`); break;
      case 'p': out.push(`<p>${inlineHtml(b.text)}</p>`); break;
      case 'note': out.push(`<blockquote>${inlineHtml(b.text)}</blockquote>`); break;
      case 'list': out.push('<ul>', ...b.items.map((i) => `<li>${inlineHtml(i)}</li>`), '</ul>'); break;
      case 'table': {
        out.push('<table>', `<tr>${b.head.map((h) => `<th>${inlineHtml(h)}</th>`).join('')}</tr>`);
        for (const r of b.rows) out.push(`<tr>${r.map((c, i) => `<td${b.align?.[i] === 'r' ? ' class="r"' : ''}>${inlineHtml(c)}</td>`).join('')}</tr>`);
        out.push('</table>');
        break;
      }
      case 'figures': {
        out.push('<div class="figs">');
        for (const f of b.items) {
          out.push(`<figure><img alt="${escapeHtml(f.alt)}" src="${dataUri(f.src, readImage(f.src))}">${f.caption ? `<figcaption>${inlineHtml(f.caption)}</figcaption>` : ''}</figure>`);
        }
        out.push('</div>');
        break;
      }
    }
  }
  out.push('</body>', '</html>', '');
  return out.join('\n');
}
