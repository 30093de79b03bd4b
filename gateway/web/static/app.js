// Easy Chat browser client: native ES modules, no build step, one origin
// (the websocket at /ws and the HTTP API at POST /api/<function>). This
// file wires the parts: the store (js/model.js) holds all the client
// knows; the client (js/client.js) talks to the server for it; the views
// (js/views/) draw it and hand what people do to the functions here.
import { Store } from './js/model.js';
import { GROUP, SINGLE, needsHistory } from './js/conv.js';
import { Conn } from './js/conn.js';
import { makeApi } from './js/api.js';
import { Client } from './js/client.js';
import { Files } from './js/fileclient.js';
import * as storage from './js/storage.js';
import { $, notice } from './js/views/dom.js';
import { createTopbar } from './js/views/topbar.js';
import { createLogin } from './js/views/login.js';
import { createList } from './js/views/list.js';
import { createChat } from './js/views/chat.js';
import { bindGroups } from './js/views/groups.js';

const store = new Store();
const api = makeApi(() => (store.session ? store.session.token : ''),
  () => logout('Your session has expired. Please sign in again.'));
const conn = new Conn({
  onState: (s) => {
    topbar.renderConn();
    if (s === 'offline') client.onDisconnected();
  },
  onOpen: () => client.onConnected(),
  onRetry: (attempt, wasOpen) => {
    topbar.renderConn();
    // A socket that never opens may be a rejected token: check it over
    // HTTP (a 401 there logs out).
    if (!wasOpen && attempt >= 2 && attempt % 2 === 0) api('user', { action: 'me' }).catch(() => {});
  },
  onPush: (f) => client.onPush(f),
});

// viewing is the conversation a person is looking at: open, with the page
// visible.
function viewing() {
  return document.visibilityState === 'visible' && !$('app').hidden ? store.openId : null;
}

let renderQueued = false;
function render() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => {
    renderQueued = false;
    list.render();
    chat.render();
  });
}

const client = new Client(store, conn, api, {
  render,
  renderOlder: () => chat.renderOlder(),
  viewing,
  olderLoaded: () => chat.olderLoaded(),
  pushed: () => chat.pushed(),
  closeConv,
  notice,
  composing: (id) => store.openId === id && chat.composing(),
});

const files = new Files(api, {
  render,
  send: (conv, mType, content, extra) => client.send(conv, content, { ...extra, mType }),
});

const topbar = createTopbar(conn, { onLogout: () => logout('') });
const login = createLogin({ signIn: (body) => api('user', body), onSession: startSession });
const list = createList(store, {
  onOpen: openConv,
  onNewChat: (peer) => {
    const conv = store.startSingle(peer);
    client.loadNames([peer]);
    openConv(conv.id);
  },
});
const chat = createChat(store, {
  onSend: (conv, text, extra) => client.send(conv, text, extra),
  onRetry: (frameId) => client.retryFailed(frameId),
  onOlder: (conv) => client.loadOlder(conv),
  onBack: closeConv,
  onTyped: (conv) => client.typed(conv),
  onStopTyping: (conv) => client.stopTyping(conv),
  onRecall: (conv, m) => client.recall(conv, m),
  onEdit: (conv, m, text) => client.edit(conv, m, text),
  onReact: (conv, m, emoji, remove) => client.react(conv, m, emoji, remove),
  onHide: (conv, m) => client.hide(conv, m),
  notice,
  onAttach: (conv, list, extra) => files.sendFiles(conv, list, extra),
  uploads: (id) => files.uploadsOf(id),
  onDismissUpload: (id) => files.dismiss(id),
  link: (key) => files.link(key),
  thumb: (key) => files.thumb(key),
  needLinks: (keys) => files.want(keys),
  linkFailed: (key) => files.loadFailed(key),
  freshLink: (key) => files.fresh(key),
});
bindGroups(store, {
  create: async (name, members) => {
    const g = await api('group', { action: 'create', name, members });
    const conv = store.groupCreated(g);
    client.loadNames(g.members);
    return conv.id;
  },
  add: async (members) => {
    const g = await api('group', { action: 'add', groupId: store.openId, members });
    store.setGroup(g);
    client.loadNames(g.members);
    render();
  },
  leave: async (id) => {
    await api('group', { action: 'remove', groupId: id, members: [store.me] });
    client.forgetGroup(id);
  },
  onOpen: openConv,
});

document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible') {
    client.markReadSoon();
    conn.reconnectNow();
  }
});
window.addEventListener('online', () => conn.reconnectNow());
window.addEventListener('focus', () => client.markReadSoon());

// leaving: the conversation on screen is about to change; stop "typing" there.
function leaving() {
  const prev = store.convs.get(store.openId);
  if (prev) client.stopTyping(prev);
}

function openConv(id) {
  if (store.openId !== id) leaving();
  const opened = store.open(id);
  if (!opened) return;
  const { conv, switched } = opened;
  if (switched) chat.clear();
  $('app').dataset.view = 'chat';
  chat.stick();
  history.replaceState(null, '', '#' + encodeURIComponent(id));
  render();
  if (needsHistory(conv)) client.loadOlder(conv);
  if (conv.chatType === GROUP) client.loadGroup(conv);
  client.refreshPresence();
  client.markReadSoon();
  chat.focus();
}

function closeConv() {
  leaving();
  store.close();
  $('app').dataset.view = 'list';
  history.replaceState(null, '', location.pathname);
  render();
}

function startSession(s) {
  store.begin(s);
  files.reset();
  storage.saveSession(s);
  list.clear();
  chat.clear();
  // Receipts seen before, and messages not acked when the page closed.
  store.restore(storage.loadReads(s.userId), storage.loadOutbox(s.userId));
  login.hide();
  $('app').hidden = false;
  $('app').dataset.view = 'list';
  topbar.showMe(s.userId, s.nickname);
  document.title = 'Easy Chat · ' + s.userId;
  render();
  client.refreshList().catch(() => {});
  conn.start(s.token);
  client.refreshPresence();
  api('user', { action: 'me' }).then((u) => {
    if (u.nickname && store.session) {
      store.session.nickname = u.nickname;
      storage.saveSession(store.session);
      topbar.showMe(u.userId, u.nickname);
    }
  }, () => {});
  const hash = decodeURIComponent(location.hash.slice(1));
  if (hash) {
    const c = store.convs.get(hash) || (hash.includes('_') && hash.split('_').includes(s.userId) ? store.ensure(hash, SINGLE) : null);
    if (c) openConv(c.id);
    else client.refreshList().then(() => { if (store.convs.has(hash)) openConv(hash); }, () => {});
  }
}

function logout(msg) {
  conn.stop();
  client.stop();
  storage.forget(store.me);
  store.end();
  files.reset();
  history.replaceState(null, '', location.pathname);
  login.show(msg);
}

// A small handle for debugging in the console.
window.easychat = { state: store, conn, client, files, syncNow: () => client.syncNow(), refreshList: () => client.refreshList() };

const saved = storage.loadSession();
if (saved && saved.token && saved.userId) startSession(saved);
else login.show('');
