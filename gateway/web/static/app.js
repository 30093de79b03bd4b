// Easy Chat browser client. Plain JavaScript, no build step, one origin:
// the websocket at /ws (token offered as the second Sec-WebSocket-Protocol,
// after "easychat") and the HTTP API at POST /api/<function>.
//
// Message state, per conversation, is a map keyed by msgId (or by the client
// frame id while a sent message is not acked yet): pushes, sync answers and
// history pages all merge into it, so a message shows exactly once whatever
// path brought it, and the view sorts by seq.
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
'use strict';

(() => {
  const FT = { DATA: 0, PING: 1, ACK: 2, NOACK: 3, ERROR: 9 };
  const GROUP = 1;
  const SINGLE = 2;
  const SESSION_KEY = 'easychat.session';
  const ID_RE = /^[A-Za-z0-9][A-Za-z0-9.-]{2,31}$/;
  const HISTORY_PAGE = 30;
  const PRESENCE_EVERY = 20000;
  const PING_EVERY = 25000;
  const PING_TIMEOUT = 10000;
  const REQUEST_TIMEOUT = 20000;

  const $ = (id) => document.getElementById(id);
  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  };

  // ---- state ---------------------------------------------------------------

  const state = {
    session: null, // {userId, nickname, token}
    convs: new Map(), // conversationId → conv (see newConv)
    openId: null,
    online: new Map(), // userId → bool
    outbox: new Map(), // frame id → {id, convId, chatType, recvId, content, time, failed}
    groups: new Map(), // groupId → {name, owner, members}
    names: new Map(), // userId → nickname ('' when the user has none, or is unknown)
    listLoaded: false,
  };

  function me() { return state.session ? state.session.userId : ''; }

  function newConv(id, chatType) {
    return {
      id,
      chatType,
      peerId: chatType === SINGLE ? peerOf(id) : '',
      groupName: '',
      seq: 0, // newest seq the server has told us about
      baseSeq: 0, // messages up to here are left to history (loaded lazily)
      readSeq: 0, // how far I have read
      unread: 0,
      lastMsg: null, // {sendId, content, sendTime, seq}
      updatedAt: 0,
      msgs: new Map(), // msgId (or "f:"+frame id) → message
      historyDone: false,
      loadingOlder: false,
      readers: new Map(), // readerId → readSeq (receipts)
      peerDelivered: 0, // single chat: the peer's devices hold everything up to here
      deliveredSent: 0, // what this device last reported as received
      readIds: new Map(), // msgId → Set(readerId) (receipts)
    };
  }

  function peerOf(convId) {
    const [a, b] = convId.split('_');
    return a === me() ? b : a;
  }

  function singleConvId(a, b) { return a < b ? a + '_' + b : b + '_' + a; }

  function ensureConv(id, chatType) {
    let c = state.convs.get(id);
    if (!c) {
      c = newConv(id, chatType || (id.includes('_') ? SINGLE : GROUP));
      state.convs.set(id, c);
    }
    return c;
  }

  // nameOf is a user's display name: the nickname, else the id.
  function nameOf(u) {
    if (u === me() && state.session.nickname) return state.session.nickname;
    return state.names.get(u) || u;
  }

  // loadNames asks the user function for the nicknames of ids not asked yet.
  let namesAsked = new Set();
  function loadNames(ids) {
    const want = [...new Set(ids)].filter((u) => u && !namesAsked.has(u) && u !== me()).slice(0, 200);
    if (!want.length) return;
    for (const u of want) namesAsked.add(u);
    api('user', { action: 'profiles', userIds: want }).then((res) => {
      for (const p of res.profiles || []) if (p.nickname) state.names.set(p.userId, p.nickname);
      render();
    }, () => { for (const u of want) namesAsked.delete(u); });
  }

  function convTitle(c) {
    if (c.chatType === SINGLE) return nameOf(c.peerId);
    return c.groupName || (state.groups.get(c.id) || {}).name || 'Group';
  }

  function newId(prefix) {
    const b = new Uint8Array(8);
    crypto.getRandomValues(b);
    return prefix + Date.now().toString(36) + '-' + Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  }

  // ---- storage ---------------------------------------------------------------

  function load(key, def) {
    try {
      const v = localStorage.getItem(key);
      return v ? JSON.parse(v) : def;
    } catch {
      return def;
    }
  }
  function save(key, v) {
    try { localStorage.setItem(key, JSON.stringify(v)); } catch { /* full or disabled */ }
  }
  const outboxKey = () => 'easychat.outbox.' + me();
  const readsKey = () => 'easychat.reads.' + me();

  function saveOutbox() { save(outboxKey(), [...state.outbox.values()]); }

  // Receipts are pushed once and only the conversation list carries a read
  // position (the peer's, in a single chat), so the readers' positions are
  // kept here to show group ticks after a reload.
  let readsTimer = 0;
  function saveReads() {
    clearTimeout(readsTimer);
    readsTimer = setTimeout(() => {
      const out = {};
      for (const c of state.convs.values()) {
        if (c.readers.size) out[c.id] = Object.fromEntries(c.readers);
      }
      save(readsKey(), out);
    }, 300);
  }

  // ---- HTTP API --------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, msg) { super(msg); this.status = status; }
  }

  async function api(fn, body) {
    const headers = { 'Content-Type': 'application/json' };
    const withToken = !!state.session;
    if (withToken) headers.Authorization = 'Bearer ' + state.session.token;
    let res;
    try {
      res = await fetch('/api/' + fn, { method: 'POST', headers, body: JSON.stringify(body) });
    } catch {
      throw new ApiError(0, 'The server cannot be reached.');
    }
    let data = {};
    try { data = await res.json(); } catch { /* not JSON */ }
    if (!res.ok) {
      if (res.status === 401 && withToken && state.session) {
        logout('Your session has expired. Please sign in again.');
      }
      throw new ApiError(res.status, data.error || res.statusText || 'request failed');
    }
    return data;
  }

  // ---- websocket -------------------------------------------------------------

  class FrameError extends Error {
    constructor(msg) { super(msg); this.frame = true; }
  }

  // Conn is one logical connection: it reconnects with exponential backoff
  // (0.5 s doubling to 15 s, ±25 % jitter) until stopped, matches answers to
  // requests by frame id, and notices a dead socket with pings.
  class Conn {
    constructor(h) {
      this.h = h;
      this.ws = null;
      this.pending = new Map();
      this.attempt = 0;
      this.timer = 0;
      this.pingTimer = 0;
      this.pongTimer = 0;
      this.stopped = true;
      this.state = 'offline';
      this.nextAt = 0;
    }

    isOpen() { return !!this.ws && this.ws.readyState === WebSocket.OPEN && this.state === 'online'; }

    start() {
      this.stopped = false;
      this.attempt = 0;
      this.open();
    }

    stop() {
      this.stopped = true;
      clearTimeout(this.timer);
      const ws = this.ws;
      this.closed();
      if (ws) ws.close(1000, 'logout');
      this.setState('offline');
    }

    reconnectNow() {
      if (this.stopped || this.ws) return;
      clearTimeout(this.timer);
      this.attempt = 0;
      this.open();
    }

    setState(s) {
      this.state = s;
      this.h.onState(s);
    }

    open() {
      clearTimeout(this.timer);
      this.setState('connecting');
      const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws';
      let ws;
      try {
        ws = new WebSocket(url, ['easychat', state.session.token]);
      } catch {
        this.retry();
        return;
      }
      this.ws = ws;
      let opened = false;
      ws.onopen = () => {
        if (ws !== this.ws) return;
        opened = true;
        this.attempt = 0;
        this.setState('online');
        this.schedulePing();
        this.h.onOpen();
      };
      ws.onmessage = (e) => {
        if (ws !== this.ws) return;
        this.alive();
        this.onFrame(e.data);
      };
      ws.onclose = () => {
        if (ws !== this.ws) return;
        this.closed();
        this.setState('offline');
        if (!this.stopped) this.retry(opened);
      };
    }

    // closed forgets the socket and fails what waited for it.
    closed() {
      clearTimeout(this.pingTimer);
      clearTimeout(this.pongTimer);
      const ws = this.ws;
      this.ws = null;
      if (ws) { ws.onopen = ws.onmessage = ws.onclose = null; }
      for (const [, p] of this.pending) {
        clearTimeout(p.timer);
        p.reject(new Error('connection lost'));
      }
      this.pending.clear();
    }

    retry(wasOpen) {
      const delay = Math.min(15000, 500 * 2 ** this.attempt) * (0.75 + Math.random() * 0.5);
      this.attempt++;
      this.nextAt = Date.now() + delay;
      this.timer = setTimeout(() => this.open(), delay);
      this.h.onRetry(this.attempt, wasOpen);
    }

    // drop treats the socket as dead now (no answer to a ping).
    drop() {
      const ws = this.ws;
      if (!ws) return;
      this.closed();
      try { ws.close(); } catch { /* already closing */ }
      this.setState('offline');
      if (!this.stopped) this.retry(true);
    }

    schedulePing() {
      clearTimeout(this.pingTimer);
      this.pingTimer = setTimeout(() => {
        if (!this.isOpen()) return;
        this.ws.send(JSON.stringify({ frameType: FT.PING, id: newId('p') }));
        this.pongTimer = setTimeout(() => this.drop(), PING_TIMEOUT);
      }, PING_EVERY);
    }

    alive() {
      clearTimeout(this.pongTimer);
      this.schedulePing();
    }

    send(f) {
      if (!this.isOpen()) return false;
      this.ws.send(JSON.stringify(f));
      return true;
    }

    // request sends a data frame and resolves with the answer's data: the
    // ack (ack modes only/rigor) or a data frame with the same id (mode
    // none, and user.online). An error frame rejects with FrameError.
    request(method, data, id, timeout) {
      id = id || newId('r');
      return new Promise((resolve, reject) => {
        if (!this.isOpen()) {
          reject(new Error('offline'));
          return;
        }
        const timer = setTimeout(() => {
          this.pending.delete(id);
          reject(new Error('timeout'));
        }, timeout || REQUEST_TIMEOUT);
        this.pending.set(id, { method, resolve, reject, timer });
        this.ws.send(JSON.stringify({ frameType: FT.DATA, id, method, data }));
      });
    }

    onFrame(text) {
      let f;
      try { f = JSON.parse(text); } catch { return; }
      const p = f.id ? this.pending.get(f.id) : null;
      const settle = (fn) => {
        this.pending.delete(f.id);
        clearTimeout(p.timer);
        fn();
      };
      switch (f.frameType) {
        case FT.PING:
          return;
        case FT.ACK:
          // Echo acks: in the gateway's "rigor" mode the ack is resent
          // until echoed; other modes ignore the echo.
          this.send({ frameType: FT.ACK, id: f.id });
          if (p) settle(() => p.resolve(f.data || {}));
          return;
        case FT.ERROR:
          if (p) settle(() => p.reject(new FrameError(f.errMsg || 'error')));
          else console.warn('server error frame', f);
          return;
        default:
          if (p && f.method === p.method) {
            settle(() => p.resolve(f.data || {}));
            return;
          }
          this.h.onPush(f);
      }
    }
  }

  const conn = new Conn({
    onState: () => renderConn(),
    onOpen: () => onConnected(),
    onRetry: (attempt, wasOpen) => {
      renderConn();
      // A socket that never opens may be a rejected token: check it over
      // HTTP (a 401 there logs out).
      if (!wasOpen && attempt >= 2 && attempt % 2 === 0) api('user', { action: 'me' }).catch(() => {});
    },
    onPush: (f) => onPush(f),
  });

  // ---- messages --------------------------------------------------------------

  function normalize(p) {
    return {
      key: p.msg.msgId,
      msgId: p.msg.msgId,
      frameId: '',
      convId: p.conversationId,
      sendId: p.sendId,
      seq: p.seq || 0,
      sendTime: p.sendTime || Date.now(),
      content: p.msg.content,
      mType: p.msg.mType || 0,
      status: '',
    };
  }

  // mergeMessage adds the message of a push/sync/history item unless it is
  // known (by msgId); it fills in the seq of a known message that lacked it.
  // source: "push" | "sync" | "history". It returns the conversation.
  function mergeMessage(p, source) {
    const conv = ensureConv(p.conversationId, p.chatType);
    const id = p.msg && p.msg.msgId;
    if (!id) return conv;
    // A conversation first seen by this push: older messages are history,
    // unless this client holds all of it already (an empty one it opened).
    const fresh = !conv.msgs.size && source === 'push' && !conv.baseSeq && !conv.historyDone;
    let m = conv.msgs.get(id);
    if (m) {
      if (!m.seq && p.seq) m.seq = p.seq;
      if (m.status === 'pending') m.status = 'sent';
    } else {
      m = normalize(p);
      if (m.sendId === me()) m.status = 'sent';
      conv.msgs.set(id, m);
      if (fresh && p.seq > 1) conv.baseSeq = p.seq - 1; // older ones come with history
      // Count it unread only if it is newer than what the server's count
      // (from the list) already covered.
      if (source !== 'history' && m.seq > conv.seq && m.sendId !== me() && m.seq > conv.readSeq && !isViewing(conv)) {
        conv.unread++;
      }
    }
    if (m.seq > conv.seq) conv.seq = m.seq;
    if (m.seq === 1) conv.historyDone = true;
    bumpLast(conv, m);
    if (source !== 'history' && conv.chatType === SINGLE && m.sendId !== me()) reportDeliveredSoon(conv);
    return conv;
  }

  function bumpLast(conv, m) {
    const l = conv.lastMsg;
    const newer = !l || (m.seq && l.seq ? m.seq >= l.seq : m.sendTime >= l.sendTime);
    if (newer) conv.lastMsg = { sendId: m.sendId, content: m.content, sendTime: m.sendTime, seq: m.seq };
    conv.updatedAt = Math.max(conv.updatedAt, m.sendTime || 0);
  }

  function lowestSeq(conv) {
    let low = 0;
    for (const m of conv.msgs.values()) if (m.seq && (!low || m.seq < low)) low = m.seq;
    return low;
  }

  function highestSeq(conv) {
    let hi = 0;
    for (const m of conv.msgs.values()) if (m.seq > hi) hi = m.seq;
    return hi;
  }

  // knownSeq is the seq up to which this client holds every message it
  // wants (a gap, e.g. a missed push, stops it): conversation.sync sends
  // what lies beyond.
  function knownSeq(conv) {
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

  // sortedMessages orders by seq. A message of mine whose seq is not known
  // yet goes right after the newest one I held when I sent it (afterSeq),
  // until a sync tells its real place.
  function sortedMessages(conv) {
    const key = (m) => (m.seq ? m.seq : (m.afterSeq || 0) + 0.5);
    return [...conv.msgs.values()].sort((a, b) => (key(a) - key(b)) || (a.sendTime - b.sendTime));
  }

  function readersOf(conv, m) {
    const r = new Set(m.msgId ? conv.readIds.get(m.msgId) || [] : []);
    if (m.seq) for (const [u, s] of conv.readers) if (s >= m.seq) r.add(u);
    r.delete(me());
    return r;
  }

  function ownStatus(conv, m) {
    if (m.status === 'pending' || m.status === 'failed') return m.status;
    if (readersOf(conv, m).size) return 'read';
    return m.seq && m.seq <= conv.peerDelivered ? 'delivered' : 'sent';
  }

  // ---- sending -----------------------------------------------------------------

  function sendText(conv, text) {
    const id = newId('m');
    const item = {
      id,
      convId: conv.id,
      chatType: conv.chatType,
      recvId: conv.chatType === SINGLE ? conv.peerId : conv.id,
      content: text,
      time: Date.now(),
      failed: false,
      afterSeq: highestSeq(conv),
    };
    state.outbox.set(id, item);
    saveOutbox();
    addPendingMessage(item);
    transmit(item);
    stickToBottom = true;
    render();
  }

  function addPendingMessage(item) {
    const conv = ensureConv(item.convId, item.chatType);
    const m = {
      key: 'f:' + item.id,
      msgId: '',
      frameId: item.id,
      convId: item.convId,
      sendId: me(),
      seq: 0,
      sendTime: item.time,
      content: item.content,
      mType: 0,
      status: item.failed ? 'failed' : 'pending',
      afterSeq: item.afterSeq || highestSeq(conv),
    };
    conv.msgs.set(m.key, m);
    bumpLast(conv, m);
  }

  // transmit sends an outbox item; it is resent with the same frame id after
  // a reconnect until acked, and the server stores it once.
  function transmit(item) {
    if (item.sending || item.failed || !conn.isOpen()) return;
    item.sending = true;
    const data = {
      chatType: item.chatType,
      recvId: item.recvId,
      conversationId: item.convId,
      msg: { mType: 0, content: item.content },
    };
    conn.request('conversation.chat', data, item.id).then((ack) => {
      item.sending = false;
      onChatAck(item, ack);
    }, (err) => {
      item.sending = false;
      if (err.frame && !/retry|unavailable|busy|timeout|shutting down/i.test(err.message)) {
        item.failed = true;
        item.error = err.message;
        saveOutbox();
        const conv = state.convs.get(item.convId);
        const m = conv && conv.msgs.get('f:' + item.id);
        if (m) { m.status = 'failed'; m.error = err.message; }
        render();
        return;
      }
      // Lost connection: resent on reconnect. Otherwise retry shortly.
      if (conn.isOpen()) setTimeout(() => transmit(item), 2000);
    });
  }

  function onChatAck(item, ack) {
    state.outbox.delete(item.id);
    saveOutbox();
    const conv = ensureConv(ack.conversationId || item.convId, item.chatType);
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
    // Learn the seq the server gave it (its place, and read positions) a
    // moment later.
    resolveTries = 0;
    scheduleSync(1000);
    render();
  }

  function retryFailed(frameId) {
    const item = state.outbox.get(frameId);
    if (!item) return;
    item.failed = false;
    item.error = '';
    saveOutbox();
    const conv = state.convs.get(item.convId);
    const m = conv && conv.msgs.get('f:' + frameId);
    if (m) m.status = 'pending';
    transmit(item);
    render();
  }

  function flushOutbox() {
    for (const item of state.outbox.values()) transmit(item);
  }

  // ---- sync, list, history ---------------------------------------------------

  let syncing = null;
  let syncAgain = false;
  let syncTimer = 0;
  let resolveTries = 0;

  // unsequenced reports whether some acked message of mine has no seq yet
  // (it is stored a moment after the ack).
  function unsequenced() {
    for (const c of state.convs.values()) {
      for (const m of c.msgs.values()) if (m.sendId === me() && !m.seq && m.status === 'sent') return true;
    }
    return false;
  }

  function scheduleSync(delay) {
    clearTimeout(syncTimer);
    syncTimer = setTimeout(() => { syncNow().catch(() => {}); }, delay);
  }

  // syncNow asks for everything after what this client holds, per
  // conversation, until the server says there is no more.
  function syncNow() {
    if (syncing) {
      syncAgain = true;
      return syncing;
    }
    syncing = (async () => {
      do {
        syncAgain = false;
        for (let page = 0; page < 100; page++) {
          const seqs = {};
          for (const c of state.convs.values()) seqs[c.id] = knownSeq(c);
          const res = await conn.request('conversation.sync', { seqs, limit: 200 });
          let unknown = false;
          for (const p of res.messages || []) {
            if (!state.convs.has(p.conversationId)) unknown = true;
            mergeMessage(p, 'sync');
          }
          if (unknown) refreshList().catch(() => {});
          if (!res.more || !(res.messages || []).length) break;
        }
      } while (syncAgain);
    })().finally(() => {
      syncing = null;
      // Until my acked messages have their seqs (their place in the
      // conversation), ask again, backing off.
      if (unsequenced() && resolveTries < 8) scheduleSync(1000 * 2 ** resolveTries++);
      else if (!unsequenced()) resolveTries = 0;
      render();
      markReadSoon();
    });
    return syncing;
  }

  let listing = null;
  function refreshList() {
    if (listing) return listing;
    listing = api('conversation', { action: 'list' }).then((res) => {
      for (const s of res.conversations || []) {
        const c = ensureConv(s.conversationId, s.chatType);
        if (s.peerId) c.peerId = s.peerId;
        if (s.groupName) c.groupName = s.groupName;
        if (s.seq > c.seq) c.seq = s.seq;
        // Nothing of it held: what the list covers is left to history,
        // unless this client holds all of it (an empty conversation it opened).
        if (!c.historyDone && ![...c.msgs.values()].some((m) => m.seq)) c.baseSeq = Math.max(c.baseSeq, s.seq);
        if (s.readSeq > c.readSeq) c.readSeq = s.readSeq;
        // How far the peer of a single chat has read, as the server knows it
        // (receipts missed while away, or read on another device).
        if (s.peerDeliveredSeq > c.peerDelivered) c.peerDelivered = s.peerDeliveredSeq;
        // The list is how a device that was away learns what came meanwhile.
        if (c.chatType === SINGLE && c.peerId && s.seq > c.readSeq) reportDeliveredSoon(c);
        if (s.peerReadSeq && c.peerId && s.peerReadSeq > (c.readers.get(c.peerId) || 0)) {
          c.readers.set(c.peerId, s.peerReadSeq);
          saveReads();
        }
        // The server counts every message after my read position up to its
        // seq; my own messages there are not unread for me. Pushes that
        // arrived while the list was on its way are newer than that count
        // and are added, so a late answer cannot undo them.
        let own = 0;
        let newer = 0;
        for (const m of c.msgs.values()) {
          if (m.sendId === me() && m.seq > s.readSeq && m.seq <= s.seq) own++;
          if (m.sendId !== me() && m.seq > s.seq && m.seq > c.readSeq) newer++;
        }
        const counted = c.readSeq >= s.seq ? 0 : Math.max(0, s.unread - own);
        c.unread = isViewing(c) ? 0 : counted + newer;
        if (s.lastMsg && s.lastMsg.msg) {
          bumpLast(c, normalize({ ...s.lastMsg, conversationId: s.conversationId }));
        }
        c.updatedAt = Math.max(c.updatedAt, s.updatedAt || 0);
      }
      state.listLoaded = true;
      const people = [];
      for (const c of state.convs.values()) {
        if (c.peerId) people.push(c.peerId);
        if (c.lastMsg) people.push(c.lastMsg.sendId);
      }
      loadNames(people);
      render();
      refreshPresence();
    }).finally(() => { listing = null; });
    return listing;
  }

  async function loadOlder(conv) {
    if (conv.loadingOlder || conv.historyDone) return;
    conv.loadingOlder = true;
    renderOlder();
    try {
      const before = lowestSeq(conv);
      const res = await api('conversation', {
        action: 'history', conversationId: conv.id, before, limit: HISTORY_PAGE,
      });
      const ms = res.messages || [];
      for (const p of ms) mergeMessage(p, 'history');
      if (ms.length < HISTORY_PAGE || lowestSeq(conv) === 1) conv.historyDone = true;
      if (!ms.length && !before) conv.historyDone = true;
      keepScrollOnPrepend = true;
    } catch (e) {
      if (e.status === 403 || e.status === 404) conv.historyDone = true;
    } finally {
      conv.loadingOlder = false;
    }
    render();
    markReadSoon();
  }

  async function loadGroup(conv) {
    try {
      const g = await api('group', { action: 'members', groupId: conv.id });
      state.groups.set(g.groupId, g);
      loadNames(g.members);
      if (g.name) conv.groupName = g.name;
      render();
    } catch { /* shown as unknown */ }
  }

  // ---- receipts and reading ---------------------------------------------------

  function isViewing(conv) {
    return state.openId === conv.id && document.visibilityState === 'visible' && !$('app').hidden;
  }

  let markTimer = 0;
  function markReadSoon() {
    clearTimeout(markTimer);
    markTimer = setTimeout(markRead, 150);
  }

  // markRead tells the server I have read the open conversation up to its
  // newest loaded message. The msgIds let group senders get a receipt.
  function markRead() {
    const conv = state.convs.get(state.openId);
    if (!conv || !isViewing(conv)) return;
    const hi = highestSeq(conv);
    if (hi <= conv.readSeq) {
      if (conv.unread) { conv.unread = 0; render(); }
      return;
    }
    if (!conn.isOpen()) return;
    const ids = [];
    for (const m of conv.msgs.values()) {
      if (m.seq > conv.readSeq && m.sendId !== me() && m.msgId) ids.push(m.msgId);
    }
    const prev = conv.readSeq;
    conv.readSeq = hi;
    conv.unread = 0;
    const data = {
      chatType: conv.chatType,
      recvId: conv.chatType === SINGLE ? conv.peerId : conv.id,
      conversationId: conv.id,
      msgIds: ids.slice(-100), // the server takes at most 100; readSeq covers the rest
      readSeq: hi,
    };
    conn.request('conversation.markChat', data).catch(() => {
      if (conv.readSeq === hi) conv.readSeq = prev; // tried again on the next occasion
    });
    render();
  }

  // reportDelivered tells the server how far this device holds the single
  // chats that received messages, so their senders see "delivered". Bursts
  // of pushes make one report per conversation.
  const deliveredDue = new Set();
  let deliveredTimer = 0;
  function reportDeliveredSoon(conv) {
    deliveredDue.add(conv.id);
    clearTimeout(deliveredTimer);
    deliveredTimer = setTimeout(reportDelivered, 150);
  }

  function reportDelivered() {
    if (!conn.isOpen()) return; // a reconnect syncs, and reports again
    for (const id of deliveredDue) {
      const conv = state.convs.get(id);
      if (!conv || !conv.peerId) continue;
      const seq = knownSeq(conv);
      // Read covers delivered: the read receipt tells the sender.
      if (seq <= Math.max(conv.deliveredSent, conv.readSeq)) continue;
      const prev = conv.deliveredSent;
      conv.deliveredSent = seq;
      conn.request('conversation.markDelivered', { chatType: SINGLE, recvId: conv.peerId, conversationId: conv.id, seq })
        .catch(() => { if (conv.deliveredSent === seq) conv.deliveredSent = prev; });
    }
    deliveredDue.clear();
  }

  // learnOwnSeqs syncs soon when a message of mine has no seq yet: a
  // receipt's position cannot be compared with it until it has one.
  function learnOwnSeqs(conv) {
    for (const m of conv.msgs.values()) {
      if (m.sendId === me() && !m.seq && m.status === 'sent') { scheduleSync(200); return; }
    }
  }

  function onDelivered(d) {
    const conv = state.convs.get(d.conversationId);
    if (!conv || d.userId === me() || !(d.deliveredSeq > conv.peerDelivered)) return;
    conv.peerDelivered = d.deliveredSeq;
    learnOwnSeqs(conv);
    render();
  }

  function onReceipt(d) {
    const conv = state.convs.get(d.conversationId);
    if (!conv) return;
    if (d.readerId === me()) {
      // Read on another device of mine (or this one): the server's count
      // is exact when only part of the conversation was read.
      if (d.readSeq > conv.readSeq) conv.readSeq = d.readSeq;
      if (conv.readSeq >= conv.seq) conv.unread = 0;
      else if (conv.unread) refreshList().catch(() => {});
      render();
      return;
    }
    const prev = conv.readers.get(d.readerId) || 0;
    if (d.readSeq > prev) conv.readers.set(d.readerId, d.readSeq);
    for (const id of d.msgIds || []) {
      let s = conv.readIds.get(id);
      if (!s) conv.readIds.set(id, (s = new Set()));
      s.add(d.readerId);
    }
    saveReads();
    learnOwnSeqs(conv);
    render();
  }

  // ---- presence -----------------------------------------------------------------

  let presenceTimer = 0;
  function refreshPresence() {
    clearTimeout(presenceTimer);
    presenceTimer = setTimeout(refreshPresence, PRESENCE_EVERY);
    if (!conn.isOpen()) return;
    const ids = new Set();
    for (const c of state.convs.values()) if (c.chatType === SINGLE && c.peerId) ids.add(c.peerId);
    if (!ids.size) return;
    conn.request('user.online', { userIds: [...ids].slice(0, 100) }).then((d) => {
      for (const [u, on] of Object.entries(d.online || {})) state.online.set(u, !!on);
      render();
    }, () => {});
  }

  // ---- incoming frames ------------------------------------------------------------

  function onPush(f) {
    if (f.method === 'push' && f.data && f.data.msg) {
      const known = state.convs.has(f.data.conversationId);
      const before = known ? knownSeq(state.convs.get(f.data.conversationId)) : 0;
      const conv = mergeMessage(f.data, 'push');
      if (!known || (conv.chatType === GROUP && !conv.groupName)) refreshList().catch(() => {});
      // A gap (a push lost while reconnecting): fetch what lies between.
      if (known && f.data.seq > before + 1) scheduleSync(300);
      if (f.data.sendId !== me()) state.online.set(f.data.sendId, true);
      loadNames([f.data.sendId]);
      stickToBottom = stickToBottom || atBottom();
      render();
      markReadSoon();
    } else if (f.method === 'conversation.read' && f.data) {
      onReceipt(f.data);
    } else if (f.method === 'conversation.delivered' && f.data) {
      onDelivered(f.data);
    } else if (f.method === 'group.changed' && f.data) {
      onGroupChange(f.data);
    }
  }

  // A group I am in changed members (or I was added to a new one, or removed).
  function onGroupChange(d) {
    if ((d.removed || []).includes(me())) {
      forgetGroup(d.groupId);
      return;
    }
    refreshList().catch(() => {});
    const conv = state.convs.get(d.groupId);
    if (conv && state.openId === d.groupId) loadGroup(conv);
  }

  function forgetGroup(id) {
    state.groups.delete(id);
    state.convs.delete(id);
    if (state.openId === id) closeConv();
    render();
  }

  async function onConnected() {
    flushOutbox();
    try {
      await refreshList();
    } catch { /* the socket works; the list comes with the next reconnect */ }
    try {
      await syncNow();
    } catch { /* reconnect will sync */ }
    refreshPresence();
    markReadSoon();
  }

  // ---- rendering --------------------------------------------------------------

  let renderQueued = false;
  let stickToBottom = false;
  let keepScrollOnPrepend = false;

  function render() {
    if (renderQueued) return;
    renderQueued = true;
    requestAnimationFrame(() => {
      renderQueued = false;
      renderList();
      renderChat();
    });
  }

  function renderConn() {
    const b = $('conn');
    b.dataset.state = conn.state;
    let text = 'Connecting…';
    if (conn.state === 'online') text = 'Online';
    if (conn.state === 'offline') {
      const s = Math.max(0, Math.ceil((conn.nextAt - Date.now()) / 1000));
      text = conn.stopped ? 'Offline' : (s > 0 ? `Offline · retrying in ${s}s` : 'Offline · retrying');
    }
    $('conn-text').textContent = text;
  }
  setInterval(() => { if (conn.state === 'offline') renderConn(); }, 1000);

  function hue(s) {
    let h = 0;
    for (let i = 0; i < s.length; i++) h = (h * 31 + s.charCodeAt(i)) >>> 0;
    return h % 360;
  }

  function fillAvatar(a, conv) {
    const name = convTitle(conv);
    a.querySelector('span').textContent = (name[0] || '?').toUpperCase();
    a.style.setProperty('--h', hue(conv.chatType === SINGLE ? conv.peerId : conv.id));
    a.classList.toggle('group', conv.chatType === GROUP);
    const dot = a.querySelector('.dot');
    if (conv.chatType === SINGLE) {
      const on = state.online.get(conv.peerId);
      dot.hidden = false;
      dot.dataset.online = on === undefined ? 'unknown' : String(on);
      dot.title = on ? 'online' : on === false ? 'offline' : '';
    } else {
      dot.hidden = true;
    }
  }

  function fmtTime(t, withDay) {
    if (!t) return '';
    const d = new Date(t);
    const now = new Date();
    const hm = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    if (d.toDateString() === now.toDateString()) return hm;
    const day = d.toLocaleDateString([], { month: 'short', day: 'numeric' });
    return withDay ? day + ' ' + hm : day;
  }

  const rows = new Map(); // conversationId → <li>

  function renderList() {
    const ul = $('convs');
    const convs = [...state.convs.values()]
      .filter((c) => c.msgs.size || c.seq || c.chatType === GROUP || c.id === state.openId)
      .sort((a, b) => (b.updatedAt - a.updatedAt) || a.id.localeCompare(b.id));
    $('convs-empty').hidden = convs.length > 0 || !state.listLoaded;
    const seen = new Set();
    for (const c of convs) {
      seen.add(c.id);
      let li = rows.get(c.id);
      if (!li) {
        li = el('li', 'conv');
        li.dataset.conv = c.id;
        li.tabIndex = 0;
        li.setAttribute('role', 'button');
        const av = el('span', 'avatar');
        av.append(el('span'), el('i', 'dot'));
        const body = el('div', 'conv-body');
        const top = el('div', 'conv-top');
        top.append(el('span', 'conv-name'), el('time', 'conv-time'));
        const bottom = el('div', 'conv-bottom');
        bottom.append(el('span', 'conv-last'), el('span', 'badge'));
        body.append(top, bottom);
        li.append(av, body);
        li.addEventListener('click', () => openConv(c.id));
        li.addEventListener('keydown', (e) => { if (e.key === 'Enter') openConv(c.id); });
        rows.set(c.id, li);
      }
      fillAvatar(li.querySelector('.avatar'), c);
      li.querySelector('.conv-name').textContent = convTitle(c);
      li.querySelector('.conv-time').textContent = c.lastMsg ? fmtTime(c.lastMsg.sendTime) : '';
      let last = 'No messages yet';
      if (c.lastMsg) {
        const who = c.lastMsg.sendId === me() ? 'You: ' : c.chatType === GROUP ? nameOf(c.lastMsg.sendId) + ': ' : '';
        last = who + c.lastMsg.content;
      }
      li.querySelector('.conv-last').textContent = last;
      const badge = li.querySelector('.badge');
      badge.textContent = c.unread > 99 ? '99+' : String(c.unread);
      badge.hidden = !c.unread;
      li.classList.toggle('active', c.id === state.openId);
      li.classList.toggle('unread', c.unread > 0);
      ul.append(li); // moves it into sorted place
    }
    for (const [id, li] of rows) {
      if (!seen.has(id)) { li.remove(); rows.delete(id); }
    }
  }

  const bubbles = new Map(); // message key → <li>, for the open conversation

  function atBottom() {
    const box = $('messages');
    return box.scrollHeight - box.scrollTop - box.clientHeight < 48;
  }

  function renderOlder() {
    const conv = state.convs.get(state.openId);
    const p = $('older');
    if (!conv) return;
    p.textContent = conv.loadingOlder ? 'Loading earlier messages…' : conv.historyDone ? 'Start of the conversation' : 'Scroll up for earlier messages';
    p.dataset.state = conv.loadingOlder ? 'loading' : conv.historyDone ? 'done' : 'more';
  }

  function renderChat() {
    const conv = state.convs.get(state.openId);
    $('chat-none').hidden = !!conv;
    $('chat-pane').hidden = !conv;
    if (!conv) return;
    $('chat-pane').dataset.conv = conv.id;
    fillAvatar($('chat-avatar'), conv);
    $('chat-name').textContent = convTitle(conv);
    let sub = '';
    if (conv.chatType === SINGLE) {
      const on = state.online.get(conv.peerId);
      const id = nameOf(conv.peerId) !== conv.peerId ? conv.peerId : '';
      sub = [id, on ? 'online' : on === false ? 'offline' : ''].filter(Boolean).join(' · ');
    } else {
      const g = state.groups.get(conv.id);
      sub = g ? `${g.members.length} members: ${g.members.map(nameOf).join(', ')}` : 'group';
    }
    $('chat-sub').textContent = sub;
    $('add-members').hidden = conv.chatType !== GROUP;
    // The owner cannot leave (the server refuses it).
    const g = state.groups.get(conv.id);
    $('leave-group').hidden = conv.chatType !== GROUP || !g || g.owner === me();
    renderOlder();

    const box = $('messages');
    const wasBottom = atBottom();
    const prevHeight = box.scrollHeight;
    const prevTop = box.scrollTop;
    const list = $('msg-list');
    const seen = new Set();
    let prevDay = '';
    let prevSender = '';
    for (const m of sortedMessages(conv)) {
      const own = m.sendId === me();
      const day = new Date(m.sendTime).toDateString();
      if (day !== prevDay) {
        const key = 'day:' + day;
        let d = bubbles.get(key);
        if (!d) {
          d = el('li', 'day', new Date(m.sendTime).toLocaleDateString([], { weekday: 'short', month: 'short', day: 'numeric' }));
          bubbles.set(key, d);
        }
        seen.add(key);
        list.append(d);
        prevDay = day;
        prevSender = '';
      }
      let li = bubbles.get(m.key);
      if (!li) {
        li = el('li', 'msg');
        const b = el('div', 'bubble');
        const from = el('span', 'from');
        const text = el('span', 'text');
        const meta = el('span', 'meta');
        meta.append(el('time'), el('span', 'ticks'));
        b.append(from, text, meta);
        li.append(b);
        bubbles.set(m.key, li);
      }
      seen.add(m.key);
      li.classList.toggle('own', own);
      li.dataset.msgid = m.msgId || '';
      li.dataset.seq = m.seq ? String(m.seq) : '';
      li.dataset.from = m.sendId;
      const from = li.querySelector('.from');
      from.textContent = nameOf(m.sendId);
      from.hidden = own || conv.chatType !== GROUP || prevSender === m.sendId;
      from.style.setProperty('--h', hue(m.sendId));
      li.querySelector('.text').textContent = m.content;
      li.querySelector('time').textContent = fmtTime(m.sendTime, false);
      li.querySelector('time').title = new Date(m.sendTime).toLocaleString();
      const ticks = li.querySelector('.ticks');
      if (own) {
        const st = ownStatus(conv, m);
        li.dataset.status = st;
        ticks.dataset.status = st;
        ticks.textContent = st === 'pending' ? '🕓' : st === 'failed' ? '⚠ not sent · retry' : st === 'read' || st === 'delivered' ? '✓✓' : '✓';
        if (st === 'read') {
          const r = [...readersOf(conv, m)];
          ticks.title = 'Read by ' + r.map(nameOf).join(', ');
          if (conv.chatType === GROUP) ticks.append(el('span', 'n', String(r.length)));
        } else {
          ticks.title = st === 'pending' ? 'Sending…' : st === 'failed' ? (m.error || 'Not sent') + ' — click to retry'
            : st === 'delivered' ? 'Delivered' : 'Sent';
        }
        ticks.hidden = false;
        li.classList.toggle('failed', st === 'failed');
        li.onclick = st === 'failed' ? () => retryFailed(m.frameId) : null;
      } else {
        delete li.dataset.status;
        ticks.hidden = true;
        li.onclick = null;
      }
      prevSender = m.sendId;
      list.append(li);
    }
    for (const [k, li] of bubbles) {
      if (!seen.has(k)) { li.remove(); bubbles.delete(k); }
    }

    if (keepScrollOnPrepend) {
      keepScrollOnPrepend = false;
      box.scrollTop = prevTop + (box.scrollHeight - prevHeight);
    } else if (stickToBottom || wasBottom) {
      box.scrollTop = box.scrollHeight;
    }
    stickToBottom = false;
    // Not enough to scroll yet: fetch older ones right away.
    if (!conv.historyDone && !conv.loadingOlder && box.scrollHeight <= box.clientHeight + 8) {
      loadOlder(conv);
    }
  }

  // ---- navigation and actions ----------------------------------------------------

  function openConv(id) {
    const conv = state.convs.get(id);
    if (!conv) return;
    if (state.openId !== id) {
      for (const li of bubbles.values()) li.remove();
      bubbles.clear();
    }
    state.openId = id;
    conv.unread = 0;
    $('app').dataset.view = 'chat';
    stickToBottom = true;
    history.replaceState(null, '', '#' + encodeURIComponent(id));
    render();
    if (!conv.historyDone && highestSeq(conv) < conv.seq) loadOlder(conv);
    else if (!conv.historyDone && lowestSeq(conv) === 0 && conv.seq === 0) loadOlder(conv);
    if (conv.chatType === GROUP) loadGroup(conv);
    refreshPresence();
    markReadSoon();
    setTimeout(() => $('composer').text.focus(), 0);
  }

  function closeConv() {
    state.openId = null;
    $('app').dataset.view = 'list';
    history.replaceState(null, '', location.pathname);
    render();
  }

  function parseIds(s) {
    return [...new Set(s.split(/[\s,]+/).map((x) => x.trim()).filter(Boolean))];
  }

  function bindUI() {
    // Login / register.
    let mode = 'login';
    const form = $('login-form');
    for (const t of form.querySelectorAll('[data-mode]')) {
      t.addEventListener('click', () => {
        mode = t.dataset.mode;
        form.dataset.mode = mode;
        for (const o of form.querySelectorAll('[data-mode]')) o.setAttribute('aria-selected', String(o === t));
        $('login-submit').textContent = mode === 'login' ? 'Sign in' : 'Create account';
        form.password.autocomplete = mode === 'login' ? 'current-password' : 'new-password';
        $('login-error').textContent = '';
      });
    }
    form.dataset.mode = mode;
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const userId = form.userId.value.trim();
      const password = form.password.value;
      const err = $('login-error');
      if (!ID_RE.test(userId)) { err.textContent = 'User ids are 3–32 letters, digits, “.” or “-”.'; return; }
      if (mode === 'register' && password.length < 8) { err.textContent = 'Use at least 8 characters for the password.'; return; }
      if (!password) { err.textContent = 'Enter your password.'; return; }
      err.textContent = '';
      $('login-submit').disabled = true;
      try {
        const body = { action: mode, userId, password };
        if (mode === 'register') body.nickname = form.nickname.value.trim();
        const s = await api('user', body);
        form.password.value = '';
        startSession({ userId: s.userId, nickname: s.nickname, token: s.token });
      } catch (ex) {
        err.textContent = ex.status === 409 ? 'That user id is taken.' : ex.status === 401 ? 'Wrong user id or password.' : ex.message;
      } finally {
        $('login-submit').disabled = false;
      }
    });

    $('logout').addEventListener('click', () => logout(''));
    $('conn').addEventListener('click', () => conn.reconnectNow());
    $('back').addEventListener('click', closeConv);

    $('new-chat').addEventListener('submit', (e) => {
      e.preventDefault();
      const input = e.target.peer;
      const peer = input.value.trim();
      const err = $('new-chat-error');
      err.textContent = '';
      if (!ID_RE.test(peer)) { err.textContent = 'Enter a user id (3–32 letters, digits, “.” or “-”).'; return; }
      if (peer === me()) { err.textContent = 'That is you.'; return; }
      const conv = ensureConv(singleConvId(me(), peer), SINGLE);
      conv.peerId = peer;
      input.value = '';
      loadNames([peer]);
      openConv(conv.id);
    });

    const composer = $('composer');
    const ta = composer.text;
    const grow = () => {
      ta.style.height = 'auto';
      ta.style.height = Math.min(ta.scrollHeight, 160) + 'px';
    };
    ta.addEventListener('input', grow);
    ta.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        composer.requestSubmit();
      }
    });
    composer.addEventListener('submit', (e) => {
      e.preventDefault();
      const conv = state.convs.get(state.openId);
      const text = ta.value.trim();
      if (!conv || !text) return;
      ta.value = '';
      grow();
      sendText(conv, text);
    });

    $('messages').addEventListener('scroll', () => {
      const conv = state.convs.get(state.openId);
      if (conv && $('messages').scrollTop < 120) loadOlder(conv);
    });

    // Dialogs.
    const gd = $('group-dialog');
    $('new-group').addEventListener('click', () => {
      gd.querySelector('form').reset();
      gd.querySelector('.form-error').textContent = '';
      gd.showModal();
    });
    const ad = $('add-dialog');
    $('add-members').addEventListener('click', () => {
      ad.querySelector('form').reset();
      ad.querySelector('.form-error').textContent = '';
      ad.showModal();
    });
    for (const d of [gd, ad]) {
      d.querySelector('[value=cancel]').addEventListener('click', () => d.close());
    }
    $('group-form').addEventListener('submit', async (e) => {
      e.preventDefault();
      const f = e.target;
      const err = f.querySelector('.form-error');
      const name = f.name.value.trim();
      const members = parseIds(f.members.value).filter((u) => u !== me());
      if (!name) { err.textContent = 'Give the group a name.'; return; }
      const bad = members.find((u) => !ID_RE.test(u));
      if (bad) { err.textContent = `“${bad}” is not a user id.`; return; }
      try {
        const g = await api('group', { action: 'create', name, members });
        state.groups.set(g.groupId, g);
        loadNames(g.members);
        const conv = ensureConv(g.groupId, GROUP);
        conv.groupName = g.name;
        conv.updatedAt = g.createdAt || Date.now();
        conv.historyDone = true;
        gd.close();
        openConv(conv.id);
      } catch (ex) {
        err.textContent = ex.message;
      }
    });
    $('leave-group').addEventListener('click', async () => {
      const id = state.openId;
      const conv = state.convs.get(id);
      if (!conv || !confirm(`Leave ${convTitle(conv)}?`)) return;
      try {
        await api('group', { action: 'remove', groupId: id, members: [me()] });
        forgetGroup(id);
      } catch (ex) {
        alert(ex.message);
      }
    });
    $('add-form').addEventListener('submit', async (e) => {
      e.preventDefault();
      const f = e.target;
      const err = f.querySelector('.form-error');
      const members = parseIds(f.members.value);
      const bad = members.find((u) => !ID_RE.test(u));
      if (!members.length || bad) { err.textContent = bad ? `“${bad}” is not a user id.` : 'Enter at least one user id.'; return; }
      try {
        const g = await api('group', { action: 'add', groupId: state.openId, members });
        state.groups.set(g.groupId, g);
        loadNames(g.members);
        ad.close();
        render();
      } catch (ex) {
        err.textContent = ex.message;
      }
    });

    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible') {
        markReadSoon();
        conn.reconnectNow();
      }
    });
    window.addEventListener('online', () => conn.reconnectNow());
    window.addEventListener('focus', () => markReadSoon());
  }

  // ---- session -----------------------------------------------------------------

  function showLogin(msg) {
    $('app').hidden = true;
    $('login').hidden = false;
    $('login-error').textContent = msg || '';
    document.title = 'Easy Chat';
    setTimeout(() => $('login-form').userId.focus(), 0);
  }

  function startSession(s) {
    state.session = s;
    save(SESSION_KEY, s);
    state.convs.clear();
    state.online.clear();
    state.groups.clear();
    state.names.clear();
    namesAsked = new Set();
    state.openId = null;
    state.listLoaded = false;
    for (const li of rows.values()) li.remove();
    rows.clear();
    for (const li of bubbles.values()) li.remove();
    bubbles.clear();
    // Receipts seen before, and messages not acked when the page closed.
    for (const [id, rs] of Object.entries(load(readsKey(), {}))) {
      const c = ensureConv(id);
      for (const [u, seq] of Object.entries(rs)) c.readers.set(u, seq);
    }
    state.outbox = new Map();
    for (const item of load(outboxKey(), [])) {
      if (!item || !item.id || !item.convId) continue;
      item.sending = false;
      state.outbox.set(item.id, item);
      const c = ensureConv(item.convId, item.chatType);
      if (c.chatType === SINGLE) c.peerId = item.recvId;
      addPendingMessage(item);
    }
    $('login').hidden = true;
    $('app').hidden = false;
    $('app').dataset.view = 'list';
    $('me').textContent = s.nickname && s.nickname !== s.userId ? `${s.nickname} (${s.userId})` : s.userId;
    document.title = 'Easy Chat · ' + s.userId;
    render();
    refreshList().catch(() => {});
    conn.start();
    refreshPresence();
    api('user', { action: 'me' }).then((u) => {
      if (u.nickname && state.session) {
        state.session.nickname = u.nickname;
        save(SESSION_KEY, state.session);
        $('me').textContent = u.nickname !== u.userId ? `${u.nickname} (${u.userId})` : u.userId;
      }
    }, () => {});
    const hash = decodeURIComponent(location.hash.slice(1));
    if (hash) {
      const c = state.convs.get(hash) || (hash.includes('_') && hash.split('_').includes(s.userId) ? ensureConv(hash, SINGLE) : null);
      if (c) openConv(c.id);
      else refreshList().then(() => { if (state.convs.has(hash)) openConv(hash); }, () => {});
    }
  }

  function logout(msg) {
    conn.stop();
    clearTimeout(presenceTimer);
    clearTimeout(syncTimer);
    // Forget everything of this user on this browser (a shared computer):
    // the token, receipts seen, and messages never sent.
    try {
      if (state.session) {
        localStorage.removeItem(outboxKey());
        localStorage.removeItem(readsKey());
      }
      localStorage.removeItem(SESSION_KEY);
    } catch { /* disabled */ }
    state.outbox = new Map();
    state.session = null;
    state.openId = null;
    history.replaceState(null, '', location.pathname);
    showLogin(msg);
  }

  function boot() {
    bindUI();
    const s = load(SESSION_KEY, null);
    if (s && s.token && s.userId) startSession(s);
    else showLogin('');
  }

  // A small handle for debugging in the console.
  window.easychat = { state, conn, syncNow, refreshList };

  boot();
})();
