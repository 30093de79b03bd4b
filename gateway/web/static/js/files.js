// Images and files (protocol 15), the pure part: what type to declare for
// an upload, what an image or file message carries (its content is a JSON
// string), how it is described in the list and in quotes, how big a
// thumbnail is, and download links kept until they expire. No page, no
// network.

export const TEXT = 0;
export const IMAGE = 1;
export const FILE = 2;

export const IMAGE_TYPES = ['image/jpeg', 'image/png', 'image/gif', 'image/webp'];
// The server's default FILE_TYPES; anything else is declared as bytes.
export const UPLOAD_TYPES = [...IMAGE_TYPES, 'application/pdf', 'text/plain', 'application/zip'];
export const OCTET = 'application/octet-stream';
export const THUMB_MAX = 240;
// Links are used only while more than this is left of them.
export const LINK_MARGIN = 60 * 1000;
export const MAX_LINK_KEYS = 100;
const MIN_LINK_LIFE = 30 * 1000;
const RECENT_LINK = 30 * 1000;
const MAX_NAME_BYTES = 255;

export const isFileMessage = (mType) => mType === IMAGE || mType === FILE;

export function isImageType(t) { return IMAGE_TYPES.includes(t); }

// uploadType is the type to declare for a File: its own if the server
// takes it, else plain bytes (the server tells the real one if it differs).
export function uploadType(file) {
  const t = String((file && file.type) || '').toLowerCase();
  return UPLOAD_TYPES.includes(t) ? t : OCTET;
}

// retryType reads a PUT's 415 ("content is X, declared Y"): X when it is
// a type worth asking again for, else ''.
export function retryType(status, error, declared) {
  if (status !== 415) return '';
  const m = /content is ([\w.+-]+\/[\w.+-]+), declared/.exec(error || '');
  const t = m ? m[1].toLowerCase() : '';
  return t && t !== declared && (UPLOAD_TYPES.includes(t) || t === OCTET) ? t : '';
}

// uploadName is the name to send for a file: its base name, without what
// the server refuses (control characters, slashes), at most 255 bytes.
export function uploadName(name) {
  let s = String(name || '').split(/[/\\]/).pop();
  // eslint-disable-next-line no-control-regex
  s = s.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, '_').trim();
  if (!s || s === '.' || s === '..') return 'file';
  const enc = new TextEncoder();
  if (enc.encode(s).length <= MAX_NAME_BYTES) return s;
  // Keep the extension; cut the stem by characters until it fits.
  const dot = s.lastIndexOf('.');
  const ext = dot > 0 && s.length - dot <= 16 ? s.slice(dot) : '';
  let stem = Array.from(ext ? s.slice(0, dot) : s);
  while (stem.length && enc.encode(stem.join('') + '…' + ext).length > MAX_NAME_BYTES) stem.pop();
  return stem.join('') + '…' + ext;
}

// messageType is the mType to send an upload's answer as: an image with
// its size is shown as one, the rest as files.
export function messageType(answer) {
  return isImageType(answer.type) && answer.width > 0 && answer.height > 0 ? IMAGE : FILE;
}

// fileContent is the content of the message sending an upload: what the
// PUT answered and the name it was asked with.
export function fileContent(answer, name) {
  const f = { key: answer.key, name, size: answer.size, type: answer.type };
  if (answer.width > 0 && answer.height > 0) {
    f.width = answer.width;
    f.height = answer.height;
  }
  return JSON.stringify(f);
}

// parseFile reads the content of an image or file message; null when it
// is not one (recalled messages have no content).
export function parseFile(content) {
  if (!content || typeof content !== 'string') return null;
  let f;
  try { f = JSON.parse(content); } catch { return null; }
  if (!f || typeof f !== 'object' || typeof f.key !== 'string' || !f.key) return null;
  const num = (v) => (typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : 0);
  return {
    key: f.key,
    name: typeof f.name === 'string' && f.name ? f.name : 'file',
    size: num(f.size),
    type: typeof f.type === 'string' ? f.type : '',
    width: Math.floor(num(f.width)),
    height: Math.floor(num(f.height)),
  };
}

// fileName is what a message is called in quotes: a file's name, or the text.
export function fileName(mType, content) {
  if (!isFileMessage(mType)) return content || '';
  const f = parseFile(content);
  return f ? f.name : '';
}

// previewText is a message's line in the conversation list.
export function previewText(mType, content) {
  if (mType === IMAGE) return '[image]';
  if (mType === FILE) {
    const f = parseFile(content);
    return f ? '[file] ' + f.name : '[file]';
  }
  return content || '';
}

// quoteLabel is what a quote shows: the text, or a file's name (the
// preview's content) after what it is.
export function quoteLabel(mType, content) {
  if (mType === IMAGE) return '[image] ' + (content || '');
  if (mType === FILE) return '[file] ' + (content || '');
  return content || '';
}

const UNITS = ['KB', 'MB', 'GB', 'TB'];

// humanSize: 512 B, 47.1 KB, 1.2 MB, 20 MB (powers of 1024).
export function humanSize(n) {
  n = Math.max(0, Math.floor(Number(n) || 0));
  if (n < 1024) return n + ' B';
  let v = n / 1024;
  let u = 0;
  // Rounded to a tenth: 1023.96 KB reads as 1 MB, not "1024 KB".
  while (Math.round(v * 10) / 10 >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  return (Math.round(v * 10) / 10).toFixed(1).replace(/\.0$/, '') + ' ' + UNITS[u];
}

// friendlyError puts a size the server gives in bytes in words too.
export function friendlyError(msg) {
  return String(msg || 'failed').replace(/at most (\d+) bytes/, (_, n) => `at most ${humanSize(Number(n))}`);
}

// fitSize fits an image of w×h pixels in a maxW×maxH box, keeping its
// aspect and never enlarging it. Thumbnails use it with 240×240: their box
// is known before the image loads, so the conversation does not jump.
export function fitSize(w, h, maxW = THUMB_MAX, maxH = maxW) {
  if (!(w > 0) || !(h > 0)) return { width: maxW, height: Math.min(maxH, Math.round(maxW * 3 / 4)) };
  const s = Math.min(1, maxW / w, maxH / h);
  return { width: Math.max(1, Math.round(w * s)), height: Math.max(1, Math.round(h * s)) };
}

// extLabel is the short kind of a file shown on its icon: PDF, ZIP, TXT…
export function extLabel(name, type) {
  const dot = (name || '').lastIndexOf('.');
  const ext = dot > 0 ? name.slice(dot + 1) : '';
  if (/^[A-Za-z0-9]{1,4}$/.test(ext)) return ext.toUpperCase();
  if (type === 'application/pdf') return 'PDF';
  if (type === 'application/zip') return 'ZIP';
  if (type === 'text/plain') return 'TXT';
  return 'FILE';
}

// LinkCache holds download links by file key until their expiry, less a
// margin, and says which keys to ask for (not held, not being asked).
export class LinkCache {
  constructor(now = Date.now, margin = LINK_MARGIN) {
    this.now = now;
    this.margin = margin;
    this.links = new Map(); // key → {url, expires, at}
    this.asking = new Set();
    this.refused = new Map(); // key → when it may be asked again
  }

  // get is key's link while it is good, else ''.
  get(key) {
    const l = this.links.get(key);
    return l && l.expires - this.margin > this.now() ? l.url : '';
  }

  // fetchedAt is when key's link came (0: none).
  fetchedAt(key) {
    const l = this.links.get(key);
    return l ? l.at : 0;
  }

  // toAsk picks the keys to ask links for, at most max, and counts them
  // as being asked.
  toAsk(keys, max = MAX_LINK_KEYS) {
    const now = this.now();
    const out = [];
    for (const k of new Set(keys)) {
      if (!k || this.get(k) || this.asking.has(k) || (this.refused.get(k) || 0) > now) continue;
      out.push(k);
      if (out.length >= max) break;
    }
    for (const k of out) this.asking.add(k);
    return out;
  }

  // put takes the download action's answer for keys asked. A link is
  // kept a little while at least, even when this clock is so far ahead of
  // the server's that it looks expired (it would be asked for again and
  // again).
  put(keys, urls, expires) {
    const at = this.now();
    const until = Math.max(Number(expires) || 0, at + this.margin + MIN_LINK_LIFE);
    for (const k of keys) {
      this.asking.delete(k);
      this.refused.delete(k);
      const url = urls && urls[k];
      // Same origin only: a path, never another host.
      if (typeof url === 'string' && url.startsWith('/') && !url.startsWith('//')) this.links.set(k, { url, expires: until, at });
    }
  }

  // failed: the answer did not come, or refused them; they are not asked
  // again for a while (wait ms).
  failed(keys, wait = 0) {
    const until = this.now() + wait;
    for (const k of keys) {
      this.asking.delete(k);
      if (wait) this.refused.set(k, until);
    }
  }

  // failedLoad: key's link did not load. A link held for a while may have
  // expired (a sleeping laptop): it is dropped, to be asked again, and true
  // returned. A new one failing means the file is gone (false).
  failedLoad(key, recent = RECENT_LINK) {
    const l = this.links.get(key);
    if (!l || this.now() - l.at < recent) return false;
    this.links.delete(key);
    return true;
  }

  // nextRefresh is when the next held link that is good now stops being
  // good (0: none).
  nextRefresh() {
    const now = this.now();
    let t = 0;
    for (const l of this.links.values()) {
      const due = l.expires - this.margin;
      if (due > now && (!t || due < t)) t = due;
    }
    return t;
  }

  clear() {
    this.links.clear();
    this.asking.clear();
    this.refused.clear();
  }
}
