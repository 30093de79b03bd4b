// One conversation as the client holds it, and the rules read off it:
// what is held up to where, the order of its messages, the ticks on mine,
// what to mark read and to report delivered. Pure: no page, no network.
// A message's own state (quote, edits, reactions…) is js/msgstate.js's.
//
// Ticks on your own messages:
//   clock  pending: sent on the socket, no ack yet (resent with the same
//          frame id after a reconnect, so the server stores it once)
//   ✓      sent: acked, i.e. durably accepted by the server
//   ✓✓     delivered (single chats): a device of the peer has the message;
//          devices report what they received (conversation.markDelivered)
//          and the sender gets conversation.delivered
//   ✓✓     read (green): a conversation.read receipt from the peer (a
//          group member) covers the message (its msgId, or readSeq >= its seq)

import { setState } from './msgstate.js';

export const GROUP = 1;
export const SINGLE = 2;
// The server takes at most this many msgIds in one markChat; its readSeq
// covers the rest.
export const MAX_MARK_IDS = 100;

export function singleConvId(a, b) { return a < b ? a + '_' + b : b + '_' + a; }

function peerOf(convId, me) {
  const [a, b] = convId.split('_');
  return a === me ? b : a;
}

export function newConv(id, chatType, me) {
  return {
    id,
    chatType,
    peerId: chatType === SINGLE ? peerOf(id, me) : '',
    groupName: '',
    seq: 0, // newest seq the server has told us about
    baseSeq: 0, // messages up to here are left to history (loaded lazily)
    readSeq: 0, // how far I have read
    unread: 0,
    lastMsg: null, // {msgId, sendId, mType, content, sendTime, seq, recalled}
    updatedAt: 0,
    msgs: new Map(), // msgId (or "f:"+frame id) → message
    historyDone: false,
    loadingOlder: false,
    readers: new Map(), // readerId → readSeq (receipts)
    peerDelivered: 0, // single chat: the peer's devices hold everything up to here
    deliveredSent: 0, // what this device last reported as received
    readIds: new Map(), // msgId → Set(readerId) (receipts)
    // Changes: the highest change number applied, contiguously (a gap
    // leaves it for a sync to fill). Known: held messages are up to it;
    // stale: some were held across a lost connection, before it was known.
    version: 0,
    versionKnown: false,
    versionStale: false,
    hiddenIds: new Set(), // messages I deleted for me, held or not
    mentioned: false, // a message after my read position mentions me
    typing: new Map(), // userId → until (ms)
  };
}

// recvIdOf is the recvId of a chat or markChat frame for conv.
export function recvIdOf(conv) { return conv.chatType === SINGLE ? conv.peerId : conv.id; }

// normalize turns a push, sync or history item into a message; now stands
// in for a missing send time.
export function normalize(p, now) {
  return setState({
    key: p.msg.msgId,
    msgId: p.msg.msgId,
    frameId: '',
    convId: p.conversationId,
    sendId: p.sendId,
    seq: p.seq || 0,
    sendTime: p.sendTime || now,
    status: '',
  }, p.msg);
}

// bumpLast makes m the conversation's last message if it is the newest.
export function bumpLast(conv, m) {
  if (m.hidden) return;
  const l = conv.lastMsg;
  const newer = !l || (m.seq && l.seq ? m.seq >= l.seq : m.sendTime >= l.sendTime);
  if (newer) {
    conv.lastMsg = {
      msgId: m.msgId, sendId: m.sendId, mType: m.mType || 0, content: m.content, sendTime: m.sendTime, seq: m.seq, recalled: !!m.recalled,
    };
  }
  conv.updatedAt = Math.max(conv.updatedAt, m.sendTime || 0);
}

// refreshLast brings the last message up to date after message m changed:
// its new text, or, hidden, the newest one still shown.
export function refreshLast(conv, m) {
  if (!conv.lastMsg || !m.msgId || conv.lastMsg.msgId !== m.msgId) return;
  if (!m.hidden) {
    conv.lastMsg.content = m.content;
    conv.lastMsg.recalled = !!m.recalled;
    return;
  }
  conv.lastMsg = null;
  for (const o of conv.msgs.values()) bumpLast(conv, o);
}

export function lowestSeq(conv) {
  let low = 0;
  for (const m of conv.msgs.values()) if (m.seq && (!low || m.seq < low)) low = m.seq;
  return low;
}

export function highestSeq(conv) {
  let hi = 0;
  for (const m of conv.msgs.values()) if (m.seq > hi) hi = m.seq;
  return hi;
}

// knownSeq is the seq up to which this client holds every message it
// wants (a gap, e.g. a missed push, stops it): conversation.sync sends
// what lies beyond.
export function knownSeq(conv) {
  const seqs = [];
  for (const m of conv.msgs.values()) if (m.seq) seqs.push(m.seq);
  if (!seqs.length) return conv.baseSeq;
  seqs.sort((a, b) => a - b);
  let top = conv.baseSeq;
  for (const s of seqs) {
    if (s <= top) continue; // history, or a repeat
    if (s !== top + 1) break; // a gap
    top = s;
  }
  return top;
}

// sortedMessages is what the conversation shows, ordered by seq (hidden
// ones are left out). A message of mine whose seq is not known yet goes
// right after the newest one I held when I sent it (afterSeq), until a sync
// tells its real place.
export function sortedMessages(conv) {
  const key = (m) => (m.seq ? m.seq : (m.afterSeq || 0) + 0.5);
  return [...conv.msgs.values()].filter((m) => !m.hidden).sort((a, b) => (key(a) - key(b)) || (a.sendTime - b.sendTime));
}

// holdsMessages says whether conv holds a message the server has named.
export function holdsMessages(conv) {
  for (const m of conv.msgs.values()) if (m.msgId) return true;
  return false;
}

// typers is who is typing in conv at now (the expired are dropped).
export function typers(conv, now) {
  const out = [];
  for (const [u, until] of conv.typing) {
    if (until > now) out.push(u);
    else conv.typing.delete(u);
  }
  return out;
}

export function readersOf(conv, m, me) {
  const r = new Set(m.msgId ? conv.readIds.get(m.msgId) || [] : []);
  if (m.seq) for (const [u, s] of conv.readers) if (s >= m.seq) r.add(u);
  r.delete(me);
  return r;
}

// ownStatus is the tick of a message of mine: pending, failed, sent,
// delivered or read.
export function ownStatus(conv, m, me) {
  if (m.status === 'pending' || m.status === 'failed') return m.status;
  if (readersOf(conv, m, me).size) return 'read';
  return m.seq && m.seq <= conv.peerDelivered ? 'delivered' : 'sent';
}

// hasUnsequenced reports whether an acked message of mine in conv has no
// seq yet (it is stored a moment after the ack): receipts' positions cannot
// be compared with it until a sync brings it.
export function hasUnsequenced(conv, me) {
  for (const m of conv.msgs.values()) if (m.sendId === me && !m.seq && m.status === 'sent') return true;
  return false;
}

// needsHistory says whether opening conv should fetch a history page now:
// the newest messages are not held, or nothing is known of it at all.
export function needsHistory(conv) {
  if (conv.historyDone) return false;
  return highestSeq(conv) < conv.seq || (lowestSeq(conv) === 0 && conv.seq === 0);
}

// toMark is what a markChat for conv would carry: the newest seq held and
// the ids of others' messages after my read position (so group senders get
// a receipt). It is null when there is nothing new to mark.
export function toMark(conv, me) {
  const hi = highestSeq(conv);
  if (hi <= conv.readSeq) return null;
  const ids = [];
  for (const m of conv.msgs.values()) {
    if (m.seq > conv.readSeq && m.sendId !== me && m.msgId) ids.push(m.msgId);
  }
  return { readSeq: hi, msgIds: ids.slice(-MAX_MARK_IDS) };
}

// deliveredToReport is the seq this device should report as received in a
// single chat, or 0 when there is nothing new. Read covers delivered: the
// read receipt tells the sender.
export function deliveredToReport(conv) {
  const seq = knownSeq(conv);
  return seq > Math.max(conv.deliveredSent, conv.readSeq) ? seq : 0;
}

