// The full-size view of an image: a modal over the page, closed by a
// click anywhere, the ✕ or Escape. The image comes from the same-origin
// /files/ link, as thumbnails do.
import { fitSize } from '../files.js';
import { $ } from './dom.js';

export function createLightbox() {
  const d = $('lightbox');
  const img = $('lightbox-img');
  const open = $('lightbox-open');
  const status = $('lightbox-status');
  let shown = null; // the image on view

  // The image's own size, made smaller to fit the window; known before it
  // loads, from the message's width and height.
  function size() {
    if (!shown) return;
    const w = shown.width || img.naturalWidth;
    const h = shown.height || img.naturalHeight;
    if (!w || !h) return;
    const s = fitSize(w, h, Math.max(40, innerWidth - 32), Math.max(40, innerHeight - 110));
    img.style.width = s.width + 'px';
    img.style.height = s.height + 'px';
  }
  addEventListener('resize', size);

  img.addEventListener('load', () => {
    d.dataset.state = 'loaded';
    status.textContent = '';
    size();
  });
  img.addEventListener('error', () => {
    if (!img.getAttribute('src')) return;
    d.dataset.state = 'broken';
    status.textContent = 'The image is not available.';
  });
  // Any click closes it, but one on the link to the original (a new tab).
  d.addEventListener('click', (e) => {
    if (!e.target.closest('#lightbox-open')) d.close();
  });
  d.addEventListener('close', () => {
    shown = null;
    img.removeAttribute('src');
  });

  // show opens image f (a parsed file) with url, a promise of its link.
  async function show(f, url) {
    shown = f;
    d.dataset.state = 'loading';
    status.textContent = 'Loading…';
    $('lightbox-name').textContent = f.name;
    d.setAttribute('aria-label', 'Image ' + f.name);
    img.alt = f.name;
    img.removeAttribute('src');
    img.style.width = img.style.height = '';
    open.removeAttribute('href');
    if (!d.open) d.showModal();
    size();
    let u = '';
    try { u = await url; } catch { /* said below */ }
    if (shown !== f) return;
    if (!u) {
      d.dataset.state = 'broken';
      status.textContent = 'The image is not available.';
      return;
    }
    img.src = u;
    open.href = u;
  }

  return { show };
}
