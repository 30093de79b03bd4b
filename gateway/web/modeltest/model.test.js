// Tests of the web client's model (static/js/model.js and conv.js), which
// needs no page and no network. The first cases are those of the terminal
// client's store (cmd/chat/store_test.go), whose rules the web client
// shares; the others are the web client's own (unread counting against the
// list, history bounds, ticks, the outbox, receipts, and the message state
// of protocol 14: changes and versions, replies, mentions, typing).
//
// They live outside static/ so the gateway does not serve them.
// Run: make test-web, or cd gateway/web && node --test
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Store, chatData } from '../static/js/model.js';
import {
  GROUP, SINGLE, MAX_MARK_IDS, knownSeq, sortedMessages, ownStatus, readersOf, toMark,
  deliveredToReport, needsHistory, recvIdOf, singleConvId,
} from '../static/js/conv.js';
import {
  TypingGate, TYPING_EVERY, TYPING_GAP, EDIT_WINDOW, RECALL_WINDOW, canEdit, canRecall, canReply,
  resolveQuote, quoteOf, reactionList, hasReacted, mentionsIn, mentionQuery, mentionChoices, mentionsMe, clip,
} from '../static/js/msgstate.js';

const NOW = 999999;

function store(me = 'alice', now = NOW) {
  const s = new Store(() => now);
  s.begin({ userId: me, nickname: '', token: 't' });
  return s;
}

// push is a push, sync or history item: chat type from the id (groups are
// "g-…"), msgId "m" + text, sent at 1000 × seq.
function push(conv, from, seq, text) {
  return {
    conversationId: conv, chatType: conv[0] === 'g' ? GROUP : SINGLE, sendId: from, seq, sendTime: 1000 * seq,
    msg: { msgId: 'm' + text, content: text, mType: 0 },
  };
}

const contents = (s, conv) => sortedMessages(s.convs.get(conv)).map((m) => m.content);

function listEntry(conv, fields) {
  return { conversationId: conv, chatType: conv[0] === 'g' ? GROUP : SINGLE, seq: 0, readSeq: 0, unread: 0, ...fields };
}

// ---- the cases of cmd/chat/store_test.go

test('the same message by push, sync and history is held once, in seq order whatever the arrival order', () => {
  const s = store();
  const conv = 'alice_bob';
  assert.equal(s.merge(push(conv, 'bob', 2, 'two'), 'push', null).added, true);
  for (const src of ['push', 'sync', 'history']) {
    assert.equal(s.merge(push(conv, 'bob', 2, 'two'), src, null).added, false, `duplicate from ${src}`);
  }
  s.merge(push(conv, 'bob', 3, 'three'), 'sync', null);
  s.merge(push(conv, 'bob', 1, 'one'), 'history', null);
  assert.deepEqual(contents(s, conv), ['one', 'two', 'three']);
  const c = s.convs.get(conv);
  assert.equal(c.peerId, 'bob');
  assert.equal(c.seq, 3);
  assert.equal(c.unread, 2, 'history does not count');
});

test('a message of mine is known by msgId after the ack; the sync that brings its seq does not show it again', () => {
  const s = store();
  const conv = 'alice_bob';
  s.merge(push(conv, 'bob', 1, 'hi'), 'push', null);
  const item = s.queue(s.convs.get(conv), 'f1', 'mine');
  s.acked(item, { conversationId: conv, msgId: 'mmine' });
  assert.deepEqual(contents(s, conv), ['hi', 'mine'], 'before its seq');
  assert.equal(s.merge(push(conv, 'alice', 2, 'mine'), 'sync', null).added, false, 'own message shown twice');
  const ms = sortedMessages(s.convs.get(conv));
  assert.equal(ms.length, 2);
  assert.equal(ms[1].seq, 2, 'seq filled in');
  assert.equal(s.convs.get(conv).unread, 1, "bob's; mine does not count");
});

test('known seq: from the list, contiguous pushes, a gap until sync fills it, new conversations', () => {
  const s = store();
  // From the list only: sync starts at the list's seq (older ones are
  // history, fetched on opening).
  s.applyList([
    listEntry('alice_bob', { peerId: 'bob', seq: 10, readSeq: 4, unread: 6 }),
    listEntry('g-1', { groupName: 'team', seq: 0 }),
  ], null);
  assert.deepEqual(s.knownSeqs(), { alice_bob: 10, 'g-1': 0 });
  // Contiguous pushes advance it.
  s.push(push('alice_bob', 'bob', 11, '11'), null);
  s.push(push('alice_bob', 'bob', 12, '12'), null);
  assert.equal(s.knownSeqs().alice_bob, 12);
  // A gap (13 missed) stops it at 12 until sync fills it.
  s.push(push('alice_bob', 'bob', 14, '14'), null);
  assert.equal(s.knownSeqs().alice_bob, 12, 'with a gap');
  s.merge(push('alice_bob', 'bob', 13, '13'), 'sync', null);
  assert.equal(s.knownSeqs().alice_bob, 14, 'gap filled');
  // A conversation first seen by a push: older ones are history.
  s.push(push('g-2', 'carol', 40, '40'), null);
  assert.equal(s.knownSeqs()['g-2'], 40, 'new conversation');
  // History below the base does not change it.
  s.merge(push('g-2', 'carol', 38, '38'), 'history', null);
  assert.equal(s.knownSeqs()['g-2'], 40, 'after history');
  // A conversation first seen by sync from 0 (sync sends all of it).
  s.merge(push('g-3', 'carol', 1, 'g3-1'), 'sync', null);
  s.merge(push('g-3', 'carol', 2, 'g3-2'), 'sync', null);
  assert.equal(s.knownSeqs()['g-3'], 2, 'synced conversation');
});

test('to mark: the newest seq held and the ids of others\' messages after my read position', () => {
  const s = store();
  const conv = 'g-1';
  s.merge(push(conv, 'bob', 1, 'b1'), 'push', null);
  s.merge(push(conv, 'alice', 2, 'a2'), 'sync', null);
  s.merge(push(conv, 'carol', 3, 'c3'), 'push', null);
  const c = s.convs.get(conv);
  assert.equal(c.unread, 2);
  let mark = toMark(c, 'alice');
  assert.deepEqual(mark, { readSeq: 3, msgIds: ['mb1', 'mc3'] });
  assert.equal(s.setRead(c, mark.readSeq), 0);
  assert.equal(c.unread, 0);
  assert.equal(toMark(c, 'alice'), null, 'nothing new, marked again');
  s.merge(push(conv, 'bob', 4, 'b4'), 'push', null);
  mark = toMark(c, 'alice');
  assert.deepEqual(mark, { readSeq: 4, msgIds: ['mb4'] });
});

test('titles and recvIds of single and group chats', () => {
  const s = store();
  s.applyList([listEntry('g-7', { groupName: 'Team' })], null);
  const g = s.convs.get('g-7');
  const single = s.ensure('alice_bob', SINGLE);
  assert.equal(s.title(g), 'Team');
  assert.equal(recvIdOf(g), 'g-7');
  assert.equal(s.title(single), 'bob');
  assert.equal(recvIdOf(single), 'bob');
  // A nickname once known; a group named by its members' answer; a group
  // not named yet.
  s.setNames([{ userId: 'bob', nickname: 'Bob' }, { userId: 'dan', nickname: '' }]);
  assert.equal(s.title(single), 'Bob');
  assert.equal(s.nameOf('dan'), 'dan');
  s.setGroup({ groupId: 'g-8', name: 'Hike', owner: 'bob', members: ['alice', 'bob'] });
  assert.equal(s.title(s.ensure('g-8')), 'Hike');
  assert.equal(s.title(s.ensure('g-9')), 'Group');
  assert.equal(s.ensure('g-9').chatType, GROUP, 'a group by its id');
  assert.equal(s.startSingle('carol').id, singleConvId('alice', 'carol'));
  assert.equal(singleConvId('bob', 'alice'), 'alice_bob');
});

test('an empty conversation the user opened is held whole: what comes while away syncs from seq 0', () => {
  const s = store();
  const c = s.startSingle('bob');
  s.applyHistory(c, [], 0, 30); // opening it: no history at all
  assert.equal(c.historyDone, true);
  s.applyList([listEntry('alice_bob', { peerId: 'bob', seq: 2, unread: 2 })], null);
  assert.equal(s.knownSeqs().alice_bob, 0);
  s.push(push('alice_bob', 'bob', 2, 'two'), null); // 1 was missed
  assert.equal(s.knownSeqs().alice_bob, 0, 'after a push with a gap');
  // A group I created is as empty.
  const g = s.groupCreated({ groupId: 'g-1', name: 'New', owner: 'alice', members: ['alice', 'bob'], createdAt: 5 });
  assert.equal(g.historyDone, true);
  assert.equal(g.updatedAt, 5);
  s.push(push('g-1', 'bob', 3, 'g3'), null);
  assert.equal(s.knownSeqs()['g-1'], 0);
});

// ---- unread

test('a message counts as unread only above the list\'s count and my read position, and not on screen', () => {
  const s = store();
  s.applyList([listEntry('alice_bob', { peerId: 'bob', seq: 5, readSeq: 2, unread: 3 })], null);
  const c = s.convs.get('alice_bob');
  assert.equal(c.unread, 3);
  s.push(push('alice_bob', 'bob', 5, 'five'), null); // the list counted it already
  assert.equal(c.unread, 3);
  s.push(push('alice_bob', 'bob', 6, 'six'), null);
  assert.equal(c.unread, 4);
  s.push(push('alice_bob', 'alice', 7, 'mine'), null); // mine, from another device
  assert.equal(c.unread, 4);
  s.push(push('alice_bob', 'bob', 8, 'eight'), 'alice_bob'); // on screen
  assert.equal(c.unread, 4);
  s.push(push('alice_bob', 'bob', 9, 'nine'), 'alice_carol'); // another one on screen
  assert.equal(c.unread, 5);

  // Read on another device before the messages reached this one.
  const d = s.ensure('alice_dan');
  s.applyReceipt({ conversationId: 'alice_dan', readerId: 'alice', readSeq: 3 });
  for (let i = 1; i <= 4; i++) s.merge(push('alice_dan', 'dan', i, 'd' + i), 'sync', null);
  assert.equal(d.unread, 1);
});

test('the list\'s count: my own messages are not unread, newer pushes are kept, read or on screen is 0', () => {
  const s = store();
  const conv = 'alice_bob';
  // Pushes of 4 (mine) and 6, 7 (bob's) came while the list was on its way;
  // the list says 5 with 3 unread after read position 2.
  s.push(push(conv, 'bob', 3, 'three'), null);
  s.merge(push(conv, 'alice', 4, 'four'), 'sync', null);
  s.push(push(conv, 'bob', 6, 'six'), null);
  s.push(push(conv, 'bob', 7, 'seven'), null);
  s.applyList([listEntry(conv, { peerId: 'bob', seq: 5, readSeq: 2, unread: 3 })], null);
  const c = s.convs.get(conv);
  assert.equal(c.unread, 2 + 2, 'three minus mine, plus the two newer');
  assert.equal(c.seq, 7, 'the list does not move seq back');
  // All read by the time of the list.
  s.applyList([listEntry(conv, { peerId: 'bob', seq: 5, readSeq: 7, unread: 0 })], null);
  assert.equal(c.unread, 0);
  // Never below zero, and 0 for the conversation on screen.
  const s2 = store();
  s2.merge(push(conv, 'alice', 3, 'mine'), 'sync', null);
  s2.applyList([listEntry(conv, { peerId: 'bob', seq: 3, readSeq: 0, unread: 0 })], null);
  assert.equal(s2.convs.get(conv).unread, 0);
  s2.applyList([listEntry(conv, { peerId: 'bob', seq: 9, readSeq: 0, unread: 6 })], conv);
  assert.equal(s2.convs.get(conv).unread, 0);
  assert.equal(s2.listLoaded, true);
});

test('a receipt of mine: all read clears the count, part of it asks for the server\'s count', () => {
  const s = store();
  s.applyList([listEntry('alice_bob', { peerId: 'bob', seq: 6, readSeq: 0, unread: 6 })], null);
  const c = s.convs.get('alice_bob');
  let r = s.applyReceipt({ conversationId: 'alice_bob', readerId: 'alice', readSeq: 4 });
  assert.deepEqual([r.mine, r.refresh, c.readSeq, c.unread], [true, true, 4, 6]);
  r = s.applyReceipt({ conversationId: 'alice_bob', readerId: 'alice', readSeq: 6 });
  assert.deepEqual([r.mine, r.refresh, c.readSeq, c.unread], [true, false, 6, 0]);
  assert.equal(s.applyReceipt({ conversationId: 'alice_zed', readerId: 'alice', readSeq: 1 }), null, 'unknown conversation');
});

test('marking: nothing new clears a stale count; a refused mark is undone unless moved on', () => {
  const s = store();
  const c = s.ensure('alice_bob');
  s.merge(push('alice_bob', 'bob', 1, 'one'), 'sync', null);
  const prev = s.setRead(c, 1);
  assert.equal(toMark(c, 'alice'), null);
  c.unread = 2;
  assert.equal(s.clearUnread(c), true);
  assert.equal(s.clearUnread(c), false);
  s.unsetRead(c, 1, prev);
  assert.equal(c.readSeq, 0, 'undone');
  s.setRead(c, 1);
  s.setRead(c, 5);
  s.unsetRead(c, 1, 0);
  assert.equal(c.readSeq, 5, 'a later mark is kept');
});

test('a mark carries at most the newest 100 msgIds; its readSeq covers the rest', () => {
  const s = store();
  for (let i = 1; i <= 150; i++) s.merge(push('g-1', 'bob', i, String(i)), 'sync', null);
  const mark = toMark(s.convs.get('g-1'), 'alice');
  assert.equal(mark.readSeq, 150);
  assert.equal(mark.msgIds.length, MAX_MARK_IDS);
  assert.equal(mark.msgIds[0], 'm51');
  assert.equal(mark.msgIds.at(-1), 'm150');
});

// ---- history bounds

test('history: a push to a new conversation leaves older ones to history; seq 1 or a short page ends it', () => {
  const s = store();
  s.push(push('alice_bob', 'bob', 40, 'forty'), null);
  const c = s.convs.get('alice_bob');
  assert.equal(c.baseSeq, 39);
  assert.equal(needsHistory(c), false, 'the newest is held; older ones come on scrolling');
  const page = [];
  for (let i = 10; i < 40; i++) page.push(push('alice_bob', 'bob', i, String(i)));
  s.applyHistory(c, page, 40, 30);
  assert.equal(c.historyDone, false, 'a full page: maybe more');
  assert.equal(c.unread, 1, 'history is not unread');
  s.applyHistory(c, [push('alice_bob', 'bob', 9, '9')], 10, 30);
  assert.equal(c.historyDone, true, 'a short page');
  assert.equal(needsHistory(c), false);

  const s2 = store();
  s2.merge(push('g-1', 'bob', 2, 'two'), 'sync', null);
  const g = s2.convs.get('g-1');
  assert.equal(g.baseSeq, 0, 'only a push marks a new conversation');
  s2.applyHistory(g, [push('g-1', 'bob', 1, 'one')], 2, 1);
  assert.equal(g.historyDone, true, 'a full page that reaches seq 1');

  const s3 = store();
  s3.push(push('g-1', 'bob', 1, 'one'), null);
  assert.equal(s3.convs.get('g-1').historyDone, true, 'a push of seq 1 is the start');
});

test('history: the list leaves what it covers to history only while nothing with a seq is held', () => {
  const s = store();
  s.applyList([listEntry('alice_bob', { peerId: 'bob', seq: 10 })], null);
  const c = s.convs.get('alice_bob');
  assert.equal(c.baseSeq, 10);
  assert.equal(needsHistory(c), true, 'the newest are not held');
  s.applyList([listEntry('alice_bob', { peerId: 'bob', seq: 12 })], null);
  assert.equal(c.baseSeq, 12);
  s.merge(push('alice_bob', 'bob', 12, 'twelve'), 'history', null);
  s.applyList([listEntry('alice_bob', { peerId: 'bob', seq: 14 })], null);
  assert.equal(c.baseSeq, 12, 'a message is held now');
  assert.equal(knownSeq(c), 12);
  assert.equal(needsHistory(s.ensure('g-5')), true, 'nothing known: ask');
});

// ---- order and last message

test('order: a pending message of mine sits after the newest one held when it was sent', () => {
  const s = store('alice', 2500); // sent between 2 and 3
  const conv = 'alice_bob';
  s.merge(push(conv, 'bob', 1, 'one'), 'sync', null);
  s.merge(push(conv, 'bob', 2, 'two'), 'sync', null);
  s.queue(s.convs.get(conv), 'f1', 'mine');
  s.merge(push(conv, 'bob', 3, 'three'), 'sync', null); // came while mine was on its way
  assert.deepEqual(contents(s, conv), ['one', 'two', 'mine', 'three']);
  const c = s.convs.get(conv);
  assert.equal(c.lastMsg.content, 'three', 'by time while mine has no seq');
  // An older page does not replace the last message.
  s.merge({ ...push(conv, 'bob', 0, 'old'), seq: 0, sendTime: 1 }, 'history', null);
  assert.equal(c.lastMsg.content, 'three');
});

test('order: my messages sent one after another keep their order when a sync gives only the first its seq', () => {
  let now = 5000;
  const s = new Store(() => now);
  s.begin({ userId: 'alice', nickname: '', token: 't' });
  const conv = 'alice_bob';
  const c = s.startSingle('bob');
  const a = s.queue(c, 'fa', 'first');
  now += 300;
  const b = s.queue(c, 'fb', 'second');
  s.acked(a, { conversationId: conv, msgId: 'mfirst' });
  s.acked(b, { conversationId: conv, msgId: 'msecond' });
  // The sync ran before the second was stored.
  s.merge({ ...push(conv, 'alice', 1, 'first'), sendTime: 99999 }, 'sync', null);
  assert.deepEqual(contents(s, conv), ['first', 'second']);
  s.merge(push(conv, 'bob', 2, 'reply'), 'sync', null);
  s.merge({ ...push(conv, 'alice', 3, 'second'), sendTime: 99999 }, 'sync', null);
  assert.deepEqual(contents(s, conv), ['first', 'reply', 'second']);
});

test('the list shows conversations with messages, groups and the open one, newest activity first', () => {
  const s = store();
  s.merge(push('alice_bob', 'bob', 1, 'old'), 'sync', null);
  s.merge(push('alice_carol', 'carol', 5, 'new'), 'sync', null);
  s.ensure('g-1', GROUP);
  s.ensure('alice_dan', SINGLE);
  assert.deepEqual(s.listed().map((c) => c.id), ['alice_carol', 'alice_bob', 'g-1']);
  assert.deepEqual(s.open('alice_dan'), { conv: s.convs.get('alice_dan'), switched: true });
  assert.deepEqual(s.listed().map((c) => c.id), ['alice_carol', 'alice_bob', 'alice_dan', 'g-1']);
  assert.equal(s.open('alice_dan').switched, false);
  assert.equal(s.open('nope'), null);
  s.close();
  assert.equal(s.openId, null);
  s.applyList([listEntry('alice_dan', { peerId: 'dan', seq: 2, updatedAt: 9000, lastMsg: { sendId: 'dan', seq: 2, sendTime: 9000, msg: { msgId: 'x', content: 'hey' } } })], null);
  assert.equal(s.listed()[0].id, 'alice_dan');
  assert.equal(s.convs.get('alice_dan').lastMsg.content, 'hey');
});

// ---- ticks

test('ticks: pending, sent on the ack, delivered by the peer\'s devices, read by a receipt', () => {
  const s = store();
  const conv = 'alice_bob';
  const c = s.startSingle('bob');
  const item = s.queue(c, 'f1', 'hello');
  const mine = () => c.msgs.get('mhello') || c.msgs.get('f:f1');
  assert.equal(ownStatus(c, mine(), 'alice'), 'pending');
  s.acked(item, { conversationId: conv, msgId: 'mhello' });
  assert.equal(ownStatus(c, mine(), 'alice'), 'sent');
  // Delivered only covers messages with a seq.
  assert.equal(s.applyDelivered({ conversationId: conv, userId: 'bob', deliveredSeq: 1 }), c);
  assert.equal(ownStatus(c, mine(), 'alice'), 'sent');
  s.merge(push(conv, 'alice', 1, 'hello'), 'sync', null);
  assert.equal(ownStatus(c, mine(), 'alice'), 'delivered');
  assert.equal(s.applyDelivered({ conversationId: conv, userId: 'bob', deliveredSeq: 1 }), null, 'not newer');
  assert.equal(s.applyDelivered({ conversationId: conv, userId: 'alice', deliveredSeq: 5 }), null, 'mine');
  const r = s.applyReceipt({ conversationId: conv, readerId: 'bob', readSeq: 1, msgIds: ['mhello'] });
  assert.equal(r.mine, false);
  assert.equal(ownStatus(c, mine(), 'alice'), 'read');
  assert.deepEqual([...readersOf(c, mine(), 'alice')], ['bob']);
});

test('ticks: a group message is read by the readers whose receipt names it or reaches its seq, never by me', () => {
  const s = store();
  const conv = 'g-1';
  s.merge(push(conv, 'alice', 1, 'a1'), 'sync', null);
  s.merge(push(conv, 'alice', 2, 'a2'), 'sync', null);
  const c = s.convs.get(conv);
  const [a1, a2] = sortedMessages(c);
  assert.equal(ownStatus(c, a2, 'alice'), 'sent', 'no peerDelivered in a group');
  s.applyReceipt({ conversationId: conv, readerId: 'bob', readSeq: 1 });
  s.applyReceipt({ conversationId: conv, readerId: 'carol', readSeq: 0, msgIds: ['ma2'] });
  s.applyReceipt({ conversationId: conv, readerId: 'bob', readSeq: 0 }); // older: kept at 1
  assert.deepEqual([...readersOf(c, a1, 'alice')], ['bob']);
  assert.deepEqual([...readersOf(c, a2, 'alice')], ['carol']);
  s.applyReceipt({ conversationId: conv, readerId: 'bob', readSeq: 2 });
  assert.deepEqual([...readersOf(c, a2, 'alice')].sort(), ['bob', 'carol']);
  c.readers.set('alice', 9);
  assert.equal(readersOf(c, a2, 'alice').has('alice'), false);
  // Kept across a reload.
  const snap = s.readsSnapshot();
  assert.deepEqual(snap, { 'g-1': { bob: 2, alice: 9 } });
  const s2 = store();
  s2.restore(JSON.parse(JSON.stringify(snap)), []);
  assert.equal(s2.convs.get('g-1').readers.get('bob'), 2);
  assert.equal(s2.convs.get('g-1').chatType, GROUP);
});

test('ticks: the list carries the peer\'s read and delivered positions', () => {
  const s = store();
  s.merge(push('alice_bob', 'alice', 1, 'one'), 'sync', null);
  s.merge(push('alice_bob', 'alice', 2, 'two'), 'sync', null);
  let r = s.applyList([listEntry('alice_bob', { peerId: 'bob', seq: 2, peerReadSeq: 1, peerDeliveredSeq: 2 })], null);
  assert.equal(r.readersChanged, true);
  const c = s.convs.get('alice_bob');
  assert.deepEqual(sortedMessages(c).map((m) => ownStatus(c, m, 'alice')), ['read', 'delivered']);
  r = s.applyList([listEntry('alice_bob', { peerId: 'bob', seq: 2, peerReadSeq: 1, peerDeliveredSeq: 2 })], null);
  assert.equal(r.readersChanged, false, 'nothing new to keep');
});

// ---- outbox

test('outbox: queued, sent once acked, failed and retried, the same frame id throughout', () => {
  const s = store();
  const c = s.ensure('g-1', GROUP);
  const item = s.queue(c, 'f1', 'hi all');
  assert.deepEqual([...s.outbox.keys()], ['f1']);
  assert.deepEqual({ recvId: item.recvId, chatType: item.chatType, time: item.time, afterSeq: item.afterSeq },
    { recvId: 'g-1', chatType: GROUP, time: NOW, afterSeq: 0 });
  assert.equal(c.msgs.get('f:f1').status, 'pending');
  assert.equal(c.lastMsg.content, 'hi all');
  s.failed(item, 'not a member');
  assert.equal(c.msgs.get('f:f1').status, 'failed');
  assert.equal(c.msgs.get('f:f1').error, 'not a member');
  assert.equal(s.retry('f1'), item);
  assert.equal(item.failed, false);
  assert.equal(c.msgs.get('f:f1').status, 'pending');
  assert.equal(s.retry('nope'), null);
  s.acked(item, { conversationId: 'g-1', msgId: 'm1' });
  assert.equal(s.outbox.size, 0);
  assert.equal(c.msgs.has('f:f1'), false);
  assert.equal(c.msgs.get('m1').status, 'sent');
  assert.equal(c.msgs.get('m1').frameId, 'f1');
  assert.equal(s.unsequenced(), true, 'acked, no seq yet');
  s.merge({ ...push('g-1', 'alice', 1, 'x'), msg: { msgId: 'm1', content: 'hi all' } }, 'sync', null);
  assert.equal(s.unsequenced(), false);
  assert.equal(c.msgs.size, 1);
});

test('outbox: a push or sync that brings my message before its ack leaves it shown once', () => {
  const s = store();
  const c = s.startSingle('bob');
  const item = s.queue(c, 'f1', 'hello');
  // Another device of mine, or a sync, has it first.
  s.merge(push('alice_bob', 'alice', 1, 'hello'), 'push', null);
  assert.equal(c.msgs.size, 2, 'not matched before the ack');
  s.acked(item, { conversationId: 'alice_bob', msgId: 'mhello' });
  assert.deepEqual(contents(s, 'alice_bob'), ['hello']);
  assert.equal(c.msgs.get('mhello').frameId, 'f1');
  assert.equal(c.unread, 0, 'mine is not unread');
});

test('outbox: what was not acked when the page closed comes back pending', () => {
  const s = store();
  const c = s.startSingle('bob');
  s.merge(push('alice_bob', 'bob', 3, 'three'), 'sync', null);
  const item = s.queue(c, 'f1', 'later');
  item.sending = true;
  const failed = s.queue(c, 'f2', 'refused');
  s.failed(failed, 'too long');
  const saved = JSON.parse(JSON.stringify([...s.outbox.values()]));

  const s2 = store();
  s2.restore({}, [...saved, null, { id: 'x' }]);
  const c2 = s2.convs.get('alice_bob');
  assert.equal(c2.peerId, 'bob');
  assert.equal(s2.outbox.size, 2);
  assert.equal(s2.outbox.get('f1').sending, false);
  assert.equal(c2.msgs.get('f:f1').status, 'pending');
  assert.equal(c2.msgs.get('f:f2').status, 'failed');
  assert.equal(c2.msgs.get('f:f1').afterSeq, 3);
  assert.equal(s2.unsequenced(), false, 'pending is not acked');
});

// ---- pushes, delivery, presence, names, sessions

test('a push says what else it needs: the list for a new conversation or unnamed group, a sync after a gap', () => {
  const s = store();
  let r = s.push(push('alice_bob', 'bob', 1, 'one'), null);
  assert.deepEqual([r.added, r.needList, r.gap, r.deliver], [true, true, false, true]);
  r = s.push(push('alice_bob', 'bob', 2, 'two'), null);
  assert.deepEqual([r.needList, r.gap], [false, false]);
  r = s.push(push('alice_bob', 'bob', 4, 'four'), null);
  assert.equal(r.gap, true, '3 was missed');
  r = s.push(push('alice_bob', 'alice', 5, 'mine'), null);
  assert.equal(r.deliver, false, 'mine');
  assert.equal(s.online.get('bob'), true, 'a sender is online');
  assert.equal(s.online.has('alice'), false);
  r = s.push(push('g-1', 'carol', 1, 'g1'), null);
  assert.deepEqual([r.needList, r.deliver], [true, false]);
  r = s.push(push('g-1', 'carol', 2, 'g2'), null);
  assert.equal(r.needList, true, 'the group has no name yet');
  s.convs.get('g-1').groupName = 'Team';
  assert.equal(s.push(push('g-1', 'carol', 3, 'g3'), null).needList, false);
  assert.equal(s.merge(push('alice_bob', 'bob', 0, 'old'), 'history', null).deliver, false);
  assert.equal(s.merge({ conversationId: 'alice_bob', msg: {} }, 'push', null).added, false);
});

test('delivered: report the known seq once, and not what is read already', () => {
  const s = store();
  const c = s.startSingle('bob');
  for (let i = 1; i <= 3; i++) s.merge(push('alice_bob', 'bob', i, String(i)), 'sync', null);
  s.merge(push('alice_bob', 'bob', 5, '5'), 'push', null); // 4 missing
  assert.equal(deliveredToReport(c), 3);
  const prev = s.setDeliveredSent(c, 3);
  assert.equal(deliveredToReport(c), 0);
  s.unsetDeliveredSent(c, 3, prev);
  assert.equal(c.deliveredSent, 0, 'a refused report is undone');
  s.setRead(c, 3);
  assert.equal(deliveredToReport(c), 0, 'read covers delivered');
  const r = s.applyList([listEntry('alice_bob', { peerId: 'bob', seq: 5, readSeq: 3 })], null);
  assert.deepEqual(r.deliver, [c], 'the list tells of news since');
});

test('presence asks about single chat peers; names are asked once unless the answer failed', () => {
  const s = store();
  s.startSingle('bob');
  s.startSingle('carol');
  s.ensure('g-1');
  assert.deepEqual(s.presenceIds(), ['bob', 'carol']);
  s.setOnline({ bob: true, carol: 0 });
  assert.deepEqual([s.online.get('bob'), s.online.get('carol')], [true, false]);
  assert.deepEqual(s.namesToAsk(['bob', 'bob', 'alice', '', 'carol']), ['bob', 'carol']);
  assert.deepEqual(s.namesToAsk(['bob', 'dan']), ['dan']);
  s.namesFailed(['dan']);
  assert.deepEqual(s.namesToAsk(['dan']), ['dan']);
  s.merge(push('g-1', 'erin', 1, 'e'), 'sync', null);
  assert.deepEqual(s.people().sort(), ['bob', 'carol', 'erin']);
});

test('a session starts empty; leaving or losing a group forgets it', () => {
  const s = store();
  s.push(push('g-1', 'bob', 1, 'one'), null);
  s.setGroup({ groupId: 'g-1', name: 'Team', owner: 'bob', members: ['alice', 'bob'] });
  s.open('g-1');
  assert.equal(s.forgetGroup('g-1'), true, 'it was open');
  assert.equal(s.convs.has('g-1'), false);
  assert.equal(s.groups.has('g-1'), false);
  s.close();
  s.push(push('alice_bob', 'bob', 1, 'one'), null);
  s.queue(s.convs.get('alice_bob'), 'f1', 'x');
  s.namesToAsk(['bob']);
  s.begin({ userId: 'zoe', nickname: 'Zoe', token: 'u' });
  assert.deepEqual([s.convs.size, s.outbox.size, s.online.size, s.namesAsked.size, s.listLoaded], [0, 0, 0, 0, false]);
  assert.equal(s.nameOf('zoe'), 'Zoe');
  s.end();
  assert.deepEqual([s.me, s.openId, s.outbox.size], ['', null, 0]);
});

// ---- message state (protocol 14): changes, versions, replies, mentions, typing

// withMsg is push() with msg fields added (state of the message).
function withMsg(p, fields) { return { ...p, msg: { ...p.msg, ...fields } }; }

// changed is the data of a conversation.changed frame: change number
// version of kind on the message of push p, whose state is now msg.
function changed(p, version, kind, msg, by = 'bob') {
  const d = { conversationId: p.conversationId, chatType: p.chatType, version, kind, msgId: p.msg.msgId, seq: p.seq, by, time: 5 };
  if (kind !== 'hide') d.message = { ...p, msg: { ...p.msg, ...msg, version } };
  return d;
}

test('a pushed, synced or read message keeps its state: quote, mentions, edited, recalled, reactions, version', () => {
  const s = store();
  const p = withMsg(push('g-1', 'bob', 2, 'answer'), {
    quote: { msgId: 'mq', seq: 1, sendId: 'alice', content: 'question' },
    mentions: ['alice'], edited: 77, reactions: { '👍': ['carol'] }, version: 4,
  });
  s.merge(p, 'push', null);
  const m = s.convs.get('g-1').msgs.get('manswer');
  assert.deepEqual([m.quote.content, m.mentions, m.mentionAll, m.edited, m.recalled, m.version, m.hidden],
    ['question', ['alice'], false, 77, false, 4, false]);
  assert.deepEqual(m.reactions, { '👍': ['carol'] });
  // A later read of the same message with a newer state takes it; an older one does not.
  s.merge(withMsg(push('g-1', 'bob', 2, 'answer'), { content: 'answer!', edited: 88, version: 6 }), 'history', null);
  assert.deepEqual([m.content, m.edited, m.version, m.quote], ['answer!', 88, 6, null]);
  s.merge(withMsg(push('g-1', 'bob', 2, 'answer'), { content: 'stale', version: 5 }), 'sync', null);
  assert.equal(m.content, 'answer!');
});

test('changes: a newer version replaces the message, an older or equal one does not; the conversation remembers the highest', () => {
  const s = store();
  const p = push('alice_bob', 'bob', 1, 'helo');
  s.merge(p, 'push', null);
  const c = s.convs.get('alice_bob');
  const m = c.msgs.get('mhelo');
  let r = s.applyChange(changed(p, 1, 'edit', { content: 'hello', edited: 10 }), 'push');
  assert.deepEqual([r.changed, r.gap, m.content, m.edited, m.version, c.version], [true, false, 'hello', 10, 1, 1]);
  assert.equal(c.lastMsg.content, 'hello', 'the list shows the edit');
  r = s.applyChange(changed(p, 2, 'react', { content: 'hello', edited: 10, reactions: { '❤️': ['alice'] } }, 'alice'), 'push');
  assert.deepEqual(m.reactions, { '❤️': ['alice'] });
  // Out of order: version 1 again (say, from a sync that crossed the push).
  r = s.applyChange(changed(p, 1, 'edit', { content: 'hello', edited: 10 }), 'sync');
  assert.equal(r.changed, false);
  assert.deepEqual(m.reactions, { '❤️': ['alice'] }, 'not undone by an older state');
  assert.equal(c.version, 2, 'never moves back');
  assert.equal(s.applyChange({ ...changed(p, 3, 'edit', {}), conversationId: 'alice_zed' }, 'push'), null, 'unknown conversation');
});

test('changes: recall clears the content, quote, mentions and reactions, and shows in the list', () => {
  const s = store();
  const p = withMsg(push('g-1', 'bob', 3, 'secret'), {
    quote: { msgId: 'mq', content: 'q' }, mentions: ['alice'], reactions: { '👍': ['carol'] },
  });
  s.merge(p, 'push', null);
  const c = s.convs.get('g-1');
  assert.equal(c.mentioned, true);
  s.applyChange(changed(p, 1, 'recall', { content: '', quote: undefined, mentions: undefined, reactions: undefined, recalled: true, recalledBy: 'bob' }), 'push');
  const m = c.msgs.get('msecret');
  assert.deepEqual([m.content, m.recalled, m.recalledBy, m.quote, m.mentions, m.reactions],
    ['', true, 'bob', null, [], {}]);
  assert.equal(mentionsMe(m, 'alice'), false, 'a recalled message mentions no one');
  assert.deepEqual(c.lastMsg, { msgId: 'msecret', sendId: 'bob', mType: 0, content: '', sendTime: 3000, seq: 3, recalled: true });
  assert.equal(canReply(m), false);
  assert.deepEqual(sortedMessages(c).map((x) => x.msgId), ['msecret'], 'still shown, as recalled');
  // A list's last message that is not held changes too.
  const s2 = store();
  s2.applyList([listEntry('alice_bob', { peerId: 'bob', seq: 9, lastMsg: { sendId: 'bob', seq: 9, sendTime: 9, msg: { msgId: 'm9', content: 'nine' } } })], null);
  const r = s2.applyChange(changed(push('alice_bob', 'bob', 9, '9'), 1, 'recall', { content: '', recalled: true }), 'push');
  assert.equal(r.changed, true);
  assert.equal(s2.convs.get('alice_bob').lastMsg.recalled, true);
});

test('changes: a hide takes the message out of view for good, its seq still held; the list shows the one before', () => {
  const s = store();
  for (let i = 1; i <= 3; i++) s.merge(push('alice_bob', 'bob', i, 't' + i), 'push', null);
  const c = s.convs.get('alice_bob');
  const r = s.applyChange({ conversationId: 'alice_bob', chatType: SINGLE, version: 1, kind: 'hide', msgId: 'mt3', seq: 3, by: 'alice' }, 'push');
  assert.equal(r.changed, true);
  assert.deepEqual(contents(s, 'alice_bob'), ['t1', 't2']);
  assert.equal(c.lastMsg.content, 't2');
  assert.equal(knownSeq(c), 3, 'no gap for sync to fill');
  assert.equal(c.msgs.get('mt3').content, '', 'nothing of it kept');
  // It comes again (a history page read before the hide): still hidden.
  s.merge(push('alice_bob', 'bob', 3, 't3'), 'history', null);
  assert.deepEqual(contents(s, 'alice_bob'), ['t1', 't2']);
  // Hidden before it was held; and as history marks it.
  s.applyChange({ conversationId: 'alice_bob', version: 2, kind: 'hide', msgId: 'mt5', by: 'alice' }, 'push');
  s.merge(push('alice_bob', 'bob', 5, 't5'), 'sync', null);
  s.merge(withMsg(push('alice_bob', 'bob', 4, 't4'), { content: '', hidden: true }), 'sync', null);
  assert.deepEqual(contents(s, 'alice_bob'), ['t1', 't2']);
  assert.equal(c.unread, 3, 'hidden ones are not unread');
  // A hide confirmed by the ack before its push.
  s.hideLocal(c, 'mt2');
  assert.deepEqual(contents(s, 'alice_bob'), ['t1']);
  assert.equal(c.lastMsg.content, 't1');
});

test('the list\'s last message (msgId beside msg, as stored) follows changes, and a hide once history tells of it', () => {
  const s = store();
  const last = (seq, text, msg = {}) => ({ msgId: 'm' + text, sendId: 'bob', seq, sendTime: seq, msg: { mType: 0, content: text, ...msg } });
  s.applyList([
    listEntry('alice_bob', { peerId: 'bob', seq: 2, lastMsg: last(2, 'two') }),
    listEntry('alice_dan', { peerId: 'dan', seq: 4, lastMsg: last(4, 'four', { recalled: true, content: '' }) }),
  ], null);
  const c = s.convs.get('alice_bob');
  assert.equal(c.lastMsg.msgId, 'mtwo');
  assert.equal(s.convs.get('alice_dan').lastMsg.recalled, true);
  s.applyChange(changed(push('alice_bob', 'bob', 2, 'two'), 1, 'edit', { content: 'TWO' }), 'push');
  assert.equal(c.lastMsg.content, 'TWO');
  // I hid it (the list does not say so); the history page does.
  s.applyHistory(c, [push('alice_bob', 'bob', 1, 'one'), withMsg(push('alice_bob', 'bob', 2, 'two'), { content: '', hidden: true })], 0, 30, 2);
  assert.equal(c.lastMsg.content, 'one');
  assert.deepEqual(contents(s, 'alice_bob'), ['one']);
  s.applyList([listEntry('alice_bob', { peerId: 'bob', seq: 2, lastMsg: last(2, 'two') })], null);
  assert.equal(c.lastMsg.content, 'one', 'a later list does not bring it back');
});

test('versions: known from history or a group I made, followed by pushes, a gap asks for a sync', () => {
  const s = store();
  s.applyList([listEntry('alice_bob', { peerId: 'bob', seq: 2 })], null);
  const c = s.convs.get('alice_bob');
  assert.deepEqual(s.knownVersions(), {}, 'nothing known: no versions (no changes asked for)');
  s.applyHistory(c, [push('alice_bob', 'bob', 1, 'one'), push('alice_bob', 'bob', 2, 'two')], 0, 30, 5);
  assert.deepEqual(s.knownVersions(), { alice_bob: 5 });
  const p = push('alice_bob', 'bob', 2, 'two');
  assert.equal(s.applyChange(changed(p, 6, 'edit', { content: '2' }), 'push').gap, false);
  assert.equal(c.version, 6);
  // 7 missed: the message still changes (by its own version), the
  // conversation's stays for the sync to fetch what is missing.
  const r = s.applyChange(changed(p, 8, 'edit', { content: 'II' }), 'push');
  assert.deepEqual([r.gap, r.changed, c.version, c.msgs.get('mtwo').content], [true, true, 6, 'II']);
  assert.deepEqual(s.knownVersions(), { alice_bob: 6 });
  // A later history page does not move it (sync does).
  s.applyHistory(c, [], 1, 30, 9);
  assert.equal(c.version, 6);
  const g = s.groupCreated({ groupId: 'g-1', name: 'New', owner: 'alice', members: ['alice', 'bob'] });
  assert.deepEqual(s.knownVersions(), { alice_bob: 6, 'g-1': 0 });
  assert.equal(s.isOwner(g), true);
  assert.equal(s.isOwner(c), false);
});

test('versions: messages held without a known version are synced from 0 after a lost connection', () => {
  const s = store();
  const p = push('alice_bob', 'bob', 1, 'one');
  s.push(p, null);
  const c = s.convs.get('alice_bob');
  assert.deepEqual(s.knownVersions(), {}, 'held while connected: changes come as pushes');
  s.disconnected();
  assert.deepEqual(s.knownVersions(), { alice_bob: 0 });
  // A push before the sync answers does not stand for what was missed.
  assert.equal(s.applyChange(changed(p, 4, 'edit', { content: 'uno' }), 'push').gap, true);
  assert.equal(c.versionKnown, false);
  s.applyHistory(c, [], 1, 30, 4);
  assert.equal(c.versionKnown, false, 'nor does a history page');
  // The sync's answer, all of it: known from there.
  const versions = s.knownVersions();
  const r = s.applySync({ messages: [push('alice_bob', 'bob', 2, 'two')], changes: [changed(p, 3, 'react', { reactions: { '👍': ['bob'] } }), changed(p, 4, 'edit', { content: 'uno' })] }, versions, null);
  assert.deepEqual([r.more, r.unknown, r.deliver.length], [false, false, 1]);
  assert.deepEqual([c.version, c.versionKnown, c.versionStale], [4, true, false]);
  assert.equal(c.msgs.get('mone').content, 'uno');
  assert.deepEqual(s.knownVersions(), { alice_bob: 4 });
  // Not known yet and never cut off: the first change pushed is where it starts.
  const s2 = store();
  const q = push('g-1', 'bob', 1, 'g');
  s2.push(q, null);
  assert.equal(s2.applyChange(changed(q, 12, 'react', { reactions: { '😂': ['bob'] } }), 'push').gap, false);
  assert.deepEqual(s2.knownVersions(), { 'g-1': 12 });
});

test('sync: versions go with seqs; a cut answer asks again; an answer with nothing after a version still makes it known', () => {
  const s = store();
  const c = s.startSingle('bob');
  s.applyHistory(c, [push('alice_bob', 'bob', 1, 'one')], 0, 30, 2);
  s.push(push('alice_bob', 'bob', 2, 'two'), null);
  s.disconnected();
  s.push(push('g-1', 'carol', 1, 'g1'), null);
  s.disconnected();
  const versions = s.knownVersions();
  assert.deepEqual(versions, { alice_bob: 2, 'g-1': 0 });
  assert.deepEqual(s.knownSeqs(), { alice_bob: 2, 'g-1': 1 });
  let r = s.applySync({ messages: [], changes: [changed(push('alice_bob', 'bob', 1, 'one'), 3, 'edit', { content: '1' })], more: true }, versions, null);
  assert.equal(r.more, true);
  assert.equal(s.convs.get('g-1').versionKnown, false, 'not until the answer is whole');
  assert.deepEqual(s.knownVersions(), { alice_bob: 3, 'g-1': 0 });
  r = s.applySync({ messages: [], changes: [] }, s.knownVersions(), null);
  assert.equal(r.more, false);
  assert.deepEqual(s.knownVersions(), { alice_bob: 3, 'g-1': 0 });
  assert.equal(s.convs.get('g-1').versionKnown, true);
  assert.equal(s.applySync({ messages: [], changes: [], more: true }, {}, null).more, false, 'an empty page ends it');
});

test('replies: the quote goes out as its msgId; the reply shows the quoted message as it is now', () => {
  const s = store('alice', 5000);
  const c = s.ensure('g-1', GROUP);
  s.merge(push('g-1', 'bob', 1, 'Where do we meet?'), 'push', null);
  const q = c.msgs.get('mWhere do we meet?');
  const item = s.queue(c, 'f1', 'At the station', { quote: quoteOf(q), mentions: ['bob'], mentionAll: true });
  assert.deepEqual(chatData(item), {
    chatType: GROUP, recvId: 'g-1', conversationId: 'g-1',
    msg: { mType: 0, content: 'At the station', quote: { msgId: 'mWhere do we meet?' }, mentions: ['bob'], mentionAll: true },
  });
  const pending = c.msgs.get('f:f1');
  assert.equal(pending.quote.content, 'Where do we meet?', 'shown while pending');
  // Restored after a reload with its quote.
  const s2 = store();
  s2.restore({}, JSON.parse(JSON.stringify([...s.outbox.values()])));
  assert.equal(s2.convs.get('g-1').msgs.get('f:f1').quote.sendId, 'bob');
  assert.deepEqual(chatData(s2.outbox.get('f1')).msg.quote, { msgId: 'mWhere do we meet?' });
  // A plain message has no quote or mentions; a single chat never mentions.
  assert.deepEqual(chatData(s.queue(c, 'f2', 'plain')).msg, { mType: 0, content: 'plain' });
  assert.deepEqual(chatData(s.queue(s.startSingle('bob'), 'f3', 'x', { mentions: ['bob'] })).msg, { mType: 0, content: 'x' });
  // The quoted message recalled or edited later: the reply shows that.
  assert.equal(resolveQuote(c, pending.quote).content, 'Where do we meet?');
  q.content = 'Where do we meet on Saturday?';
  assert.equal(resolveQuote(c, pending.quote).content, 'Where do we meet on Saturday?');
  q.recalled = true;
  q.content = '';
  assert.deepEqual(resolveQuote(c, pending.quote), { msgId: 'mWhere do we meet?', seq: 1, sendId: 'bob', mType: 0, recalled: true });
  // Not held: the server's preview as it is.
  const far = { msgId: 'mold', seq: 1, sendId: 'carol', missing: true };
  assert.equal(resolveQuote(c, far), far);
  assert.equal(resolveQuote(c, null), null);
  assert.equal(clip('x'.repeat(81)), 'x'.repeat(80) + '…');
  assert.equal(clip('😀'.repeat(80)), '😀'.repeat(80), 'characters, not UTF-16 units');
});

test('mentioned: from the list, and from pushes that mention me or all, until the conversation is read', () => {
  const s = store();
  s.applyList([
    listEntry('g-1', { groupName: 'A', seq: 5, readSeq: 2, unread: 3, mentioned: true }),
    listEntry('g-2', { groupName: 'B', seq: 5, readSeq: 2, unread: 3 }),
  ], null);
  const g1 = s.convs.get('g-1');
  const g2 = s.convs.get('g-2');
  assert.deepEqual([g1.mentioned, g2.mentioned], [true, false]);
  // Pushes: others mentioned, me mentioned, @all, my own @all, on screen.
  s.push(withMsg(push('g-2', 'bob', 6, 'hi carol'), { mentions: ['carol'] }), null);
  assert.equal(g2.mentioned, false);
  s.push(withMsg(push('g-2', 'alice', 7, 'hi all'), { mentionAll: true }), null);
  assert.equal(g2.mentioned, false, 'my own @all');
  s.push(withMsg(push('g-2', 'bob', 8, 'hi alice'), { mentions: ['carol', 'alice'] }), 'g-2');
  assert.equal(g2.mentioned, false, 'on screen');
  s.merge(withMsg(push('g-2', 'bob', 4, 'old one'), { mentions: ['alice'] }), 'history', null);
  assert.equal(g2.mentioned, false, 'history');
  s.push(withMsg(push('g-2', 'bob', 9, 'hey @alice'), { mentions: ['alice'] }), null);
  assert.equal(g2.mentioned, true);
  // A list answer that crossed the push keeps it.
  s.applyList([listEntry('g-2', { groupName: 'B', seq: 8, readSeq: 2, unread: 5 })], null);
  assert.equal(g2.mentioned, true);
  // Read: marking, opening, a receipt of mine covering it.
  s.setRead(g2, 9);
  assert.equal(g2.mentioned, false);
  s.push(withMsg(push('g-2', 'bob', 10, '@all lunch'), { mentionAll: true }), null);
  assert.equal(g2.mentioned, true, '@all');
  s.open('g-2');
  assert.equal(g2.mentioned, false);
  s.close();
  s.applyReceipt({ conversationId: 'g-1', readerId: 'alice', readSeq: 5 });
  assert.equal(g1.mentioned, false);
  // The list says it, but my read position has passed it.
  s.applyList([listEntry('g-1', { groupName: 'A', seq: 5, readSeq: 5, mentioned: true })], null);
  assert.equal(g1.mentioned, false);
  assert.equal(s.clearUnread(g1), false);
  g1.mentioned = true;
  assert.equal(s.clearUnread(g1), true, 'a stale mention is cleared like a count');
});

test('mentions while writing: "@id" or the chosen name as a word, @all for the owner only, choices by prefix', () => {
  const cands = [{ id: 'bob', label: 'Bob' }, { id: 'carol', label: 'Carol Ann' }, { id: 'bo', label: 'bo' }];
  assert.deepEqual(mentionsIn('@Bob and @Carol Ann, see this', cands, false), { mentions: ['bob', 'carol'], mentionAll: false });
  assert.deepEqual(mentionsIn('@bobby, mail x@bob.com', cands, false).mentions, [], 'not words of their own');
  assert.deepEqual(mentionsIn('thanks @bob.', cands, false).mentions, ['bob'], 'at the end of a sentence');
  assert.deepEqual(mentionsIn('@all meeting', cands, false), { mentions: [], mentionAll: false });
  assert.deepEqual(mentionsIn('@all meeting', cands, true), { mentions: [], mentionAll: true });
  const many = Array.from({ length: 60 }, (_, i) => ({ id: 'u' + String(i).padStart(2, '0'), label: '' }));
  assert.equal(mentionsIn(many.map((c) => '@' + c.id).join(' '), many, false).mentions.length, 50);

  assert.deepEqual(mentionQuery('hi @ca', 6), { start: 3, query: 'ca' });
  assert.deepEqual(mentionQuery('@', 1), { start: 0, query: '' });
  assert.equal(mentionQuery('mail x@ca', 9), null, 'inside a word');
  assert.equal(mentionQuery('@bob hi', 7), null, 'past it');
  assert.equal(mentionQuery('no at', 5), null);

  const names = { bob: 'Bob', carol: 'Carol Ann', alice: 'Alice' };
  const nameOf = (u) => names[u] || u;
  const members = ['alice', 'bob', 'carol', 'dan'];
  assert.deepEqual(mentionChoices('', members, nameOf, 'alice', false).map((c) => c.id), ['bob', 'carol', 'dan']);
  assert.deepEqual(mentionChoices('', members, nameOf, 'alice', true).map((c) => c.id), ['all', 'bob', 'carol', 'dan']);
  assert.deepEqual(mentionChoices('car', members, nameOf, 'alice', true).map((c) => c.label), ['Carol Ann']);
  assert.deepEqual(mentionChoices('B', members, nameOf, 'alice', false).map((c) => c.id), ['bob'], 'by name, any case');
  assert.deepEqual(mentionChoices('ali', members, nameOf, 'alice', false), [], 'not me');
});

test('what may be done to a message: reply, react, edit within 15 minutes, recall within 2 (owner: always)', () => {
  const t0 = 1_000_000;
  const mine = { msgId: 'm1', sendId: 'alice', sendTime: t0, content: 'x', mType: 0 };
  const theirs = { ...mine, msgId: 'm2', sendId: 'bob' };
  const pending = { ...mine, msgId: '' };
  assert.equal(canEdit(mine, 'alice', t0 + EDIT_WINDOW - 1), true);
  assert.equal(canEdit(mine, 'alice', t0 + EDIT_WINDOW), false);
  assert.equal(canEdit(theirs, 'alice', t0), false);
  assert.equal(canEdit(pending, 'alice', t0), false, 'not acked yet');
  assert.equal(canRecall(mine, 'alice', t0 + RECALL_WINDOW - 1, false), true);
  assert.equal(canRecall(mine, 'alice', t0 + RECALL_WINDOW, false), false);
  assert.equal(canRecall(theirs, 'alice', t0, false), false);
  assert.equal(canRecall(theirs, 'alice', t0 + 10 * RECALL_WINDOW, true), true, "the group's owner");
  const gone = { ...mine, recalled: true };
  assert.deepEqual([canEdit(gone, 'alice', t0), canRecall(gone, 'alice', t0, true), canReply(gone), canReply(pending)], [false, false, false, false]);
  assert.equal(canReply(theirs), true);
});

test('reactions: listed in order with their people and whether one is mine', () => {
  const m = { reactions: { '👍': ['bob', 'alice'], '😂': ['carol'], '🙏': [] } };
  assert.deepEqual(reactionList(m, 'alice'), [
    { emoji: '👍', users: ['bob', 'alice'], count: 2, mine: true },
    { emoji: '😂', users: ['carol'], count: 1, mine: false },
  ]);
  assert.equal(hasReacted(m, 'alice', '👍'), true, 'a click takes it away');
  assert.equal(hasReacted(m, 'alice', '😂'), false, 'a click adds it');
  assert.deepEqual(reactionList({}, 'alice'), []);
});

test('typing: shown for its ttl unless repeated, gone on "stopped", on a message from that user, or never for me', () => {
  let now = 1000;
  const s = new Store(() => now);
  s.begin({ userId: 'alice', nickname: '', token: 't' });
  const c = s.ensure('g-1', GROUP);
  assert.equal(s.applyTyping({ conversationId: 'g-9', userId: 'bob', typing: true, ttl: 5000 }), null, 'unknown conversation');
  assert.equal(s.applyTyping({ conversationId: 'g-1', userId: 'alice', typing: true, ttl: 5000 }), null, 'me, on another device');
  assert.deepEqual(s.applyTyping({ conversationId: 'g-1', userId: 'bob', typing: true, ttl: 5000 }), { conv: c, ttl: 5000 });
  s.applyTyping({ conversationId: 'g-1', userId: 'carol', typing: true }); // no ttl: the default
  assert.deepEqual(s.typers(c), ['bob', 'carol']);
  now = 4000;
  s.applyTyping({ conversationId: 'g-1', userId: 'bob', typing: true, ttl: 5000 }); // refreshed
  now = 6000;
  assert.deepEqual(s.typers(c), ['bob'], "carol's expired");
  now = 9001;
  assert.deepEqual(s.typers(c), [], "bob's too");
  s.applyTyping({ conversationId: 'g-1', userId: 'bob', typing: true, ttl: 5000 });
  s.applyTyping({ conversationId: 'g-1', userId: 'carol', typing: true, ttl: 5000 });
  assert.deepEqual(s.applyTyping({ conversationId: 'g-1', userId: 'carol', typing: false }).ttl, 0);
  assert.deepEqual(s.typers(c), ['bob']);
  s.push(push('g-1', 'bob', 1, 'done typing'), null);
  assert.deepEqual(s.typers(c), [], 'his message came');
});

test('typing sender: at most every 3 s while typing, "stopped" once, never two frames within the server\'s second', () => {
  const g = new TypingGate();
  assert.equal(g.stopped(0), -1, 'nothing to stop');
  assert.equal(g.typed(1000), 0, 'at once');
  assert.equal(g.typed(1500), -1);
  assert.equal(g.typed(1000 + TYPING_EVERY - 1), -1);
  assert.equal(g.typed(1000 + TYPING_EVERY), 0, 'still typing: said again');
  const last = 1000 + TYPING_EVERY;
  // Sent at once: "stopped" waits for the gap after the last frame.
  assert.equal(g.stopped(last + 200), TYPING_GAP - 200);
  assert.equal(g.stopped(last + 300), -1, 'once');
  const stop = last + TYPING_GAP; // when "stopped" goes
  // Typing again right after: asked again when the gap has passed.
  assert.equal(g.typed(stop + 100), TYPING_GAP - 100);
  assert.equal(g.typed(stop + TYPING_GAP), 0);
  // A typing:true that did not go through: the next keystroke tries again.
  assert.equal(g.typed(stop + TYPING_GAP + 10), -1);
  g.refused();
  assert.equal(g.typed(stop + 2 * TYPING_GAP), 0);
  assert.equal(g.stopped(stop + 10 * TYPING_GAP), 0, 'long after: at once');
});
