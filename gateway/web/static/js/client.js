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
import { SINGLE, recvIdOf, toMark, deliveredToReport, hasUnsequenced, lowestSeq } from './conv.js';
import { newId } from './conn.js';
import * as storage from './storage.js';

const HISTORY_PAGE = 30;
const PRESENCE_EVERY = 20000;
// Errors worth sending again: the server could not take it now.
const TRANSIENT = /retry|unavailable|busy|timeout|shutting down/i;

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

  send(conv, text) {
    const item = this.store.queue(conv, newId('m'), text);
    this.saveOutbox();
    this.transmit(item);
    this.ui.render();
  }

  // transmit sends an outbox item; it is resent with the same frame id after
  // a reconnect until acked, and the server stores it once.
  transmit(item) {
    if (item.sending || item.failed || !this.conn.isOpen()) return;
    item.sending = true;
    const data = {
      chatType: item.chatType,
      recvId: item.recvId,
      conversationId: item.convId,
      msg: { mType: 0, content: item.content },
    };
    this.conn.request('conversation.chat', data, item.id).then((ack) => {
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
          const res = await this.conn.request('conversation.sync', { seqs: this.store.knownSeqs(), limit: 200 });
          const ms = res.messages || [];
          const viewing = this.ui.viewing();
          let unknown = false;
          for (const p of ms) {
            if (!this.store.convs.has(p.conversationId)) unknown = true;
            const r = this.store.merge(p, 'sync', viewing);
            if (r.deliver) this.reportDeliveredSoon(r.conv);
          }
          if (unknown) this.refreshList().catch(() => {});
          if (!res.more || !ms.length) break;
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
      this.store.applyHistory(conv, res.messages || [], before, HISTORY_PAGE);
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
    }
  }

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

  forgetGroup(id) {
    if (this.store.forgetGroup(id)) this.ui.closeConv();
    this.ui.render();
  }
}
