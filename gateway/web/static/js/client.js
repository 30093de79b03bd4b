// Client does the talking to the server for the Store: sending, sync, the
// conversation list, history, receipts and presence. The store decides;
// this sends the frames and API calls it asks for, and tells the page to
// draw through ui:
//   render()          draw again (soon)
//   renderOlder()     draw the history line of the open conversation
//   viewing()         the id of the conversation on screen, or null
//   olderLoaded()     a history page was put above what is shown
//   pushed()          a push came (follow it if at the bottom)
//   closeConv()       leave the open conversation
//   notice(text)      tell the user something briefly (a refused change)
//   composing(id)     whether the user is writing in conversation id now
import { SINGLE, recvIdOf, toMark, deliveredToReport, hasUnsequenced, lowestSeq } from './conv.js';
import { chatData } from './model.js';
import { TypingGate } from './msgstate.js';
import { newId } from './conn.js';
import * as storage from './storage.js';

const HISTORY_PAGE = 30;
const PRESENCE_EVERY = 20000;
// Errors worth sending again: the server could not take it now.
const TRANSIENT = /retry|unavailable|busy|timeout|shutting down/i;
// What the user asked of a message, for a refusal's notice.
const VERBS = {
  'conversation.recall': 'recall the message',
  'conversation.edit': 'edit the message',
  'conversation.react': 'react',
  'conversation.hide': 'delete the message',
};

export class Client {
  constructor(store, conn, api, ui) {
    this.store = store;
    this.conn = conn;
    this.api = api;
    this.ui = ui;
    this.syncing = null;
    this.syncAgain = false;
    this.syncTimer = 0;
    this.resolveTries = 0;
    this.listing = null;
    this.markTimer = 0;
    this.deliveredDue = new Set();
    this.deliveredTimer = 0;
    this.presenceTimer = 0;
    this.readsTimer = 0;
    this.typingGates = new Map(); // conversationId → TypingGate
  }

  // stop ends the periodic work of a session.
  stop() {
    clearTimeout(this.presenceTimer);
    clearTimeout(this.syncTimer);
  }

  async onConnected() {
    this.flushOutbox();
    try {
      await this.refreshList();
    } catch { /* the socket works; the list comes with the next reconnect */ }
    try {
      await this.syncNow();
    } catch { /* reconnect will sync */ }
    this.refreshPresence();
    this.markReadSoon();
  }

  // ---- storage

  saveOutbox() { storage.saveOutbox(this.store.me, [...this.store.outbox.values()]); }

  saveReads() {
    clearTimeout(this.readsTimer);
    this.readsTimer = setTimeout(() => storage.saveReads(this.store.me, this.store.readsSnapshot()), 300);
  }

  // ---- sending

  // send sends text to conv; extra: quote, mentions, mentionAll.
  send(conv, text, extra) {
    this.stopTyping(conv);
    const item = this.store.queue(conv, newId('m'), text, extra);
    this.saveOutbox();
    this.transmit(item);
    this.ui.render();
  }

  // transmit sends an outbox item; it is resent with the same frame id after
  // a reconnect until acked, and the server stores it once.
  transmit(item) {
    if (item.sending || item.failed || !this.conn.isOpen()) return;
    item.sending = true;
    this.conn.request('conversation.chat', chatData(item), item.id).then((ack) => {
      item.sending = false;
      this.store.acked(item, ack);
      this.saveOutbox();
      // Learn the seq the server gave it (its place, and read positions) a
      // moment later.
      this.resolveTries = 0;
      this.scheduleSync(1000);
      this.ui.render();
    }, (err) => {
      item.sending = false;
      if (err.frame && !TRANSIENT.test(err.message)) {
        this.store.failed(item, err.message);
        this.saveOutbox();
        this.ui.render();
        return;
      }
      // Lost connection: resent on reconnect. Otherwise retry shortly.
      if (this.conn.isOpen()) setTimeout(() => this.transmit(item), 2000);
    });
  }

  retryFailed(frameId) {
    const item = this.store.retry(frameId);
    if (!item) return;
    this.saveOutbox();
    this.transmit(item);
    this.ui.render();
  }

  flushOutbox() {
    for (const item of this.store.outbox.values()) this.transmit(item);
  }

  // ---- sync, list, history

  scheduleSync(delay) {
    clearTimeout(this.syncTimer);
    this.syncTimer = setTimeout(() => { this.syncNow().catch(() => {}); }, delay);
  }

  // syncNow asks for everything after what this client holds, per
  // conversation, until the server says there is no more.
  syncNow() {
    if (this.syncing) {
      this.syncAgain = true;
      return this.syncing;
    }
    this.syncing = (async () => {
      do {
        this.syncAgain = false;
        for (let page = 0; page < 100; page++) {
          const versions = this.store.knownVersions();
          const res = await this.conn.request('conversation.sync', { seqs: this.store.knownSeqs(), versions, limit: 200 });
          const r = this.store.applySync(res, versions, this.ui.viewing());
          for (const c of r.deliver) this.reportDeliveredSoon(c);
          if (r.unknown) this.refreshList().catch(() => {});
          if (!r.more) break;
        }
      } while (this.syncAgain);
    })().finally(() => {
      this.syncing = null;
      // Until my acked messages have their seqs (their place in the
      // conversation), ask again, backing off.
      const unsequenced = this.store.unsequenced();
      if (unsequenced && this.resolveTries < 8) this.scheduleSync(1000 * 2 ** this.resolveTries++);
      else if (!unsequenced) this.resolveTries = 0;
      this.ui.render();
      this.markReadSoon();
    });
    return this.syncing;
  }

  refreshList() {
    if (this.listing) return this.listing;
    this.listing = this.api('conversation', { action: 'list' }).then((res) => {
      const r = this.store.applyList(res.conversations || [], this.ui.viewing());
      for (const c of r.deliver) this.reportDeliveredSoon(c);
      if (r.readersChanged) this.saveReads();
      this.loadNames(this.store.people());
      this.ui.render();
      this.refreshPresence();
    }).finally(() => { this.listing = null; });
    return this.listing;
  }

  async loadOlder(conv) {
    if (conv.loadingOlder || conv.historyDone) return;
    conv.loadingOlder = true;
    this.ui.renderOlder();
    try {
      const before = lowestSeq(conv);
      const res = await this.api('conversation', {
        action: 'history', conversationId: conv.id, before, limit: HISTORY_PAGE,
      });
      this.store.applyHistory(conv, res.messages || [], before, HISTORY_PAGE, res.version);
      this.ui.olderLoaded();
    } catch (e) {
      if (e.status === 403 || e.status === 404) this.store.noHistory(conv);
    } finally {
      conv.loadingOlder = false;
    }
    this.ui.render();
    this.markReadSoon();
  }

  async loadGroup(conv) {
    try {
      const g = await this.api('group', { action: 'members', groupId: conv.id });
      this.store.groupLoaded(conv, g);
      this.loadNames(g.members);
      this.ui.render();
    } catch { /* shown as unknown */ }
  }

  // loadNames asks the user function for the nicknames of ids not asked yet.
  loadNames(ids) {
    const want = this.store.namesToAsk(ids);
    if (!want.length) return;
    this.api('user', { action: 'profiles', userIds: want }).then((res) => {
      this.store.setNames(res.profiles);
      this.ui.render();
    }, () => this.store.namesFailed(want));
  }

  refreshPresence() {
    clearTimeout(this.presenceTimer);
    this.presenceTimer = setTimeout(() => this.refreshPresence(), PRESENCE_EVERY);
    if (!this.conn.isOpen()) return;
    const ids = this.store.presenceIds();
    if (!ids.length) return;
    this.conn.request('user.online', { userIds: ids }).then((d) => {
      this.store.setOnline(d.online);
      this.ui.render();
    }, () => {});
  }

  // ---- receipts and reading

  markReadSoon() {
    clearTimeout(this.markTimer);
    this.markTimer = setTimeout(() => this.markRead(), 150);
  }

  // markRead tells the server I have read the conversation on screen up to
  // its newest loaded message.
  markRead() {
    const conv = this.store.convs.get(this.ui.viewing());
    if (!conv) return;
    const mark = toMark(conv, this.store.me);
    if (!mark) {
      if (this.store.clearUnread(conv)) this.ui.render();
      return;
    }
    if (!this.conn.isOpen()) return;
    const prev = this.store.setRead(conv, mark.readSeq);
    const data = {
      chatType: conv.chatType,
      recvId: recvIdOf(conv),
      conversationId: conv.id,
      msgIds: mark.msgIds,
      readSeq: mark.readSeq,
    };
    this.conn.request('conversation.markChat', data).catch(() => this.store.unsetRead(conv, mark.readSeq, prev));
    this.ui.render();
  }

  // reportDeliveredSoon: this device tells the server how far it holds the
  // single chats that received messages, so their senders see "delivered".
  // Bursts of pushes make one report per conversation.
  reportDeliveredSoon(conv) {
    this.deliveredDue.add(conv.id);
    clearTimeout(this.deliveredTimer);
    this.deliveredTimer = setTimeout(() => this.reportDelivered(), 150);
  }

  reportDelivered() {
    if (!this.conn.isOpen()) return; // a reconnect syncs, and reports again
    for (const id of this.deliveredDue) {
      const conv = this.store.convs.get(id);
      if (!conv || !conv.peerId) continue;
      const seq = deliveredToReport(conv);
      if (!seq) continue;
      const prev = this.store.setDeliveredSent(conv, seq);
      this.conn.request('conversation.markDelivered', { chatType: SINGLE, recvId: conv.peerId, conversationId: conv.id, seq })
        .catch(() => this.store.unsetDeliveredSent(conv, seq, prev));
    }
    this.deliveredDue.clear();
  }

  // learnOwnSeqs syncs soon when a message of mine has no seq yet: a
  // receipt's position cannot be compared with it until it has one.
  learnOwnSeqs(conv) {
    if (hasUnsequenced(conv, this.store.me)) this.scheduleSync(200);
  }

  // ---- incoming frames

  onPush(f) {
    if (f.method === 'push' && f.data && f.data.msg) {
      const r = this.store.push(f.data, this.ui.viewing());
      if (r.deliver) this.reportDeliveredSoon(r.conv);
      if (r.needList) this.refreshList().catch(() => {});
      // A gap (a push lost while reconnecting): fetch what lies between.
      if (r.gap) this.scheduleSync(300);
      this.loadNames([f.data.sendId]);
      this.ui.pushed();
      this.ui.render();
      this.markReadSoon();
    } else if (f.method === 'conversation.read' && f.data) {
      this.onReceipt(f.data);
    } else if (f.method === 'conversation.delivered' && f.data) {
      this.onDelivered(f.data);
    } else if (f.method === 'group.changed' && f.data) {
      this.onGroupChange(f.data);
    } else if (f.method === 'conversation.changed' && f.data) {
      this.onChanged(f.data);
    } else if (f.method === 'conversation.typing' && f.data) {
      this.onTyping(f.data);
    }
  }

  onChanged(d) {
    const r = this.store.applyChange(d, 'push');
    if (!r) return;
    if (r.gap) this.scheduleSync(300);
    if (r.changed) this.ui.render();
  }

  onTyping(d) {
    const r = this.store.applyTyping(d);
    if (!r) return;
    this.ui.render();
    // Drawn again when it expires (typers() leaves it out by then).
    if (r.ttl) setTimeout(() => this.ui.render(), r.ttl + 50);
  }

  // onDisconnected: the socket is gone; changes made meanwhile come with
  // the sync after the reconnect.
  onDisconnected() { this.store.disconnected(); }

  onReceipt(d) {
    const r = this.store.applyReceipt(d);
    if (!r) return;
    if (r.mine) {
      if (r.refresh) this.refreshList().catch(() => {});
      this.ui.render();
      return;
    }
    this.saveReads();
    this.learnOwnSeqs(r.conv);
    this.ui.render();
  }

  onDelivered(d) {
    const conv = this.store.applyDelivered(d);
    if (!conv) return;
    this.learnOwnSeqs(conv);
    this.ui.render();
  }

  // A group I am in changed members (or I was added to a new one, or removed).
  onGroupChange(d) {
    if ((d.removed || []).includes(this.store.me)) {
      this.forgetGroup(d.groupId);
      return;
    }
    this.refreshList().catch(() => {});
    const conv = this.store.convs.get(d.groupId);
    if (conv && this.store.openId === d.groupId) this.loadGroup(conv);
  }

  // ---- changes to messages: recall, edit, react, hide (delete for me)

  // change sends a change of message m; a refusal is shown as a notice.
  // The result comes back as conversation.changed (to every member, or to
  // my devices for a hide); should it not, a sync fetches it.
  change(method, conv, m, extra) {
    const data = { conversationId: conv.id, msgId: m.msgId, ...extra };
    if (!this.conn.isOpen()) {
      this.ui.notice(`Cannot ${VERBS[method]} while offline.`);
      return Promise.resolve(false);
    }
    return this.conn.request(method, data).then((ack) => {
      if (method === 'conversation.hide') {
        this.store.hideLocal(conv, m.msgId);
        this.ui.render();
      } else if (ack && ack.version) {
        setTimeout(() => {
          const held = conv.msgs.get(m.msgId);
          if (held && (held.version || 0) < ack.version) this.scheduleSync(0);
        }, 1500);
      }
      return true;
    }, (err) => {
      this.ui.notice(`Could not ${VERBS[method]}: ${err.message}`);
      return false;
    });
  }

  recall(conv, m) { return this.change('conversation.recall', conv, m); }

  edit(conv, m, content) { return this.change('conversation.edit', conv, m, { content }); }

  react(conv, m, emoji, remove) { return this.change('conversation.react', conv, m, { emoji, remove: !!remove }); }

  hide(conv, m) { return this.change('conversation.hide', conv, m); }

  // ---- typing

  gate(conv) {
    let g = this.typingGates.get(conv.id);
    if (!g) this.typingGates.set(conv.id, (g = new TypingGate()));
    return g;
  }

  // typed: the user typed in conv's composer. Too soon after the last
  // frame, it is tried again once the server takes one, if the user is
  // still writing (a short burst right after sending would go unseen).
  typed(conv) {
    if (!this.conn.isOpen()) return;
    const g = this.gate(conv);
    const wait = g.typed(Date.now());
    if (wait === 0) this.sendTyping(conv, g);
    else if (wait > 0 && !g.retry) {
      g.retry = setTimeout(() => {
        g.retry = 0;
        if (this.ui.composing(conv.id)) this.typed(conv);
      }, wait);
    }
  }

  // stopTyping: the user sent, or left the composer.
  stopTyping(conv) {
    const g = this.typingGates.get(conv.id);
    if (!g) return;
    clearTimeout(g.retry);
    g.retry = 0;
    const wait = g.stopped(Date.now());
    if (wait < 0) return;
    setTimeout(() => { if (!g.active) this.sendTyping(conv, null); }, wait);
  }

  // sendTyping sends typing:true (g, the gate that allowed it) or false.
  sendTyping(conv, g) {
    if (!this.conn.isOpen()) return;
    // Best effort: a lost typing frame only shows late, or not at all.
    this.conn.request('conversation.typing', { conversationId: conv.id, typing: !!g }).catch((e) => {
      if (g) g.refused();
      if (e.frame) console.debug('typing refused:', e.message);
    });
  }

  forgetGroup(id) {
    if (this.store.forgetGroup(id)) this.ui.closeConv();
    this.ui.render();
  }
}
