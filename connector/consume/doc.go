// Package consume is the Kafka → OpenFaaS connector: it consumes topics in a
// consumer group and invokes the functions whose `topic` annotation names the
// topic. Every record ends either delivered (every such function answered
// 2xx) or in the dead-letter topic with the reason; an offset is committed
// only when every record below it has ended (at-least-once).
//
// # Order and holds
//
// Records are keyed by conversation, and the guarantee is per key: a
// function sees the records of one key in offset order. One key's trouble
// must not become its partition's: a record that keeps failing, or whose
// call hangs, holds up only the later records of its own key.
//
// Each partition has a worker. Its dispatcher takes the records in offset
// order and sends them on the main path, one call per batch (BatchMax
// records, BatchMaxBytes of JSON array; one record when BatchMax is 1). It
// waits for the call up to Patience (HOLD_AFTER). A 2xx in time ends the
// batch. A failure, or a call still running when patience runs out, hands the
// batch to lanes, one per key of the batch, and the dispatcher goes on with
// the next batch at once. From then on the dispatcher appends every record of
// a held key to its lane instead of sending it.
//
// A lane first waits for the batch's call, which its sibling lanes share (a
// key never has two calls in flight). If the call failed, the lane redelivers
// its own records with the retry logic: capped exponential backoff, at most
// MaxAttempts tries, a multi-record array split into single records after a
// few failures, then the dead-letter topic. Then it delivers the records
// queued behind it, in order, and removes itself under the worker's lock once
// its queue is empty, so the dispatcher never appends to a lane that is
// ending. When the lane carries exactly the batch the main path sent, that
// call counts as the first try, so a refused record costs one call.
//
// Permanent refusals skip the retries: any 4xx except 401 (a wrong key is an
// outage, not bad input), 407, 408, 425 and 429. A multi-record array that is
// refused is split, so only the refused record is dead-lettered.
//
// Held state is bounded per partition: at most QueueSize held records (a
// batch handed over may pass it by up to BatchMax) and maxCalls calls in
// flight, main path and lanes together. Past either bound the dispatcher
// waits, its queue fills, and the topic's fetch loop blocks, as with any
// full queue.
//
// # Offsets
//
// The worker tracks fetched offsets in order and which are done; it commits
// the highest offset below which all are done, so a held record keeps the
// committed offset below it however far the partition's other keys went.
// After a restart or a rebalance the records above it are delivered again,
// which at-least-once allows (functions dedupe on msgId); none is skipped.
//
// # Shutdown and rebalances
//
// When Run's context ends, dispatchers and lanes start no new call; calls in
// flight finish within ShutdownTimeout, what ended is committed, and held
// records stay uncommitted for the next owner. A worker whose partition
// moved to another member finishes its queued and held records, so both may
// deliver them for a moment; offsets only ever cover ended records.
package consume
