// Tests of the pure part of images and files in the web client
// (static/js/files.js, and how the store and quotes treat such messages;
// protocol 15): the type declared for an upload and the one retry, the
// name sent, the message's content, the list's and quotes' text, sizes,
// thumbnails, and download links kept until they expire.
// Run: make test-web, or cd gateway/web && node --test
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Store, chatData } from '../static/js/model.js';
import { SINGLE, sortedMessages } from '../static/js/conv.js';
import { quoteOf, resolveQuote, canEdit, canReply, canRecall } from '../static/js/msgstate.js';
import {
  IMAGE, FILE, OCTET, MAX_LINK_KEYS, LINK_MARGIN, uploadType, retryType, uploadName, messageType, fileContent,
  parseFile, fileName, previewText, quoteLabel, humanSize, friendlyError, fitSize, extLabel, isFileMessage, LinkCache,
} from '../static/js/files.js';

const KEY = 'alice_bob/alice/' + '0123456789abcdef'.repeat(2);
const PNG = { key: KEY, size: 48213, type: 'image/png', width: 640, height: 480 };
const PDF = { key: KEY.replace('0123', '9999'), size: 1234, type: 'application/pdf' };

test('upload type: the file\'s own when the server takes it, else bytes; one retry with the type the bytes have', () => {
  for (const t of ['image/jpeg', 'image/png', 'image/gif', 'image/webp', 'application/pdf', 'text/plain', 'application/zip']) {
    assert.equal(uploadType({ type: t }), t);
  }
  assert.equal(uploadType({ type: 'IMAGE/PNG' }), 'image/png');
  for (const t of ['', 'image/svg+xml', 'application/vnd.openxmlformats-officedocument.wordprocessingml.document', 'video/mp4']) {
    assert.equal(uploadType({ type: t }), OCTET, t);
  }
  assert.equal(uploadType({}), OCTET);
  // The PUT's 415 names the type of the bytes.
  assert.equal(retryType(415, 'content is application/zip, declared application/octet-stream', OCTET), 'application/zip');
  assert.equal(retryType(415, 'content is image/jpeg, declared image/png', 'image/png'), 'image/jpeg');
  assert.equal(retryType(415, 'content is application/octet-stream, declared image/png', 'image/png'), OCTET);
  assert.equal(retryType(415, 'content is text/xml, declared application/octet-stream', OCTET), '', 'not a type the server takes');
  assert.equal(retryType(415, 'content is image/png, declared image/png', 'image/png'), '', 'the same again would fail again');
  assert.equal(retryType(422, 'image could not be read', 'image/png'), '');
  assert.equal(retryType(415, 'type not allowed: "image/svg+xml"', OCTET), '');
  assert.equal(retryType(415, undefined, OCTET), '');
});

test('upload name: the base name without what the server refuses, at most 255 bytes, the extension kept', () => {
  assert.equal(uploadName('cat.png'), 'cat.png');
  assert.equal(uploadName('C:\\Users\\me\\cat.png'), 'cat.png');
  assert.equal(uploadName('a/b/c.txt'), 'c.txt');
  assert.equal(uploadName('bad\nname\u0007.txt'), 'bad_name_.txt');
  assert.equal(uploadName('line\u2028sep.txt'), 'line_sep.txt');
  for (const n of ['', '.', '..', '   ', undefined]) assert.equal(uploadName(n), 'file', String(n));
  const long = uploadName('x'.repeat(300) + '.pdf');
  assert.ok(new TextEncoder().encode(long).length <= 255);
  assert.ok(long.endsWith('….pdf'), long);
  const wide = uploadName('é'.repeat(200) + '.txt');
  assert.ok(new TextEncoder().encode(wide).length <= 255 && wide.endsWith('.txt'));
  const noExt = uploadName('😀'.repeat(100));
  assert.ok(new TextEncoder().encode(noExt).length <= 255 && !noExt.includes('\ufffd'), 'whole characters only');
  assert.equal(uploadName('日本語のファイル.pdf'), '日本語のファイル.pdf');
});

test('the message: an image with its size as mType 1, the rest as 2; content is the PUT\'s answer and the name', () => {
  assert.equal(messageType(PNG), IMAGE);
  assert.equal(messageType({ ...PNG, width: 0, height: 0 }), FILE);
  assert.equal(messageType(PDF), FILE);
  assert.equal(messageType({ key: KEY, size: 5, type: OCTET }), FILE);
  assert.equal(fileContent(PNG, 'cat.png'),
    `{"key":"${KEY}","name":"cat.png","size":48213,"type":"image/png","width":640,"height":480}`);
  assert.equal(fileContent(PDF, 'report.pdf'), `{"key":"${PDF.key}","name":"report.pdf","size":1234,"type":"application/pdf"}`,
    'no width or height for a file');
  assert.equal(isFileMessage(0), false);
  assert.equal(isFileMessage(IMAGE) && isFileMessage(FILE), true);
  assert.equal(isFileMessage(3), false);
});

test('parsing a file message: its fields, or null for what is not one (a recalled message has no content)', () => {
  assert.deepEqual(parseFile(fileContent(PNG, 'cat.png')), { key: KEY, name: 'cat.png', size: 48213, type: 'image/png', width: 640, height: 480 });
  assert.deepEqual(parseFile(fileContent(PDF, 'r.pdf')), { key: PDF.key, name: 'r.pdf', size: 1234, type: 'application/pdf', width: 0, height: 0 });
  for (const c of ['', 'hello', '{', 'null', '[]', '{"name":"x.png"}', '{"key":""}', '{"key":7}', undefined, 42]) {
    assert.equal(parseFile(c), null, String(c));
  }
  // Odd fields are made harmless, never trusted.
  assert.deepEqual(parseFile('{"key":"k","name":"","size":-5,"type":3,"width":"640","height":1e400}'),
    { key: 'k', name: 'file', size: 0, type: '', width: 0, height: 0 });
  const html = '<img src=x onerror=alert(1)>.png';
  assert.equal(parseFile(fileContent(PNG, html)).name, html, 'a name is text to show, as it is');
});

test('list preview "[image]" and "[file] name"; quotes show the name after what it is; sizes in words', () => {
  assert.equal(previewText(IMAGE, fileContent(PNG, 'cat.png')), '[image]');
  assert.equal(previewText(FILE, fileContent(PDF, 'report.pdf')), '[file] report.pdf');
  assert.equal(previewText(FILE, 'not json'), '[file]');
  assert.equal(previewText(0, 'hello'), 'hello');
  assert.equal(previewText(0, '{"key":"k","name":"looks like a file"}'), '{"key":"k","name":"looks like a file"}', 'a text is a text');
  assert.equal(previewText(undefined, undefined), '');
  assert.equal(quoteLabel(IMAGE, 'cat.png'), '[image] cat.png');
  assert.equal(quoteLabel(FILE, 'report.pdf'), '[file] report.pdf');
  assert.equal(quoteLabel(0, 'hi'), 'hi');
  assert.equal(fileName(FILE, fileContent(PDF, 'report.pdf')), 'report.pdf');
  assert.equal(fileName(0, 'text'), 'text');
  const cases = [[0, '0 B'], [1, '1 B'], [1023, '1023 B'], [1024, '1 KB'], [1234, '1.2 KB'], [48213, '47.1 KB'],
    [1048575, '1 MB'], [1258291, '1.2 MB'], [20971520, '20 MB'], [5 * 2 ** 30, '5 GB'], [3 * 2 ** 40, '3 TB'], [-4, '0 B'], [NaN, '0 B']];
  for (const [n, want] of cases) assert.equal(humanSize(n), want, String(n));
  assert.equal(friendlyError('file too large: at most 20971520 bytes'), 'file too large: at most 20 MB');
  assert.equal(friendlyError('type not allowed: "x"'), 'type not allowed: "x"');
  assert.equal(friendlyError(''), 'failed');
  assert.equal(extLabel('report.pdf', 'application/pdf'), 'PDF');
  assert.equal(extLabel('notes.docx', 'application/zip'), 'DOCX');
  assert.equal(extLabel('archive', 'application/zip'), 'ZIP');
  assert.equal(extLabel('weird.verylongext', 'text/plain'), 'TXT');
  assert.equal(extLabel('.bashrc', OCTET), 'FILE');
});

test('thumbnails fit 240×240 with their aspect kept, never enlarged; the box is known before loading', () => {
  assert.deepEqual(fitSize(640, 480), { width: 240, height: 180 });
  assert.deepEqual(fitSize(320, 200), { width: 240, height: 150 });
  assert.deepEqual(fitSize(480, 640), { width: 180, height: 240 });
  assert.deepEqual(fitSize(90, 160), { width: 90, height: 160 }, 'small: its own size');
  assert.deepEqual(fitSize(240, 240), { width: 240, height: 240 });
  assert.deepEqual(fitSize(10000, 1), { width: 240, height: 1 }, 'at least a pixel');
  assert.deepEqual(fitSize(0, 0), { width: 240, height: 180 }, 'unknown: a placeholder box');
  // The full view: the window's box.
  assert.deepEqual(fitSize(4000, 3000, 358, 734), { width: 358, height: 269 });
  assert.deepEqual(fitSize(1000, 3000, 1248, 690), { width: 230, height: 690 });
});

test('download links: asked in batches of at most 100, each once, kept until their expiry less a margin', () => {
  let now = 1_000_000;
  const c = new LinkCache(() => now);
  const keys = Array.from({ length: 250 }, (_, i) => 'k' + i);
  const a = c.toAsk([...keys, 'k0', '']);
  assert.equal(a.length, MAX_LINK_KEYS);
  const b = c.toAsk(keys);
  assert.equal(b.length, 100);
  assert.ok(!b.some((k) => a.includes(k)), 'a key being asked is not asked again');
  assert.equal(c.toAsk(keys).length, 50);
  assert.deepEqual(c.toAsk(keys), []);
  const exp = now + 10 * 60 * 1000;
  c.put(a, Object.fromEntries(a.map((k) => [k, `/files/${k}?t=1`])), exp);
  assert.equal(c.get('k0'), '/files/k0?t=1');
  assert.equal(c.get('k150'), '', 'still being asked');
  assert.equal(c.nextRefresh(), exp - LINK_MARGIN);
  now = exp - LINK_MARGIN - 1;
  assert.equal(c.get('k0'), '/files/k0?t=1');
  assert.deepEqual(c.toAsk(['k0']), [], 'good: not asked');
  now = exp - LINK_MARGIN;
  assert.equal(c.get('k0'), '', 'expiring: not used');
  assert.equal(c.nextRefresh(), 0, 'nothing good left to refresh');
  assert.deepEqual(c.toAsk(['k0', 'k1']), ['k0', 'k1'], 'asked again');
  // Only same-origin paths are taken; a key the answer left out stays unknown.
  c.put(['k0', 'k1', 'k2'], { k0: 'https://elsewhere.example/x', k1: '//elsewhere.example/x' }, now + 600000);
  assert.deepEqual([c.get('k0'), c.get('k1'), c.get('k2')], ['', '', '']);
});

test('download links: a refusal waits before asking again; a clock far ahead does not ask in a loop; a failed image asks once more', () => {
  let now = 5_000_000;
  const c = new LinkCache(() => now);
  assert.deepEqual(c.toAsk(['a', 'b']), ['a', 'b']);
  c.failed(['a', 'b'], 60000);
  assert.deepEqual(c.toAsk(['a', 'b']), []);
  now += 60001;
  assert.deepEqual(c.toAsk(['a', 'b']), ['a', 'b']);
  c.failed(['a'], 0);
  assert.deepEqual(c.toAsk(['a']), ['a'], 'a failure without a wait may be asked again at once');
  // The server's expiry is already past by this clock: kept a little anyway.
  c.put(['a'], { a: '/files/a?t=1' }, now - 1000);
  assert.equal(c.get('a'), '/files/a?t=1');
  assert.ok(c.nextRefresh() > now);
  // An image that does not load from a link that just came: gone (false).
  assert.equal(c.failedLoad('a'), false);
  assert.equal(c.get('a'), '/files/a?t=1');
  // From one held a while (a sleeping laptop): dropped, to be asked again.
  now += 31000;
  c.put(['b'], { b: '/files/b?t=1' }, now + 600000);
  now += 40000;
  assert.equal(c.failedLoad('b'), true);
  assert.equal(c.get('b'), '');
  assert.deepEqual(c.toAsk(['b']), ['b']);
  assert.equal(c.failedLoad('unknown'), false);
  c.clear();
  assert.equal(c.get('a'), '');
});

function store(me = 'alice', now = 999999) {
  const s = new Store(() => now);
  s.begin({ userId: me, nickname: '', token: 't' });
  return s;
}

test('the store: a file message goes out with its mType and JSON content, is shown pending, and comes back after a reload', () => {
  const s = store();
  const c = s.startSingle('bob');
  const content = fileContent(PNG, 'cat.png');
  const item = s.queue(c, 'f1', content, { mType: IMAGE });
  assert.deepEqual(chatData(item), { chatType: SINGLE, recvId: 'bob', conversationId: 'alice_bob', msg: { mType: IMAGE, content } });
  const pending = c.msgs.get('f:f1');
  assert.equal(pending.mType, IMAGE);
  assert.equal(pending.status, 'pending');
  assert.deepEqual(c.lastMsg.mType, IMAGE);
  assert.equal(previewText(c.lastMsg.mType, c.lastMsg.content), '[image]');
  const s2 = store();
  s2.restore({}, JSON.parse(JSON.stringify([...s.outbox.values()])));
  assert.equal(s2.convs.get('alice_bob').msgs.get('f:f1').mType, IMAGE);
  assert.deepEqual(chatData(s2.outbox.get('f1')).msg, { mType: IMAGE, content });
  // A text is as before.
  assert.deepEqual(chatData(s.queue(c, 'f2', 'hello')).msg, { mType: 0, content: 'hello' });
});

test('the store: the list\'s last message keeps its mType; a recall empties it; quotes of a file name it; no edit', () => {
  const s = store();
  const content = fileContent(PDF, 'report.pdf');
  s.applyList([{ conversationId: 'alice_bob', chatType: SINGLE, peerId: 'bob', seq: 4, readSeq: 0, unread: 1,
    lastMsg: { sendId: 'bob', seq: 4, sendTime: 4000, msg: { msgId: 'm4', mType: FILE, content } } }], null);
  const c = s.convs.get('alice_bob');
  assert.equal(previewText(c.lastMsg.mType, c.lastMsg.content), '[file] report.pdf');
  // Recalled while not held: the list says so.
  s.applyChange({ conversationId: 'alice_bob', msgId: 'm4', kind: 'recall', version: 1,
    message: { conversationId: 'alice_bob', sendId: 'bob', seq: 4, msg: { msgId: 'm4', mType: FILE, content: '', recalled: true, version: 1 } } }, 'push');
  assert.equal(c.lastMsg.recalled, true);
  assert.equal(c.lastMsg.content, '');
  // Held: a reply's quote is the file's name, as the server's preview is.
  const p = { conversationId: 'alice_bob', chatType: SINGLE, sendId: 'alice', seq: 5, sendTime: 5000, msg: { msgId: 'm5', mType: IMAGE, content: fileContent(PNG, 'cat.png') } };
  s.merge(p, 'push', null);
  const m = c.msgs.get('m5');
  assert.deepEqual(quoteOf(m), { msgId: 'm5', seq: 5, sendId: 'alice', mType: IMAGE, content: 'cat.png' });
  assert.equal(resolveQuote(c, { msgId: 'm5', seq: 5, sendId: 'alice', mType: IMAGE, content: 'cat.png' }).content, 'cat.png');
  assert.equal(previewText(c.lastMsg.mType, c.lastMsg.content), '[image]');
  // Reply, react and recall as for a text; never edit.
  assert.equal(canEdit(m, 'alice', 5001), false);
  assert.equal(canReply(m), true);
  assert.equal(canRecall(m, 'alice', 5001, false), true);
  // Recalled: no content left (so no file to show), and the quote says so.
  s.applyChange({ conversationId: 'alice_bob', msgId: 'm5', kind: 'recall', version: 2,
    message: { ...p, msg: { msgId: 'm5', mType: IMAGE, content: '', recalled: true, version: 2 } } }, 'push');
  assert.equal(parseFile(m.content), null);
  assert.equal(quoteOf(m).recalled, true);
  assert.deepEqual(sortedMessages(c).map((x) => [x.msgId, x.mType, x.recalled]), [['m5', IMAGE, true]]);
});
