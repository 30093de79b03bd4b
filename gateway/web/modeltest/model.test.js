// Tests of the web client's model (static/js/model.js and conv.js), which
// needs no page and no network. The first cases are those of the terminal
// client's store (cmd/chat/store_test.go), whose rules the web client
// shares; the others are the web client's own (unread counting against the
// list, history bounds, ticks, the outbox, receipts).
//
// They live outside static/ so the gateway does not serve them.
// Run: make test-web, or cd gateway/web && node --test
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Store } from '../static/js/model.js';
import {
  GROUP, SINGLE, MAX_MARK_IDS, knownSeq, sortedMessages, ownStatus, readersOf, toMark,
  deliveredToReport, needsHistory, recvIdOf, singleConvId,
} from '../static/js/conv.js';

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
