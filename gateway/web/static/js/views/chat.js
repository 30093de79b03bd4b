// The open conversation: its header, who is typing, the messages with their
// ticks, quotes, edits, recalls and reactions, each with its actions (on
// hover or focus; on a tap where there is no hover), the history line above
// them, and the composer with its reply/edit bar, @mention choices and
// attachments (a paperclip, paste or drop; the uploads' progress above it).
// Image messages show a thumbnail that opens the full image, file messages
// a row with a Download link.
import { GROUP, SINGLE, sortedMessages, ownStatus, readersOf } from '../conv.js';
import {
  REACTIONS, mentionsMe, resolveQuote, quoteOf, canEdit, canRecall, canReply, canReact, reactionList,
  hasReacted, mentionsIn, mentionQuery, mentionChoices,
} from '../msgstate.js';
import { IMAGE, isFileMessage, parseFile, previewText, quoteLabel, humanSize, fitSize, extLabel } from '../files.js';
import { $, el, hue, fmtTime, fillAvatar } from './dom.js';
import { createLightbox } from './lightbox.js';

const TICKS = { pending: '🕓', failed: '⚠ not sent · retry', read: '✓✓', delivered: '✓✓', sent: '✓' };
const ACTIONS = [
  ['reply', 'Reply', '↩'],
  ['react', 'React', '☺'],
  ['edit', 'Edit', '✎'],
  ['recall', 'Recall', '⟲'],
  ['hide', 'Delete for me', '🗑'],
];
// Where there is no hover (touch) or one column, a tap shows a message's
// actions.
const tapMode = () => matchMedia('(hover: none), (max-width: 760px)').matches;

// createChat binds the pane to store. h has onSend(conv, text, extra)
// (extra: quote, mentions, mentionAll), onRetry(frameId), onOlder(conv),
// onBack(), onTyped(conv), onStopTyping(conv), onRecall(conv, m),
// onEdit(conv, m, text), onReact(conv, m, emoji, remove), onHide(conv, m)
// and notice(text); for files onAttach(conv, files, extra), uploads(convId),
// onDismissUpload(id), link(key) (a held download link, or ''), thumb(key)
// (the link of its thumbnail, or ''),
// needLinks(keys), linkFailed(key) and freshLink(key) (a promise of a link).
export function createChat(store, h) {
  const { onSend, onRetry, onOlder, onBack } = h;
  const bubbles = new Map(); // message key → <li>, for the open conversation
  let stickToBottom = false;
  let keepScrollOnPrepend = false;
  let mode = null; // {kind: 'reply' | 'edit', key}: what the composer is doing
  const picked = new Map(); // userId → label put in the text by a mention choice
  let choices = []; // mention choices shown
  let active = 0; // the highlighted one
  const box = $('messages');
  const list = $('msg-list');
  const lightbox = createLightbox();
  const uploadRows = new Map(); // upload id → <li>

  $('back').addEventListener('click', onBack);

  const openConv = () => store.convs.get(store.openId);
  const composer = $('composer');
  const ta = composer.text;
  const grow = () => {
    ta.style.height = 'auto';
    ta.style.height = Math.min(ta.scrollHeight, 160) + 'px';
  };
  ta.addEventListener('input', () => {
    grow();
    const conv = openConv();
    if (conv && mode?.kind !== 'edit') {
      if (ta.value.trim()) h.onTyped(conv);
      else h.onStopTyping(conv);
    }
    updateChoices();
  });
  ta.addEventListener('click', updateChoices);
  ta.addEventListener('blur', () => {
    const conv = openConv();
    if (conv) h.onStopTyping(conv);
    // Let a click on a choice land first.
    setTimeout(() => { if (document.activeElement !== ta) closeChoices(); }, 150);
  });
  ta.addEventListener('keydown', (e) => {
    if (choices.length) {
      if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
        e.preventDefault();
        active = (active + (e.key === 'ArrowDown' ? 1 : choices.length - 1)) % choices.length;
        drawChoices();
        return;
      }
      if ((e.key === 'Enter' || e.key === 'Tab') && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        pick(choices[active]);
        return;
      }
      if (e.key === 'Escape') {
        e.preventDefault();
        closeChoices();
        return;
      }
    }
    if (e.key === 'Escape' && mode) {
      e.preventDefault();
      cancelMode();
      return;
    }
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      composer.requestSubmit();
    }
  });
  composer.addEventListener('submit', (e) => {
    e.preventDefault();
    const conv = openConv();
    const text = ta.value.trim();
    if (!conv || !text) return;
    const target = mode && conv.msgs.get(mode.key);
    if (mode?.kind === 'edit') {
      if (!target) return;
      if (text !== target.content) h.onEdit(conv, target, text);
      setMode(null);
      ta.value = '';
      grow();
      return;
    }
    const extra = {};
    if (mode?.kind === 'reply' && target && canReply(target)) extra.quote = quoteOf(target);
    if (conv.chatType === GROUP) Object.assign(extra, mentionsIn(text, candidates(conv), store.isOwner(conv)));
    ta.value = '';
    grow();
    setMode(null);
    picked.clear();
    closeChoices();
    stickToBottom = true;
    onSend(conv, text, extra);
  });
  $('compose-cancel').addEventListener('click', () => {
    cancelMode();
    ta.focus();
  });

  // ---- attachments: the paperclip, a paste, a drop

  const fileInput = $('file-input');
  $('attach').addEventListener('click', () => fileInput.click());
  fileInput.addEventListener('change', () => {
    const files = [...fileInput.files];
    fileInput.value = ''; // the same file may be chosen again
    attach(files);
  });
  ta.addEventListener('paste', (e) => {
    const files = [...((e.clipboardData && e.clipboardData.files) || [])];
    if (!files.length || mode?.kind === 'edit') return;
    e.preventDefault();
    attach(files);
  });
  const pane = $('chat-pane');
  const dragsFiles = (e) => !!e.dataTransfer && [...e.dataTransfer.types].includes('Files');
  pane.addEventListener('dragover', (e) => {
    if (!dragsFiles(e) || mode?.kind === 'edit') return;
    e.preventDefault();
    e.dataTransfer.dropEffect = 'copy';
    pane.classList.add('dropping');
  });
  pane.addEventListener('dragleave', (e) => {
    if (!pane.contains(e.relatedTarget)) pane.classList.remove('dropping');
  });
  pane.addEventListener('drop', (e) => {
    pane.classList.remove('dropping');
    if (!dragsFiles(e) || mode?.kind === 'edit') return;
    e.preventDefault();
    attach([...e.dataTransfer.files]);
  });
  // A file dropped anywhere else must not replace the page with itself.
  for (const type of ['dragover', 'drop']) {
    addEventListener(type, (e) => {
      if (!dragsFiles(e) || e.defaultPrevented) return;
      e.preventDefault();
      e.dataTransfer.dropEffect = 'none';
    });
  }

  // attach sends files to the open conversation, as the answer to the
  // message being replied to if any.
  function attach(files) {
    const conv = openConv();
    if (!conv || !files.length) return;
    const extra = {};
    const target = mode?.kind === 'reply' && conv.msgs.get(mode.key);
    if (target && canReply(target)) extra.quote = quoteOf(target);
    if (mode?.kind === 'reply') setMode(null);
    stickToBottom = true;
    h.onAttach(conv, files, extra);
  }

  const UPLOAD_STATE = { queued: 'Waiting…', uploading: 'Uploading…' };

  function uploadRow(u) {
    const li = el('li', 'upload');
    const what = el('span', 'upload-what');
    what.append(el('span', 'upload-name'), el('span', 'upload-note'));
    const x = el('button', 'ghost icon', '✕');
    x.type = 'button';
    x.addEventListener('click', () => h.onDismissUpload(u.id));
    li.append(el('span', 'upload-icon'), what, x);
    return li;
  }

  // renderUploads lists the open conversation's uploads under way or failed.
  function renderUploads(conv) {
    const ul = $('uploads');
    const us = h.uploads(conv.id);
    const seen = new Set();
    for (const u of us) {
      let li = uploadRows.get(u.id);
      if (!li) uploadRows.set(u.id, (li = uploadRow(u)));
      seen.add(u.id);
      li.dataset.state = u.state;
      li.querySelector('.upload-name').textContent = u.name;
      li.querySelector('.upload-note').textContent = u.state === 'failed' ? u.error : `${humanSize(u.size)} · ${UPLOAD_STATE[u.state] || ''}`;
      li.querySelector('button').setAttribute('aria-label', (u.state === 'failed' ? 'Dismiss ' : 'Cancel ') + u.name);
      li.title = u.state === 'failed' ? `${u.name}: ${u.error}` : u.name;
      ul.append(li);
    }
    for (const [id, li] of uploadRows) {
      if (!seen.has(id)) { li.remove(); uploadRows.delete(id); }
    }
    ul.hidden = !us.length;
  }

  // ---- reply and edit

  function setMode(m) {
    mode = m;
    renderMode(openConv());
  }

  function cancelMode() {
    if (mode?.kind === 'edit') {
      ta.value = '';
      grow();
    }
    setMode(null);
  }

  function renderMode(conv) {
    const bar = $('compose-bar');
    const target = mode && conv && conv.msgs.get(mode.key);
    // The message went away (hidden, or recalled while being edited).
    if (mode && (!target || target.hidden || (mode.kind === 'edit' && target.recalled))) mode = null;
    bar.hidden = !mode;
    composer.dataset.mode = mode ? mode.kind : '';
    composer.querySelector('button[type=submit]').textContent = mode?.kind === 'edit' ? 'Save' : 'Send';
    if (!mode) return;
    const cancel = $('compose-cancel');
    if (mode.kind === 'reply') {
      $('compose-title').textContent = 'Reply to ' + (target.sendId === store.me ? 'yourself' : store.nameOf(target.sendId));
      $('compose-text').textContent = target.recalled ? 'message recalled' : quoteLabel(target.mType, quoteOf(target).content);
      cancel.setAttribute('aria-label', 'Cancel reply');
    } else {
      $('compose-title').textContent = 'Edit message';
      $('compose-text').textContent = quoteOf(target).content;
      cancel.setAttribute('aria-label', 'Cancel edit');
    }
  }

  // ---- @mentions

  function candidates(conv) {
    const g = store.groups.get(conv.id);
    const out = [];
    for (const u of g ? g.members : []) if (u !== store.me) out.push({ id: u, label: store.nameOf(u) });
    for (const [id, label] of picked) out.push({ id, label });
    return out;
  }

  function updateChoices() {
    const conv = openConv();
    const g = conv && conv.chatType === GROUP && store.groups.get(conv.id);
    const q = g && mode?.kind !== 'edit' ? mentionQuery(ta.value, ta.selectionStart) : null;
    const next = q ? mentionChoices(q.query, g.members, (u) => store.nameOf(u), store.me, store.isOwner(conv)) : [];
    if (next.map((c) => c.id).join() !== choices.map((c) => c.id).join()) active = 0;
    choices = next;
    drawChoices();
  }

  function drawChoices() {
    const ul = $('mention-list');
    ul.replaceChildren();
    ul.hidden = !choices.length;
    ta.setAttribute('aria-expanded', String(choices.length > 0));
    choices.forEach((c, i) => {
      const li = el('li', 'mention-choice');
      li.id = 'mention-opt-' + i;
      li.setAttribute('role', 'option');
      li.setAttribute('aria-selected', String(i === active));
      li.dataset.user = c.id;
      li.append(el('span', 'mention-name', c.all ? '@all' : c.label));
      li.append(el('span', 'mention-id', c.all ? 'everyone in the group' : c.id !== c.label ? c.id : ''));
      // mousedown: before the textarea loses focus.
      li.addEventListener('mousedown', (e) => {
        e.preventDefault();
        pick(c);
      });
      ul.append(li);
    });
    if (choices.length) ta.setAttribute('aria-activedescendant', 'mention-opt-' + active);
    else ta.removeAttribute('aria-activedescendant');
  }

  function closeChoices() {
    choices = [];
    drawChoices();
  }

  function pick(c) {
    const q = mentionQuery(ta.value, ta.selectionStart);
    if (!q) return closeChoices();
    const tag = '@' + (c.all ? 'all' : c.label) + ' ';
    const end = ta.selectionStart;
    ta.value = ta.value.slice(0, q.start) + tag + ta.value.slice(end);
    const caret = q.start + tag.length;
    ta.setSelectionRange(caret, caret);
    if (!c.all) picked.set(c.id, c.label);
    closeChoices();
    grow();
    ta.focus();
  }

  // ---- message actions

  const messageOf = (li) => {
    const conv = openConv();
    const m = conv && li && conv.msgs.get(li.dataset.key);
    return m ? { conv, m } : null;
  };

  function closeMenus(except) {
    for (const li of list.querySelectorAll('.msg.open, .msg.picking')) {
      if (li === except) continue;
      li.classList.remove('open', 'picking');
      li.querySelector('[data-act=react]').setAttribute('aria-expanded', 'false');
    }
  }

  function act(kind, conv, m, li) {
    const now = Date.now();
    switch (kind) {
      case 'reply':
        setMode({ kind: 'reply', key: m.key });
        closeMenus();
        ta.focus();
        break;
      case 'react': {
        const on = !li.classList.contains('picking');
        li.classList.toggle('picking', on);
        li.classList.add('open');
        li.querySelector('[data-act=react]').setAttribute('aria-expanded', String(on));
        if (on) li.querySelector('.palette button').focus();
        break;
      }
      case 'edit':
        closeMenus();
        if (!canEdit(m, store.me, now)) { h.notice('Messages can be edited for 15 minutes after sending.'); break; }
        setMode({ kind: 'edit', key: m.key });
        ta.value = m.content;
        grow();
        ta.focus();
        break;
      case 'recall':
        closeMenus();
        if (!canRecall(m, store.me, now, store.isOwner(conv))) { h.notice('Messages can be recalled for 2 minutes after sending.'); break; }
        if (confirm('Recall this message for everyone?')) h.onRecall(conv, m);
        break;
      case 'hide':
        closeMenus();
        if (confirm('Delete this message for you? Others still see it.')) h.onHide(conv, m);
        break;
    }
  }

  list.addEventListener('click', (e) => {
    const li = e.target.closest('.msg');
    const hit = messageOf(li);
    if (!hit) return;
    const { conv, m } = hit;
    if (e.target.closest('.thumb')) {
      openImage(m);
      return;
    }
    const dl = e.target.closest('.file-dl');
    if (dl) {
      download(e, dl);
      return;
    }
    const btn = e.target.closest('button');
    if (btn && btn.dataset.act) {
      act(btn.dataset.act, conv, m, li);
      return;
    }
    if (btn && btn.dataset.emoji) {
      const emoji = btn.dataset.emoji;
      closeMenus();
      if (canReact(m)) h.onReact(conv, m, emoji, hasReacted(m, store.me, emoji));
      return;
    }
    if (btn && btn.classList.contains('quote')) {
      const q = bubbles.get(btn.dataset.msgid);
      if (q) {
        q.scrollIntoView({ block: 'center', behavior: 'smooth' });
        q.classList.add('flash');
        setTimeout(() => q.classList.remove('flash'), 1200);
      }
      return;
    }
    if (m.status === 'failed') {
      onRetry(m.frameId);
      return;
    }
    if (tapMode() && m.msgId && !m.hidden && e.target.closest('.bubble')) {
      const open = !li.classList.contains('open');
      closeMenus(li);
      li.classList.toggle('open', open);
      if (!open) li.classList.remove('picking');
      fillTools(li, conv, m);
    }
  });
  // A long press where there is no hover: the actions, also of an image
  // (a tap on it opens it).
  list.addEventListener('contextmenu', (e) => {
    const li = e.target.closest('.msg');
    const hit = tapMode() ? messageOf(li) : null;
    if (!hit || !hit.m.msgId || hit.m.hidden) return;
    e.preventDefault();
    closeMenus(li);
    li.classList.add('open');
    fillTools(li, hit.conv, hit.m);
  });
  // What may be done can change with time (the edit and recall windows).
  list.addEventListener('pointerover', (e) => {
    const li = e.target.closest('.msg');
    const hit = !li || li.contains(e.relatedTarget) ? null : messageOf(li);
    if (hit) fillTools(li, hit.conv, hit.m);
  });
  list.addEventListener('focusin', (e) => {
    const li = e.target.closest('.msg');
    const hit = messageOf(li);
    if (hit) fillTools(li, hit.conv, hit.m);
  });
  list.addEventListener('keydown', (e) => {
    if (e.key !== 'Escape') return;
    const li = e.target.closest('.msg');
    if (li && (li.classList.contains('open') || li.classList.contains('picking'))) {
      closeMenus();
      li.querySelector('.bubble').focus();
    }
  });
  document.addEventListener('click', (e) => {
    if (!e.target.closest || !e.target.closest('#msg-list .msg')) closeMenus();
  });

  function openImage(m) {
    const f = !m.recalled && m.mType === IMAGE ? parseFile(m.content) : null;
    if (f) lightbox.show(f, h.freshLink(f.key));
  }

  // download lets the browser follow a Download link that is still good;
  // else it asks for a new one first.
  function download(e, a) {
    const key = a.closest('.attach').dataset.key;
    if (a.getAttribute('href') && h.link(key)) return;
    e.preventDefault();
    h.freshLink(key).then((url) => {
      if (!url) throw new Error('the file is not available');
      a.href = url;
      a.click();
    }).catch((err) => h.notice('Could not download the file: ' + err.message));
  }

  box.addEventListener('scroll', () => {
    const conv = openConv();
    if (conv && box.scrollTop < 120) onOlder(conv);
  });

  function atBottom() {
    return box.scrollHeight - box.scrollTop - box.clientHeight < 48;
  }

  function renderOlder() {
    const conv = openConv();
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

  function renderTyping(conv) {
    const names = store.typers(conv).map((u) => store.nameOf(u));
    const p = $('typing');
    p.hidden = !names.length;
    p.textContent = names.length === 1 ? `${names[0]} is typing…`
      : names.length === 2 ? `${names[0]} and ${names[1]} are typing…`
        : names.length ? 'Several people are typing…' : '';
  }

  function bubble() {
    const li = el('li', 'msg');
    const body = el('div', 'body');
    const b = el('div', 'bubble');
    const quote = el('button', 'quote');
    quote.type = 'button';
    quote.hidden = true;
    quote.append(el('span', 'quote-from'), el('span', 'quote-text'));
    const meta = el('span', 'meta');
    meta.append(el('span', 'edited', '(edited)'), el('time'), el('span', 'ticks'));
    b.append(el('span', 'from'), quote, el('span', 'text'), meta);
    const reactions = el('div', 'reactions');
    reactions.setAttribute('role', 'group');
    reactions.setAttribute('aria-label', 'Reactions');
    body.append(b, reactions);
    const tools = el('div', 'tools');
    tools.setAttribute('role', 'toolbar');
    tools.setAttribute('aria-label', 'Message actions');
    for (const [act, label, icon] of ACTIONS) {
      const btn = el('button', 'tool', icon);
      btn.type = 'button';
      btn.dataset.act = act;
      btn.title = label;
      btn.setAttribute('aria-label', label);
      if (act === 'react') {
        btn.setAttribute('aria-haspopup', 'true');
        btn.setAttribute('aria-expanded', 'false');
      }
      tools.append(btn);
    }
    const palette = el('div', 'palette');
    for (const e of REACTIONS) {
      const btn = el('button', 'tool emoji', e);
      btn.type = 'button';
      btn.dataset.emoji = e;
      btn.setAttribute('aria-label', 'React with ' + e);
      palette.append(btn);
    }
    tools.append(palette);
    body.append(tools);
    li.append(body);
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
  }

  function fillQuote(li, conv, m) {
    const btn = li.querySelector('.quote');
    const q = !m.recalled && resolveQuote(conv, m.quote);
    btn.hidden = !q;
    if (!q) return;
    const who = q.missing ? '' : q.sendId === store.me ? 'You' : store.nameOf(q.sendId);
    const text = q.missing ? 'message not found' : q.recalled ? 'message recalled' : quoteLabel(q.mType, q.content);
    btn.dataset.msgid = q.msgId;
    btn.classList.toggle('gone', !!(q.missing || q.recalled));
    btn.querySelector('.quote-from').textContent = who;
    btn.querySelector('.quote-text').textContent = text;
    btn.setAttribute('aria-label', `In reply to ${who || 'a message'}: ${text}`);
  }

  function fillReactions(li, m) {
    const wrap = li.querySelector('.reactions');
    const rs = m.recalled ? [] : reactionList(m, store.me);
    wrap.hidden = !rs.length;
    wrap.replaceChildren();
    for (const r of rs) {
      const chip = el('button', 'chip');
      chip.type = 'button';
      chip.dataset.emoji = r.emoji;
      chip.append(r.emoji + ' ', el('span', 'n', String(r.count)));
      const who = r.users.map((u) => (u === store.me ? 'you' : store.nameOf(u))).join(', ');
      chip.title = who;
      chip.classList.toggle('mine', r.mine);
      chip.setAttribute('aria-pressed', String(r.mine));
      chip.setAttribute('aria-label', `${r.emoji} ${r.count}: ${who}. ${r.mine ? 'Remove yours' : 'Add yours'}`);
      wrap.append(chip);
    }
  }

  function imageBox(f) {
    const btn = el('button', 'attach thumb');
    btn.type = 'button';
    btn.dataset.state = 'loading';
    btn.title = f.name;
    btn.setAttribute('aria-label', 'Open image ' + f.name);
    // The box has the image's shape before it loads.
    const s = fitSize(f.width, f.height);
    btn.style.width = s.width + 'px';
    btn.style.height = s.height + 'px';
    const img = el('img');
    img.alt = f.name;
    img.width = s.width;
    img.height = s.height;
    img.loading = 'lazy';
    img.decoding = 'async';
    img.draggable = false;
    img.addEventListener('load', () => { btn.dataset.state = 'loaded'; });
    img.addEventListener('error', () => {
      if (!img.getAttribute('src')) return;
      img.removeAttribute('src');
      // An old link is asked for again; a new one that fails: it is gone.
      btn.dataset.state = h.linkFailed(f.key) ? 'loading' : 'broken';
      if (btn.dataset.state === 'loading') render();
    });
    btn.append(img, el('span', 'thumb-note', 'image not available'));
    return btn;
  }

  function fileBox(f) {
    const row = el('div', 'attach file-row');
    const icon = el('span', 'file-icon', extLabel(f.name, f.type));
    icon.setAttribute('aria-hidden', 'true');
    const info = el('span', 'file-info');
    const name = el('span', 'file-name', f.name);
    name.title = f.name;
    info.append(name, el('span', 'file-size', humanSize(f.size)));
    const a = el('a', 'file-dl', 'Download');
    a.download = f.name;
    a.tabIndex = 0; // also before its link has come
    a.setAttribute('aria-label', 'Download ' + f.name);
    row.append(icon, info, a);
    return row;
  }

  // fillAttach draws m's image or file, if it is one (and not recalled),
  // and adds to need the keys whose links are to be asked for. It returns
  // the file drawn, or null.
  function fillAttach(li, m, need) {
    const f = !m.recalled && isFileMessage(m.mType) ? parseFile(m.content) : null;
    const kind = f ? (m.mType === IMAGE ? 'image' : 'file') : '';
    let box = li.querySelector('.attach');
    li.dataset.kind = kind || 'text';
    if (!f) {
      if (box) box.remove();
      return null;
    }
    if (!box || box.dataset.key !== f.key || box.dataset.kind !== kind) {
      const next = kind === 'image' ? imageBox(f) : fileBox(f);
      next.dataset.key = f.key;
      next.dataset.kind = kind;
      if (box) box.replaceWith(next);
      else li.querySelector('.text').before(next);
      box = next;
    }
    // An image is shown from its thumbnail; the full one opens on a click.
    const url = kind === 'image' ? h.thumb(f.key) || h.link(f.key) : h.link(f.key);
    if (kind === 'image') {
      const img = box.querySelector('img');
      // A loaded image keeps its link; only one not shown yet needs one.
      if (img.getAttribute('src') || box.dataset.state === 'broken') return f;
      if (url) img.src = url;
      else need.push(f.key);
    } else {
      const a = box.querySelector('.file-dl');
      if (url) a.href = url;
      else {
        a.removeAttribute('href');
        need.push(f.key);
      }
    }
    return f;
  }

  function fillTools(li, conv, m) {
    const now = Date.now();
    const can = {
      reply: canReply(m),
      react: canReact(m),
      edit: canEdit(m, store.me, now),
      recall: canRecall(m, store.me, now, store.isOwner(conv)),
      hide: !!m.msgId && !m.hidden,
    };
    for (const [act] of ACTIONS) li.querySelector(`[data-act=${act}]`).hidden = !can[act];
    li.querySelector('.tools').hidden = !m.msgId;
    li.querySelector('.bubble').tabIndex = m.msgId ? 0 : -1;
    for (const b of li.querySelectorAll('.palette button')) {
      const mine = hasReacted(m, store.me, b.dataset.emoji);
      b.classList.toggle('mine', mine);
      b.setAttribute('aria-pressed', String(mine));
    }
  }

  function renderMessages(conv) {
    const seen = new Set();
    const need = [];
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
      li.classList.toggle('recalled', !!m.recalled);
      li.classList.toggle('mentioned', mentionsMe(m, store.me));
      li.dataset.key = m.key;
      li.dataset.msgid = m.msgId || '';
      li.dataset.seq = m.seq ? String(m.seq) : '';
      li.dataset.from = m.sendId;
      const from = li.querySelector('.from');
      from.textContent = store.nameOf(m.sendId);
      from.hidden = own || conv.chatType !== GROUP || prevSender === m.sendId;
      from.style.setProperty('--h', hue(m.sendId));
      fillQuote(li, conv, m);
      const f = fillAttach(li, m, need);
      const text = li.querySelector('.text');
      text.textContent = m.recalled ? 'message recalled' : f ? '' : isFileMessage(m.mType) ? previewText(m.mType, m.content) : m.content;
      text.hidden = !!f;
      text.title = m.recalled && m.recalledBy ? 'Recalled by ' + (m.recalledBy === store.me ? 'you' : store.nameOf(m.recalledBy)) : '';
      const edited = li.querySelector('.edited');
      edited.hidden = !m.edited || m.recalled;
      edited.title = m.edited ? 'Edited ' + new Date(m.edited).toLocaleString() : '';
      li.querySelector('time').textContent = fmtTime(m.sendTime, false);
      li.querySelector('time').title = new Date(m.sendTime).toLocaleString();
      if (own) {
        fillTicks(li, conv, m);
      } else {
        delete li.dataset.status;
        li.querySelector('.ticks').hidden = true;
        li.classList.remove('failed');
      }
      fillReactions(li, m);
      fillTools(li, conv, m);
      prevSender = m.sendId;
      list.append(li);
    }
    for (const [k, li] of bubbles) {
      if (!seen.has(k)) { li.remove(); bubbles.delete(k); }
    }
    if (need.length) h.needLinks(need);
  }

  function render() {
    const conv = openConv();
    $('chat-none').hidden = !!conv;
    $('chat-pane').hidden = !conv;
    if (!conv) return;
    renderHead(conv);
    renderTyping(conv);
    renderOlder();
    renderMode(conv);
    renderUploads(conv);

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
    // clear forgets the bubbles of the conversation shown before, and what
    // the composer was doing for it.
    clear() {
      for (const li of bubbles.values()) li.remove();
      bubbles.clear();
      mode = null;
      picked.clear();
      closeChoices();
      if (composer.dataset.mode === 'edit') ta.value = '';
      renderMode(null);
    },
    // stick keeps the next drawing at the bottom.
    stick() { stickToBottom = true; },
    // pushed keeps it at the bottom if it is there now.
    pushed() { stickToBottom = stickToBottom || atBottom(); },
    // olderLoaded keeps what is in view in place when a page goes above it.
    olderLoaded() { keepScrollOnPrepend = true; },
    focus() { setTimeout(() => ta.focus(), 0); },
    // composing: the user is writing a message (not editing one).
    composing() { return document.activeElement === ta && !!ta.value.trim() && mode?.kind !== 'edit'; },
  };
}
