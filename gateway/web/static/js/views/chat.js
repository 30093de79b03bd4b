// The open conversation: its header, the messages with their ticks, the
// history line above them, and the composer.
import { GROUP, SINGLE, sortedMessages, ownStatus, readersOf } from '../conv.js';
import { $, el, hue, fmtTime, fillAvatar } from './dom.js';

const TICKS = { pending: '🕓', failed: '⚠ not sent · retry', read: '✓✓', delivered: '✓✓', sent: '✓' };

// createChat binds the pane to store. onSend(conv, text) sends a message,
// onRetry(frameId) sends a failed one again, onOlder(conv) loads a history
// page, onBack() returns to the list.
export function createChat(store, { onSend, onRetry, onOlder, onBack }) {
  const bubbles = new Map(); // message key → <li>, for the open conversation
  let stickToBottom = false;
  let keepScrollOnPrepend = false;
  const box = $('messages');

  $('back').addEventListener('click', onBack);

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
    const conv = store.convs.get(store.openId);
    const text = ta.value.trim();
    if (!conv || !text) return;
    ta.value = '';
    grow();
    stickToBottom = true;
    onSend(conv, text);
  });

  box.addEventListener('scroll', () => {
    const conv = store.convs.get(store.openId);
    if (conv && box.scrollTop < 120) onOlder(conv);
  });

  function atBottom() {
    return box.scrollHeight - box.scrollTop - box.clientHeight < 48;
  }

  function renderOlder() {
    const conv = store.convs.get(store.openId);
    const p = $('older');
    if (!conv) return;
    p.textContent = conv.loadingOlder ? 'Loading earlier messages…' : conv.historyDone ? 'Start of the conversation' : 'Scroll up for earlier messages';
    p.dataset.state = conv.loadingOlder ? 'loading' : conv.historyDone ? 'done' : 'more';
  }

  function renderHead(conv) {
    $('chat-pane').dataset.conv = conv.id;
    fillAvatar($('chat-avatar'), conv, store);
    $('chat-name').textContent = store.title(conv);
    const g = store.groups.get(conv.id);
    let sub = '';
    if (conv.chatType === SINGLE) {
      const on = store.online.get(conv.peerId);
      const id = store.nameOf(conv.peerId) !== conv.peerId ? conv.peerId : '';
      sub = [id, on ? 'online' : on === false ? 'offline' : ''].filter(Boolean).join(' · ');
    } else {
      sub = g ? `${g.members.length} members: ${g.members.map((u) => store.nameOf(u)).join(', ')}` : 'group';
    }
    $('chat-sub').textContent = sub;
    $('add-members').hidden = conv.chatType !== GROUP;
    // The owner cannot leave (the server refuses it).
    $('leave-group').hidden = conv.chatType !== GROUP || !g || g.owner === store.me;
  }

  function bubble() {
    const li = el('li', 'msg');
    const b = el('div', 'bubble');
    const meta = el('span', 'meta');
    meta.append(el('time'), el('span', 'ticks'));
    b.append(el('span', 'from'), el('span', 'text'), meta);
    li.append(b);
    return li;
  }

  function fillTicks(li, conv, m) {
    const ticks = li.querySelector('.ticks');
    const st = ownStatus(conv, m, store.me);
    li.dataset.status = st;
    ticks.dataset.status = st;
    ticks.textContent = TICKS[st];
    if (st === 'read') {
      const r = [...readersOf(conv, m, store.me)];
      ticks.title = 'Read by ' + r.map((u) => store.nameOf(u)).join(', ');
      if (conv.chatType === GROUP) ticks.append(el('span', 'n', String(r.length)));
    } else {
      ticks.title = st === 'pending' ? 'Sending…' : st === 'failed' ? (m.error || 'Not sent') + ' — click to retry'
        : st === 'delivered' ? 'Delivered' : 'Sent';
    }
    ticks.hidden = false;
    li.classList.toggle('failed', st === 'failed');
    li.onclick = st === 'failed' ? () => onRetry(m.frameId) : null;
  }

  function renderMessages(conv) {
    const list = $('msg-list');
    const seen = new Set();
    let prevDay = '';
    let prevSender = '';
    for (const m of sortedMessages(conv)) {
      const own = m.sendId === store.me;
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
        li = bubble();
        bubbles.set(m.key, li);
      }
      seen.add(m.key);
      li.classList.toggle('own', own);
      li.dataset.msgid = m.msgId || '';
      li.dataset.seq = m.seq ? String(m.seq) : '';
      li.dataset.from = m.sendId;
      const from = li.querySelector('.from');
      from.textContent = store.nameOf(m.sendId);
      from.hidden = own || conv.chatType !== GROUP || prevSender === m.sendId;
      from.style.setProperty('--h', hue(m.sendId));
      li.querySelector('.text').textContent = m.content;
      li.querySelector('time').textContent = fmtTime(m.sendTime, false);
      li.querySelector('time').title = new Date(m.sendTime).toLocaleString();
      if (own) {
        fillTicks(li, conv, m);
      } else {
        delete li.dataset.status;
        li.querySelector('.ticks').hidden = true;
        li.onclick = null;
      }
      prevSender = m.sendId;
      list.append(li);
    }
    for (const [k, li] of bubbles) {
      if (!seen.has(k)) { li.remove(); bubbles.delete(k); }
    }
  }

  function render() {
    const conv = store.convs.get(store.openId);
    $('chat-none').hidden = !!conv;
    $('chat-pane').hidden = !conv;
    if (!conv) return;
    renderHead(conv);
    renderOlder();

    const wasBottom = atBottom();
    const prevHeight = box.scrollHeight;
    const prevTop = box.scrollTop;
    renderMessages(conv);
    if (keepScrollOnPrepend) {
      keepScrollOnPrepend = false;
      box.scrollTop = prevTop + (box.scrollHeight - prevHeight);
    } else if (stickToBottom || wasBottom) {
      box.scrollTop = box.scrollHeight;
    }
    stickToBottom = false;
    // Not enough to scroll yet: fetch older ones right away.
    if (!conv.historyDone && !conv.loadingOlder && box.scrollHeight <= box.clientHeight + 8) {
      onOlder(conv);
    }
  }

  return {
    render,
    renderOlder,
    // clear forgets the bubbles of the conversation shown before.
    clear() {
      for (const li of bubbles.values()) li.remove();
      bubbles.clear();
    },
    // stick keeps the next drawing at the bottom.
    stick() { stickToBottom = true; },
    // pushed keeps it at the bottom if it is there now.
    pushed() { stickToBottom = stickToBottom || atBottom(); },
    // olderLoaded keeps what is in view in place when a page goes above it.
    olderLoaded() { keepScrollOnPrepend = true; },
    focus() { setTimeout(() => ta.focus(), 0); },
  };
}
