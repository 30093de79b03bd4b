// The conversation list, and the form that starts a single chat.
import { GROUP } from '../conv.js';
import { previewText } from '../files.js';
import { $, el, fmtTime, fillAvatar, ID_RE } from './dom.js';

// createList binds the list to store. onOpen(id) opens a conversation;
// onNewChat(peer) starts one with a user id checked here.
export function createList(store, { onOpen, onNewChat }) {
  const rows = new Map(); // conversationId → <li>

  $('new-chat').addEventListener('submit', (e) => {
    e.preventDefault();
    const input = e.target.peer;
    const peer = input.value.trim();
    const err = $('new-chat-error');
    err.textContent = '';
    if (!ID_RE.test(peer)) { err.textContent = 'Enter a user id (3–32 letters, digits, “.” or “-”).'; return; }
    if (peer === store.me) { err.textContent = 'That is you.'; return; }
    input.value = '';
    onNewChat(peer);
  });

  function row(c) {
    const li = el('li', 'conv');
    li.dataset.conv = c.id;
    li.tabIndex = 0;
    li.setAttribute('role', 'button');
    const av = el('span', 'avatar');
    av.append(el('span'), el('i', 'dot'));
    const body = el('div', 'conv-body');
    const top = el('div', 'conv-top');
    top.append(el('span', 'conv-name'), el('time', 'conv-time'));
    const bottom = el('div', 'conv-bottom');
    const at = el('span', 'mention-badge', '@you');
    at.title = 'You were mentioned';
    at.setAttribute('aria-label', 'You were mentioned');
    bottom.append(el('span', 'conv-last'), at, el('span', 'badge'));
    body.append(top, bottom);
    li.append(av, body);
    li.addEventListener('click', () => onOpen(c.id));
    li.addEventListener('keydown', (e) => { if (e.key === 'Enter') onOpen(c.id); });
    return li;
  }

  function render() {
    const ul = $('convs');
    const convs = store.listed();
    $('convs-empty').hidden = convs.length > 0 || !store.listLoaded;
    const seen = new Set();
    for (const c of convs) {
      seen.add(c.id);
      let li = rows.get(c.id);
      if (!li) {
        li = row(c);
        rows.set(c.id, li);
      }
      fillAvatar(li.querySelector('.avatar'), c, store);
      li.querySelector('.conv-name').textContent = store.title(c);
      li.querySelector('.conv-time').textContent = c.lastMsg ? fmtTime(c.lastMsg.sendTime) : '';
      let last = 'No messages yet';
      if (c.lastMsg) {
        const who = c.lastMsg.sendId === store.me ? 'You: ' : c.chatType === GROUP ? store.nameOf(c.lastMsg.sendId) + ': ' : '';
        // An image or file message's content is its JSON: "[image]", "[file] name".
        last = who + (c.lastMsg.recalled ? 'message recalled' : previewText(c.lastMsg.mType, c.lastMsg.content));
      }
      li.querySelector('.conv-last').textContent = last;
      const badge = li.querySelector('.badge');
      badge.textContent = c.unread > 99 ? '99+' : String(c.unread);
      badge.hidden = !c.unread;
      li.querySelector('.mention-badge').hidden = !c.mentioned;
      li.classList.toggle('active', c.id === store.openId);
      li.classList.toggle('unread', c.unread > 0);
      ul.append(li); // moves it into sorted place
    }
    for (const [id, li] of rows) {
      if (!seen.has(id)) { li.remove(); rows.delete(id); }
    }
  }

  // clear forgets the rows of an earlier session.
  function clear() {
    for (const li of rows.values()) li.remove();
    rows.clear();
  }

  return { render, clear };
}
