// Small helpers the views share.
import { GROUP, SINGLE } from '../conv.js';

// User ids: what the server takes, checked before asking it.
export const ID_RE = /^[A-Za-z0-9][A-Za-z0-9.-]{2,31}$/;

export const $ = (id) => document.getElementById(id);

export function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

// parseIds splits a list of user ids typed with spaces or commas.
export function parseIds(s) {
  return [...new Set(s.split(/[\s,]+/).map((x) => x.trim()).filter(Boolean))];
}

// hue gives a name its colour, the same on every device.
export function hue(s) {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (h * 31 + s.charCodeAt(i)) >>> 0;
  return h % 360;
}

export function fmtTime(t, withDay) {
  if (!t) return '';
  const d = new Date(t);
  const now = new Date();
  const hm = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  if (d.toDateString() === now.toDateString()) return hm;
  const day = d.toLocaleDateString([], { month: 'short', day: 'numeric' });
  return withDay ? day + ' ' + hm : day;
}

// fillAvatar draws a conversation's avatar: an initial, a colour, and for
// a single chat the peer's presence dot.
export function fillAvatar(a, conv, store) {
  const name = store.title(conv);
  a.querySelector('span').textContent = (name[0] || '?').toUpperCase();
  a.style.setProperty('--h', hue(conv.chatType === SINGLE ? conv.peerId : conv.id));
  a.classList.toggle('group', conv.chatType === GROUP);
  const dot = a.querySelector('.dot');
  if (conv.chatType === SINGLE) {
    const on = store.online.get(conv.peerId);
    dot.hidden = false;
    dot.dataset.online = on === undefined ? 'unknown' : String(on);
    dot.title = on ? 'online' : on === false ? 'offline' : '';
  } else {
    dot.hidden = true;
  }
}

// notice shows text for a few seconds (a refused action, say).
let noticeTimer = 0;
export function notice(text) {
  const n = $('notice');
  n.textContent = text;
  n.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => { n.hidden = true; }, 5000);
}
