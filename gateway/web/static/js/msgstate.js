// The state a message carries besides its text (protocol 14): the message
// it quotes, whom it mentions, edits, recall, reactions, hiding, and the
// change number (version) that state is at. Also the rules of what a user
// may do to a message, and the @mentions of a text being written. Pure: no
// page, no network.
import { fileName } from './files.js';

export const REACTIONS = ['👍', '❤️', '😂', '😮', '😢', '🙏'];
export const EDIT_WINDOW = 15 * 60 * 1000;
export const RECALL_WINDOW = 2 * 60 * 1000;
export const QUOTE_RUNES = 80;
export const MAX_MENTIONS = 50;
// Typing: repeat "typing" at most this often; the server forwards at most
// one typing frame per conversation per second (more are refused).
export const TYPING_EVERY = 3000;
export const TYPING_GAP = 1100;
export const TYPING_TTL = 5000;

// setState copies the state of a msg (push, sync, history or a change's
// message) onto message m: all of it, so what the server left out (e.g.
// the content of a recalled message) is gone.
export function setState(m, msg) {
  m.content = msg.content || '';
  m.mType = msg.mType || 0;
  m.quote = msg.quote ? { ...msg.quote } : null;
  m.mentions = Array.isArray(msg.mentions) ? [...msg.mentions] : [];
  m.mentionAll = !!msg.mentionAll;
  m.edited = msg.edited || 0;
  m.recalled = !!msg.recalled;
  m.recalledBy = msg.recalledBy || '';
  m.reactions = msg.reactions && typeof msg.reactions === 'object' ? cloneReactions(msg.reactions) : {};
  m.version = msg.version || 0;
  m.hidden = !!msg.hidden;
  return m;
}

function cloneReactions(r) {
  const out = {};
  for (const [e, us] of Object.entries(r)) if (Array.isArray(us) && us.length) out[e] = [...us];
  return out;
}

// isNewer says whether msg is a later state than the one m holds.
export function isNewer(msg, m) {
  return (msg.version || 0) > (m.version || 0) || (!!msg.hidden && !m.hidden);
}

// hide makes m a message this user deleted for themselves: kept (its seq
// still counts), never shown.
export function hide(m) {
  m.hidden = true;
  m.content = '';
}

export function mentionsMe(m, me) {
  return !!me && m.sendId !== me && !m.recalled && (!!m.mentionAll || (m.mentions || []).includes(me));
}

export function clip(s, n = QUOTE_RUNES) {
  const cs = Array.from(s || '');
  return cs.length > n ? cs.slice(0, n).join('') + '…' : cs.join('');
}

// quoteOf is the preview a reply to m carries until the server's comes
// (as the server's: a file's name for an image or file).
export function quoteOf(m) {
  const q = { msgId: m.msgId, seq: m.seq || 0, sendId: m.sendId, mType: m.mType || 0 };
  if (m.recalled) q.recalled = true;
  else q.content = clip(fileName(m.mType || 0, m.content));
  return q;
}

// resolveQuote is what a reply in conv shows of what it quotes: the quoted
// message as held now (it may have been edited or recalled since the
// preview was made), else the preview.
export function resolveQuote(conv, q) {
  if (!q || !q.msgId) return null;
  const held = conv.msgs.get(q.msgId);
  if (held && !held.hidden) return quoteOf(held);
  return q;
}

// canEdit: my own text, sent and not recalled, within the edit window.
export function canEdit(m, me, now) {
  return !!m.msgId && m.sendId === me && !m.recalled && !m.hidden && (m.mType || 0) === 0 &&
    now - m.sendTime < EDIT_WINDOW;
}

// canRecall: my own within the recall window, or any as the group's owner.
export function canRecall(m, me, now, isOwner) {
  if (!m.msgId || m.recalled || m.hidden) return false;
  return !!isOwner || (m.sendId === me && now - m.sendTime < RECALL_WINDOW);
}

export function canReply(m) { return !!m.msgId && !m.recalled && !m.hidden; }

export const canReact = canReply;

// reactionList is m's reactions to show: emoji, who, how many, and whether
// one of them is mine, in the order the emoji were first given.
export function reactionList(m, me) {
  return Object.entries(m.reactions || {})
    .filter(([, us]) => us.length)
    .map(([emoji, users]) => ({ emoji, users, count: users.length, mine: users.includes(me) }));
}

// hasReacted says whether me gave emoji on m (so a click takes it away).
export function hasReacted(m, me, emoji) {
  return ((m.reactions || {})[emoji] || []).includes(me);
}

// ---- @mentions while writing

const ID_CHAR = /[A-Za-z0-9-]/;

// hasTag says whether text has "@tag" as a word of its own.
function hasTag(text, tag) {
  const want = '@' + tag;
  for (let i = text.indexOf(want); i >= 0; i = text.indexOf(want, i + 1)) {
    const before = i ? text[i - 1] : ' ';
    const after = text[i + want.length] || ' ';
    const next = text[i + want.length + 1] || ' ';
    const endsHere = !ID_CHAR.test(after) && !(after === '.' && ID_CHAR.test(next));
    if (!ID_CHAR.test(before) && before !== '@' && endsHere) return true;
  }
  return false;
}

// mentionsIn is whom text mentions among candidates [{id, label}] (each
// by "@id" or "@label"), and whether it says "@all" (allowAll: only a
// group's owner may).
export function mentionsIn(text, candidates, allowAll) {
  const mentions = [];
  for (const c of candidates) {
    if (mentions.includes(c.id)) continue;
    if (hasTag(text, c.id) || (c.label && hasTag(text, c.label))) mentions.push(c.id);
  }
  return { mentions: mentions.slice(0, MAX_MENTIONS), mentionAll: !!allowAll && hasTag(text, 'all') };
}

// mentionQuery finds the "@word" being typed just before caret: where its
// "@" is and what follows it; null when the caret is not in one.
export function mentionQuery(text, caret) {
  const head = text.slice(0, caret);
  const at = head.lastIndexOf('@');
  if (at < 0) return null;
  if (at > 0 && !/\s/.test(head[at - 1])) return null;
  const query = head.slice(at + 1);
  if (/\s/.test(query) || query.length > 32) return null;
  return { start: at, query };
}

// mentionChoices is what to offer for query: members (not me) whose id or
// name starts with it, and "all" for the owner.
export function mentionChoices(query, members, nameOf, me, isOwner, max = 8) {
  const q = query.toLowerCase();
  const out = [];
  if (isOwner && 'all'.startsWith(q)) out.push({ id: 'all', label: 'all', all: true });
  for (const u of members) {
    if (u === me) continue;
    const name = nameOf(u);
    if (u.toLowerCase().startsWith(q) || name.toLowerCase().startsWith(q)) out.push({ id: u, label: name });
    if (out.length >= max) break;
  }
  return out;
}

// ---- typing

// TypingGate decides when this device tells a conversation its user is
// typing: "typing" when they start, again every TYPING_EVERY while they go
// on, and "stopped" once when they send or leave the composer, never two
// frames closer than TYPING_GAP (the server refuses those).
export class TypingGate {
  constructor() { this.reset(); }

  reset() {
    this.active = false;
    this.lastTyping = -Infinity;
    this.last = -Infinity;
  }

  // typed says when to send typing:true: 0 now, or in that many ms (too
  // soon after the last frame: ask again then), or -1 not at all (said
  // lately).
  typed(now) {
    if (now - this.lastTyping < TYPING_EVERY) return -1;
    const wait = this.last + TYPING_GAP - now;
    if (wait > 0) return wait;
    this.active = true;
    this.lastTyping = this.last = now;
    return 0;
  }

  // refused: the last typing:true did not go through; the next keystroke
  // may try again.
  refused() { this.lastTyping = -Infinity; }

  // stopped returns how long to wait before sending typing:false (the gap
  // after the last frame), or -1 when there is nothing to stop.
  stopped(now) {
    if (!this.active) return -1;
    this.active = false;
    this.lastTyping = -Infinity;
    const wait = Math.max(0, this.last + TYPING_GAP - now);
    this.last = now + wait;
    return wait;
  }
}
