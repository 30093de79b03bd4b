// Files does the talking to the server for images and files (protocol 15):
// an upload is asked for (POST /api/file), its bytes PUT to the same-origin
// link the answer gives, and the message then goes through the outbox like
// a text; download links are asked for in batches and kept until they
// expire. ui has render() and send(conv, mType, content, extra).
import { ApiError } from './api.js';
import { newId } from './conn.js';
import {
  LinkCache, uploadType, uploadName, retryType, messageType, fileContent, friendlyError,
} from './files.js';

// After a refused or failed download action, wait this long before asking
// for the same keys again.
const REFUSED_WAIT = 60000;
const FAILED_WAIT = 5000;

export class Files {
  constructor(api, ui) {
    this.api = api;
    this.ui = ui;
    this.links = new LinkCache();
    this.thumbs = new Map(); // key → link of its thumbnail, from the same answer as its link
    this.uploads = new Map(); // id → {id, convId, name, size, state: 'uploading' | 'failed', error}
    this.chain = Promise.resolve();
    this.refreshTimer = 0;
    this.gen = 0; // the session's: answers for an earlier one are dropped
  }

  // reset forgets what a session had (links are the signed-in user's).
  reset() {
    this.links.clear();
    this.thumbs.clear();
    this.uploads.clear();
    clearTimeout(this.refreshTimer);
    this.gen++;
  }

  uploadsOf(convId) { return [...this.uploads.values()].filter((u) => u.convId === convId); }

  dismiss(id) {
    this.uploads.delete(id);
    this.ui.render();
  }

  // sendFiles uploads files to conv one after another (so they arrive in
  // the order chosen) and sends each as a message; extra (a reply's quote)
  // goes with the first.
  sendFiles(conv, files, extra) {
    [...files].forEach((file, i) => {
      const u = { id: newId('u'), convId: conv.id, name: uploadName(file.name), size: file.size, state: 'queued', error: '' };
      this.uploads.set(u.id, u);
      // upload() settles every upload itself; the catch keeps the chain
      // going should it throw all the same.
      this.chain = this.chain.then(() => this.upload(conv, file, u, i === 0 ? extra : {}))
        .catch((e) => console.warn('upload', e));
    });
    this.ui.render();
  }

  async upload(conv, file, u, extra) {
    if (!this.uploads.has(u.id)) return; // dismissed, or the session ended
    u.state = 'uploading';
    this.ui.render();
    try {
      if (!file.size) throw new Error('the file is empty');
      let type = uploadType(file);
      let answer = null;
      // One more try when the bytes say another type than declared.
      for (let tries = 0; !answer; tries++) {
        const grant = await this.api('file', { action: 'upload', conversationId: conv.id, name: u.name, size: file.size, type });
        const res = await put(grant.url, file);
        if (res.ok) {
          answer = res.data;
          break;
        }
        const again = tries === 0 ? retryType(res.status, res.error, type) : '';
        if (!again) throw new ApiError(res.status, res.error);
        type = again;
      }
      if (!this.uploads.has(u.id)) return;
      this.uploads.delete(u.id);
      this.ui.send(conv, messageType(answer), fileContent(answer, u.name), extra);
    } catch (e) {
      if (!this.uploads.has(u.id)) return;
      u.state = 'failed';
      u.error = friendlyError(e.message);
    }
    this.ui.render();
  }

  // link is key's download link while it is good, else ''.
  link(key) { return this.links.get(key); }

  // thumb is the link of key's thumbnail (the image itself where it has
  // none) while key's link is good (they come and go together), else ''.
  thumb(key) { return this.links.get(key) ? this.thumbs.get(key) || '' : ''; }

  putThumbs(thumbs) {
    for (const [k, u] of Object.entries(thumbs || {})) {
      if (typeof u === 'string' && u.startsWith('/') && !u.startsWith('//')) this.thumbs.set(k, u);
    }
  }

  // want asks for the links of keys not held (at most 100 a call).
  want(keys) {
    for (let ask = this.links.toAsk(keys); ask.length; ask = this.links.toAsk(keys)) {
      const asked = ask;
      const gen = this.gen;
      this.api('file', { action: 'download', keys: asked }).then((res) => {
        if (gen !== this.gen) return;
        this.links.put(asked, res.urls, res.expires);
        this.putThumbs(res.thumbs);
        this.scheduleRefresh();
        this.ui.render();
      }, (e) => {
        if (gen !== this.gen) return;
        const wait = e.status >= 400 && e.status < 500 ? REFUSED_WAIT : FAILED_WAIT;
        this.links.failed(asked, wait);
        setTimeout(() => this.ui.render(), wait + 50);
      });
    }
  }

  // fresh resolves with a good link for key, asking now if needed.
  async fresh(key) {
    const held = this.links.get(key);
    if (held) return held;
    const gen = this.gen;
    const res = await this.api('file', { action: 'download', keys: [key] });
    if (gen !== this.gen) return '';
    this.links.put([key], res.urls, res.expires);
    this.putThumbs(res.thumbs);
    this.scheduleRefresh();
    return this.links.get(key);
  }

  // loadFailed: an image did not load from key's link. True: the link may
  // just be old, and a new one is asked for with the next drawing.
  loadFailed(key) { return this.links.failedLoad(key); }

  // Links shown are asked for again before they expire (the drawing asks).
  scheduleRefresh() {
    clearTimeout(this.refreshTimer);
    const at = this.links.nextRefresh();
    if (at) this.refreshTimer = setTimeout(() => this.ui.render(), Math.max(0, at - Date.now()) + 50);
  }
}

// put sends a file's bytes to an upload link of this origin; it resolves
// with {ok, status, data, error}.
async function put(url, file) {
  if (typeof url !== 'string' || !url.startsWith('/') || url.startsWith('//')) {
    throw new Error('the server gave no upload link');
  }
  let res;
  try {
    res = await fetch(url, { method: 'PUT', body: file });
  } catch {
    throw new ApiError(0, 'the upload did not go through (network)');
  }
  let data = {};
  try { data = await res.json(); } catch { /* not JSON */ }
  return { ok: res.ok, status: res.status, data, error: data.error || res.statusText || 'upload failed' };
}
