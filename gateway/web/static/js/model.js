// The client's data and its rules, with no page and no network: the
// Store's methods take data and change or return data. Sending frames,
// storing, timers and drawing are the caller's, told by what they return,
// so the rules can be tested on their own (gateway/web/modeltest).
//
// Message state, per conversation, is a map keyed by msgId (or by "f:" and
// the client frame id while a sent message is not acked yet): pushes, sync
// answers and history pages all merge into it, so a message shows exactly
// once whatever path brought it, and the view sorts by seq (js/conv.js).
//
// Changes to messages (recall, edit, reactions, delete for me) come as
// conversation.changed frames, and in sync answers after the change number
// (version) a conversation is known up to; each carries the message as it
// is now, taken if its version is newer than the one held.
import {
  GROUP, SINGLE, singleConvId, newConv, recvIdOf, normalize, bumpLast, refreshLast,
  lowestSeq, highestSeq, knownSeq, hasUnsequenced, holdsMessages, typers,
} from './conv.js';
import { setState, isNewer, hide, mentionsMe, TYPING_TTL } from './msgstate.js';

const MAX_PRESENCE_IDS = 100;
const MAX_PROFILE_IDS = 200;

// Store is all the client knows, for one signed-in user at a time. now is
// the clock for items without a time.
export class Store {
  constructor(now = Date.now) {
    this.now = now;
    this.session = null; // {userId, nickname, token}
    this.convs = new Map(); // conversationId → conv (see newConv)
    this.openId = null;
    this.online = new Map(); // userId → bool
    this.outbox = new Map(); // frame id → {id, convId, chatType, recvId, content, time, failed, afterSeq}
    this.groups = new Map(); // groupId → {name, owner, members}
    this.names = new Map(); // userId → nickname ('' when the user has none, or is unknown)
    this.namesAsked = new Set();
    this.listLoaded = false;
  }

  get me() { return this.session ? this.session.userId : ''; }

  // begin starts a session: nothing of an earlier one is kept.
  begin(session) {
    this.session = session;
    this.convs.clear();
    this.online.clear();
    this.groups.clear();
    this.names.clear();
    this.namesAsked = new Set();
    this.openId = null;
    this.listLoaded = false;
    this.outbox = new Map();
  }

  end() {
    this.outbox = new Map();
    this.session = null;
    this.openId = null;
  }

  ensure(id, chatType) {
    let c = this.convs.get(id);
    if (!c) {
      c = newConv(id, chatType || (id.includes('_') ? SINGLE : GROUP), this.me);
      this.convs.set(id, c);
    }
    return c;
  }

  // ---- names and titles

  // nameOf is a user's display name: the nickname, else the id.
  nameOf(u) {
    if (u === this.me && this.session.nickname) return this.session.nickname;
    return this.names.get(u) || u;
  }

  title(c) {
    if (c.chatType === SINGLE) return this.nameOf(c.peerId);
    return c.groupName || (this.groups.get(c.id) || {}).name || 'Group';
  }

  // namesToAsk picks the ids whose nicknames were not asked for yet, and
  // counts them as asked.
  namesToAsk(ids) {
    const want = [...new Set(ids)].filter((u) => u && !this.namesAsked.has(u) && u !== this.me).slice(0, MAX_PROFILE_IDS);
    for (const u of want) this.namesAsked.add(u);
    return want;
  }

  // namesFailed lets ids be asked again.
  namesFailed(ids) { for (const u of ids) this.namesAsked.delete(u); }

  setNames(profiles) {
    for (const p of profiles || []) if (p.nickname) this.names.set(p.userId, p.nickname);
  }

  // people is whom the list shows: peers and last senders.
  people() {
    const out = [];
    for (const c of this.convs.values()) {
      if (c.peerId) out.push(c.peerId);
      if (c.lastMsg) out.push(c.lastMsg.sendId);
    }
    return out;
  }

  // listed is the conversations the list shows, newest activity first.
  listed() {
    return [...this.convs.values()]
      .filter((c) => c.msgs.size || c.seq || c.chatType === GROUP || c.id === this.openId)
      .sort((a, b) => (b.updatedAt - a.updatedAt) || a.id.localeCompare(b.id));
  }

  // ---- messages

  // merge adds the message of a push/sync/history item unless it is known
  // (by msgId); it fills in the seq of a known message that lacked it.
  // source: "push" | "sync" | "history"; viewing: the id of the conversation
  // on screen, whose messages are not unread. added says the message was
  // new; deliver that the conversation has news to report as delivered.
  merge(p, source, viewing) {
    const conv = this.ensure(p.conversationId, p.chatType);
    const id = p.msg && p.msg.msgId;
    if (!id) return { conv, added: false, deliver: false };
    const me = this.me;
    // A conversation first seen by this push: older messages are history,
    // unless this client holds all of it already (an empty one it opened).
    const fresh = !conv.msgs.size && source === 'push' && !conv.baseSeq && !conv.historyDone;
    let m = conv.msgs.get(id);
    const added = !m;
    if (m) {
      if (!m.seq && p.seq) {
        m.seq = p.seq;
        if (m.frameId) placeAfter(conv, m);
      }
      if (m.status === 'pending') m.status = 'sent';
      if (isNewer(p.msg, m)) {
        setState(m, p.msg);
        if (m.hidden) {
          hide(m);
          conv.hiddenIds.add(id);
        }
        refreshLast(conv, m);
      }
    } else {
      m = normalize(p, this.now());
      if (m.sendId === me) m.status = 'sent';
      if (m.hidden || conv.hiddenIds.has(id)) hide(m);
      conv.msgs.set(id, m);
      if (m.hidden) {
        conv.hiddenIds.add(id);
        refreshLast(conv, m); // the list's last message may be it
      }
      if (fresh && p.seq > 1) conv.baseSeq = p.seq - 1; // older ones come with history
      // Count it unread only if it is newer than what the server's count
      // (from the list) already covered.
      const news = source !== 'history' && m.sendId !== me && m.seq > conv.readSeq && conv.id !== viewing && !m.hidden;
      if (news && m.seq > conv.seq) conv.unread++;
      if (news && mentionsMe(m, me)) conv.mentioned = true;
    }
    // A message from someone ends their "typing".
    if (source !== 'history') conv.typing.delete(m.sendId);
    if (m.seq > conv.seq) conv.seq = m.seq;
    if (m.seq === 1) conv.historyDone = true;
    bumpLast(conv, m);
    const deliver = source !== 'history' && conv.chatType === SINGLE && m.sendId !== me;
    return { conv, added, deliver };
  }

  // push merges a pushed message and says what else it calls for:
  // needList when the conversation (or a group's name) is not known yet,
  // gap when pushes were missed in between (a sync fetches them).
  push(p, viewing) {
    const known = this.convs.has(p.conversationId);
    const before = known ? knownSeq(this.convs.get(p.conversationId)) : 0;
    const r = this.merge(p, 'push', viewing);
    const needList = !known || (r.conv.chatType === GROUP && !r.conv.groupName);
    const gap = known && p.seq > before + 1;
    if (p.sendId !== this.me) this.online.set(p.sendId, true);
    return { ...r, needList, gap };
  }

  // knownSeqs is the seqs argument of conversation.sync.
  knownSeqs() {
    const seqs = {};
    for (const c of this.convs.values()) seqs[c.id] = knownSeq(c);
    return seqs;
  }

  // applyHistory merges a history page asked for with before (0: the
  // newest) and limit, and records whether older ones remain. version is
  // the answer's change number: changes are synced from it, unless the
  // version is known already (sync covers it) or messages were held across
  // a lost connection (they may miss changes older than it).
  applyHistory(conv, page, before, limit, version) {
    const adopt = typeof version === 'number' && !conv.versionKnown && !conv.versionStale;
    for (const p of page) this.merge(p, 'history', null);
    if (page.length < limit || lowestSeq(conv) === 1) conv.historyDone = true;
    if (adopt) {
      conv.version = Math.max(conv.version, version);
      conv.versionKnown = true;
    }
  }

  // ---- changes to messages

  // knownVersions is the versions argument of conversation.sync: the
  // change number of each conversation whose version is known, and 0 for
  // those whose messages were held across a lost connection before it was.
  knownVersions() {
    const out = {};
    for (const c of this.convs.values()) {
      if (c.versionKnown) out[c.id] = c.version;
      else if (c.versionStale) out[c.id] = 0;
    }
    return out;
  }

  // disconnected records that the connection was lost: changes made
  // meanwhile to messages held without a known version are to be synced
  // from the start.
  disconnected() {
    for (const c of this.convs.values()) {
      if (!c.versionKnown && holdsMessages(c)) c.versionStale = true;
    }
  }

  // applyChange takes the data of a conversation.changed frame (source
  // "push") or one change of a sync answer ("sync"). The message it
  // carries replaces the held one if its version is newer; a hide takes
  // the message out of view. It returns null for an unknown conversation,
  // else {conv, changed, gap}: changed, the view is to be drawn again; gap,
  // changes were missed (a sync fetches them).
  applyChange(d, source) {
    const conv = d && this.convs.get(d.conversationId);
    if (!conv) return null;
    let changed = false;
    const m = conv.msgs.get(d.msgId);
    if (d.kind === 'hide') {
      conv.hiddenIds.add(d.msgId);
      if (m && !m.hidden) {
        hide(m);
        refreshLast(conv, m);
        changed = true;
      }
    } else if (d.message && d.message.msg) {
      const msg = d.message.msg;
      if (m && isNewer(msg, m)) {
        setState(m, msg);
        if (m.hidden || conv.hiddenIds.has(m.msgId)) hide(m);
        refreshLast(conv, m);
        changed = true;
      } else if (!m && conv.lastMsg && conv.lastMsg.msgId === d.msgId) {
        // Not held, but the list shows it.
        conv.lastMsg.content = msg.content || '';
        conv.lastMsg.mType = msg.mType || 0;
        conv.lastMsg.recalled = !!msg.recalled;
        changed = true;
      }
    }
    let gap = false;
    const v = d.version || 0;
    if (source === 'sync') {
      if (v > conv.version) conv.version = v;
    } else if (v > conv.version) {
      if (conv.versionStale) {
        gap = true; // a sync from 0 is due
      } else if (!conv.versionKnown || v === conv.version + 1 || !holdsMessages(conv)) {
        // Not known yet: what is held came while connected, so with every
        // change before this one.
        conv.version = v;
        conv.versionKnown = true;
      } else {
        gap = true;
      }
    }
    return { conv, changed, gap };
  }

  // applySync takes one page of a conversation.sync answer asked with
  // versions: the messages, then the changes. It returns the conversations
  // with news to report as delivered, whether a conversation was not known
  // yet, and whether to ask for more.
  applySync(res, versions, viewing) {
    const deliver = [];
    let unknown = false;
    const ms = res.messages || [];
    const changes = res.changes || [];
    for (const p of ms) {
      if (!this.convs.has(p.conversationId)) unknown = true;
      const r = this.merge(p, 'sync', viewing);
      if (r.deliver) deliver.push(r.conv);
    }
    for (const d of changes) this.applyChange(d, 'sync');
    if (!res.more) {
      // Every change after the versions sent is in: the conversations
      // named are known up to there at least.
      for (const [id, v] of Object.entries(versions || {})) {
        const c = this.convs.get(id);
        if (!c) continue;
        if (v > c.version) c.version = v;
        c.versionKnown = true;
        c.versionStale = false;
      }
    }
    const more = !!res.more && (ms.length > 0 || changes.length > 0);
    return { deliver, unknown, more };
  }

  // hideLocal takes a message out of my view once the server took my
  // "delete for me" (its conversation.changed may come later).
  hideLocal(conv, msgId) {
    conv.hiddenIds.add(msgId);
    const m = conv.msgs.get(msgId);
    if (m && !m.hidden) {
      hide(m);
      refreshLast(conv, m);
    }
  }

  // ---- typing

  // applyTyping takes a conversation.typing frame; it returns the
  // conversation and how long to show it (0: stopped), or null.
  applyTyping(d) {
    if (!d || !d.userId || d.userId === this.me) return null;
    const conv = this.convs.get(d.conversationId);
    if (!conv) return null;
    if (!d.typing) {
      conv.typing.delete(d.userId);
      return { conv, ttl: 0 };
    }
    const ttl = d.ttl > 0 ? d.ttl : TYPING_TTL;
    conv.typing.set(d.userId, this.now() + ttl);
    return { conv, ttl };
  }

  // typers is who is typing in conv now.
  typers(conv) { return typers(conv, this.now()); }

  // noHistory records that the server has no history of conv for me (not
  // a member, or no such conversation): there is nothing more to load.
  noHistory(conv) { conv.historyDone = true; }

  // applyList takes the server's conversation list: names, seqs, read and
  // delivered positions, unread counts and last messages. It returns the
  // conversations with news to report as delivered, and whether readers'
  // positions changed (they are kept across reloads).
  applyList(list, viewing) {
    const me = this.me;
    const deliver = [];
    let readersChanged = false;
    for (const s of list) {
      const c = this.ensure(s.conversationId, s.chatType);
      if (s.peerId) c.peerId = s.peerId;
      if (s.groupName) c.groupName = s.groupName;
      if (s.seq > c.seq) c.seq = s.seq;
      // Nothing of it held: what the list covers is left to history,
      // unless this client holds all of it (an empty conversation it opened).
      if (!c.historyDone && ![...c.msgs.values()].some((m) => m.seq)) c.baseSeq = Math.max(c.baseSeq, s.seq);
      if (s.readSeq > c.readSeq) c.readSeq = s.readSeq;
      // How far the peer of a single chat has got, as the server knows it
      // (receipts missed while away, or read on another device).
      if (s.peerDeliveredSeq > c.peerDelivered) c.peerDelivered = s.peerDeliveredSeq;
      // The list is how a device that was away learns what came meanwhile.
      if (c.chatType === SINGLE && c.peerId && s.seq > c.readSeq) deliver.push(c);
      if (s.peerReadSeq && c.peerId && s.peerReadSeq > (c.readers.get(c.peerId) || 0)) {
        c.readers.set(c.peerId, s.peerReadSeq);
        readersChanged = true;
      }
      // The server counts every message after my read position up to its
      // seq; my own messages there are not unread for me. Pushes that
      // arrived while the list was on its way are newer than that count
      // and are added, so a late answer cannot undo them.
      let own = 0;
      let newer = 0;
      let newerMention = false;
      for (const m of c.msgs.values()) {
        if (m.sendId === me && m.seq > s.readSeq && m.seq <= s.seq) own++;
        if (m.sendId !== me && m.seq > s.seq && m.seq > c.readSeq) {
          newer++;
          if (mentionsMe(m, me)) newerMention = true;
        }
      }
      const counted = c.readSeq >= s.seq ? 0 : Math.max(0, s.unread - own);
      c.unread = c.id === viewing ? 0 : counted + newer;
      // The list's "mentioned" covers up to its seq, as its count does.
      c.mentioned = c.id !== viewing && ((!!s.mentioned && c.readSeq < s.seq) || newerMention);
      if (s.lastMsg && s.lastMsg.msg) {
        // The list's last message has its msgId beside msg (the stored shape).
        const msg = { msgId: s.lastMsg.msgId, ...s.lastMsg.msg };
        const last = normalize({ ...s.lastMsg, conversationId: s.conversationId, msg }, this.now());
        if (c.hiddenIds.has(last.msgId)) last.hidden = true;
        bumpLast(c, last);
      }
      c.updatedAt = Math.max(c.updatedAt, s.updatedAt || 0);
    }
    this.listLoaded = true;
    return { deliver, readersChanged };
  }

  // ---- sending

  // queue puts a message of mine in the outbox under frame id and shows it
  // as pending; the caller sends it. extra: quote (the preview of the
  // message answered), mentions and mentionAll (group chats only), mType
  // (an image or file: text is its JSON content).
  queue(conv, id, text, extra = {}) {
    const item = {
      id,
      convId: conv.id,
      chatType: conv.chatType,
      recvId: recvIdOf(conv),
      mType: extra.mType || 0,
      content: text,
      time: this.now(),
      failed: false,
      afterSeq: highestSeq(conv),
    };
    if (extra.quote && extra.quote.msgId) item.quote = extra.quote;
    if (conv.chatType === GROUP && extra.mentions && extra.mentions.length) item.mentions = [...extra.mentions];
    if (conv.chatType === GROUP && extra.mentionAll) item.mentionAll = true;
    this.outbox.set(id, item);
    this.addPending(item);
    return item;
  }

  addPending(item) {
    const conv = this.ensure(item.convId, item.chatType);
    const m = setState({
      key: 'f:' + item.id,
      msgId: '',
      frameId: item.id,
      convId: item.convId,
      sendId: this.me,
      seq: 0,
      sendTime: item.time,
      status: item.failed ? 'failed' : 'pending',
      afterSeq: item.afterSeq || highestSeq(conv),
    }, { content: item.content, mType: item.mType, quote: item.quote, mentions: item.mentions, mentionAll: item.mentionAll });
    conv.msgs.set(m.key, m);
    bumpLast(conv, m);
  }

  // acked takes the server's ack of an outbox item: the message is known by
  // its msgId from now on (once, if a push or sync brought it first).
  acked(item, ack) {
    this.outbox.delete(item.id);
    const conv = this.ensure(ack.conversationId || item.convId, item.chatType);
    const local = conv.msgs.get('f:' + item.id);
    conv.msgs.delete('f:' + item.id);
    const known = ack.msgId && conv.msgs.get(ack.msgId);
    if (known) {
      if (known.status === 'pending') known.status = 'sent';
      known.frameId = item.id;
    } else if (local) {
      local.msgId = ack.msgId || '';
      local.key = ack.msgId || local.key;
      local.status = 'sent';
      conv.msgs.set(local.key, local);
    }
    return conv;
  }

  // failed records that the server refused an outbox item for good.
  failed(item, error) {
    item.failed = true;
    item.error = error;
    const m = this.pendingMessage(item.convId, item.id);
    if (m) { m.status = 'failed'; m.error = error; }
  }

  // retry makes a failed outbox item pending again and returns it (null if
  // it is gone).
  retry(frameId) {
    const item = this.outbox.get(frameId);
    if (!item) return null;
    item.failed = false;
    item.error = '';
    const m = this.pendingMessage(item.convId, frameId);
    if (m) m.status = 'pending';
    return item;
  }

  pendingMessage(convId, frameId) {
    const conv = this.convs.get(convId);
    return conv && conv.msgs.get('f:' + frameId);
  }

  // unsequenced reports whether some acked message of mine has no seq yet.
  unsequenced() {
    for (const c of this.convs.values()) if (hasUnsequenced(c, this.me)) return true;
    return false;
  }

  // ---- reading, receipts, delivery

  // setRead moves my read position in conv to seq and returns the one
  // before, for unsetRead should the server not take it.
  setRead(conv, seq) {
    const prev = conv.readSeq;
    conv.readSeq = seq;
    conv.unread = 0;
    conv.mentioned = false;
    return prev;
  }

  unsetRead(conv, seq, prev) {
    if (conv.readSeq === seq) conv.readSeq = prev; // tried again on the next occasion
  }

  // clearUnread reports whether there was a count to clear.
  clearUnread(conv) {
    if (!conv.unread && !conv.mentioned) return false;
    conv.unread = 0;
    conv.mentioned = false;
    return true;
  }

  setDeliveredSent(conv, seq) {
    const prev = conv.deliveredSent;
    conv.deliveredSent = seq;
    return prev;
  }

  unsetDeliveredSent(conv, seq, prev) {
    if (conv.deliveredSent === seq) conv.deliveredSent = prev;
  }

  // applyReceipt takes a conversation.read notice. mine: I read it (on
  // another device, or this one); refresh: then only part of what was
  // unread is read, and the server's count is the exact one.
  applyReceipt(d) {
    const conv = this.convs.get(d.conversationId);
    if (!conv) return null;
    if (d.readerId === this.me) {
      if (d.readSeq > conv.readSeq) conv.readSeq = d.readSeq;
      let refresh = false;
      if (conv.readSeq >= conv.seq) {
        conv.unread = 0;
        conv.mentioned = false;
      } else if (conv.unread || conv.mentioned) refresh = true;
      return { conv, mine: true, refresh };
    }
    const prev = conv.readers.get(d.readerId) || 0;
    if (d.readSeq > prev) conv.readers.set(d.readerId, d.readSeq);
    for (const id of d.msgIds || []) {
      let s = conv.readIds.get(id);
      if (!s) conv.readIds.set(id, (s = new Set()));
      s.add(d.readerId);
    }
    return { conv, mine: false, refresh: false };
  }

  // applyDelivered takes a conversation.delivered notice; it returns the
  // conversation if it moved the peer's position.
  applyDelivered(d) {
    const conv = this.convs.get(d.conversationId);
    if (!conv || d.userId === this.me || !(d.deliveredSeq > conv.peerDelivered)) return null;
    conv.peerDelivered = d.deliveredSeq;
    return conv;
  }

  // readsSnapshot is the readers' positions to keep across reloads: receipts
  // are pushed once, and the list carries only a single chat peer's.
  readsSnapshot() {
    const out = {};
    for (const c of this.convs.values()) {
      if (c.readers.size) out[c.id] = Object.fromEntries(c.readers);
    }
    return out;
  }

  // restore brings back what a reload kept: readers' positions and the
  // messages not acked when the page closed.
  restore(reads, outbox) {
    for (const [id, rs] of Object.entries(reads || {})) {
      const c = this.ensure(id);
      for (const [u, seq] of Object.entries(rs)) c.readers.set(u, seq);
    }
    for (const item of outbox || []) {
      if (!item || !item.id || !item.convId) continue;
      item.sending = false;
      this.outbox.set(item.id, item);
      const c = this.ensure(item.convId, item.chatType);
      if (c.chatType === SINGLE) c.peerId = item.recvId;
      this.addPending(item);
    }
  }

  // ---- presence

  presenceIds() {
    const ids = new Set();
    for (const c of this.convs.values()) if (c.chatType === SINGLE && c.peerId) ids.add(c.peerId);
    return [...ids].slice(0, MAX_PRESENCE_IDS);
  }

  setOnline(online) {
    for (const [u, on] of Object.entries(online || {})) this.online.set(u, !!on);
  }

  // ---- conversations and groups

  // open makes id the open conversation; it returns it (null if unknown)
  // and whether another one was open before.
  open(id) {
    const conv = this.convs.get(id);
    if (!conv) return null;
    const switched = this.openId !== id;
    this.openId = id;
    conv.unread = 0;
    conv.mentioned = false;
    return { conv, switched };
  }

  close() { this.openId = null; }

  // startSingle is the single chat with peer, known from now on.
  startSingle(peer) {
    const conv = this.ensure(singleConvId(this.me, peer), SINGLE);
    conv.peerId = peer;
    return conv;
  }

  setGroup(g) { this.groups.set(g.groupId, g); }

  groupLoaded(conv, g) {
    this.setGroup(g);
    if (g.name) conv.groupName = g.name;
  }

  // groupCreated records a group I made: it is empty, so all of it is held.
  groupCreated(g) {
    this.setGroup(g);
    const conv = this.ensure(g.groupId, GROUP);
    conv.groupName = g.name;
    conv.updatedAt = g.createdAt || this.now();
    conv.historyDone = true;
    conv.versionKnown = true; // no message, so no change either
    return conv;
  }

  // isOwner says whether I own the group conv (and so may recall any of
  // its messages, and @all).
  isOwner(conv) {
    const g = conv.chatType === GROUP && this.groups.get(conv.id);
    return !!g && g.owner === this.me;
  }

  // forgetGroup drops a group I left or was removed from; it reports
  // whether it was the open conversation.
  forgetGroup(id) {
    this.groups.delete(id);
    this.convs.delete(id);
    return this.openId === id;
  }
}

// placeAfter: my message m has its seq now; messages I sent after it on
// this device that have none yet go after it too (each was placed after
// the newest seq held when it was sent, which may be older than m's).
function placeAfter(conv, m) {
  for (const o of conv.msgs.values()) {
    if (!o.seq && o.frameId && o.sendTime >= m.sendTime && (o.afterSeq || 0) < m.seq) o.afterSeq = m.seq;
  }
}

// chatData is the data of the conversation.chat frame that sends item.
export function chatData(item) {
  const msg = { mType: item.mType || 0, content: item.content };
  if (item.quote && item.quote.msgId) msg.quote = { msgId: item.quote.msgId };
  if (item.mentions && item.mentions.length) msg.mentions = item.mentions;
  if (item.mentionAll) msg.mentionAll = true;
  return { chatType: item.chatType, recvId: item.recvId, conversationId: item.convId, msg };
}
