package store

import (
	"context"
	"errors"
	"sync"

	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"
)

// groupWriter stores messages and their seq claims for every SaveChats call
// of the process, merging the calls that arrive while a round is running
// into the next round ("group commit"): one ordered InsertMany into chat_log
// for all of them, then one unordered InsertMany into seq_claim for the
// messages that went in. Each write transaction of FerretDB's SQLite backend
// costs a commit whatever its size, and the connector calls transfer once per
// partition at a time, so under load several batches share each round.
//
// The two inserts of a round are pipelined: while one round's claims are
// written, the next round's messages are. seq_claim lives in a database of
// its own, which for FerretDB on SQLite is a file with its own write lock.
type groupWriter struct {
	logs, claims       *mongo.Collection
	logLock, claimLock sync.Locker // held while writing each collection

	mu      sync.Mutex
	pending []*writeReq
	running bool
	stage2  chan *claimRound // claims to write, and callers to answer, in order
}

// claimRound is the second half of a round.
type claimRound struct {
	ctx    context.Context
	group  []*writeReq
	res    []writeRes
	claims []any
	owner  []int // claims index → group index
	offset []int // claims index → index within the request
}

type writeReq struct {
	ctx    context.Context
	logs   []any // chat_log documents, in order
	claims []any // claims[i] is the seq_claim document of logs[i]
	done   chan writeRes
}

// writeRes answers one request: logs[:n] (and so claims[:n]) are stored. If
// n < len(logs), err says why logs[n] was refused, or is errNotTried: an
// earlier request's refusal stopped the command first (send the rest again).
// claimErrs holds the write errors of refused claims, by index.
type writeRes struct {
	n         int
	err       error
	claimErrs map[int]mongo.WriteError
}

var errNotTried = errors.New("insert not tried")

// maxGroupDocs bounds one round.
const maxGroupDocs = 2000

// write stores logs and claims, merged with concurrent callers' documents.
func (g *groupWriter) write(ctx context.Context, logs, claims []any) writeRes {
	req := &writeReq{ctx: ctx, logs: logs, claims: claims, done: make(chan writeRes, 1)}
	g.mu.Lock()
	g.pending = append(g.pending, req)
	if g.stage2 == nil {
		g.stage2 = make(chan *claimRound, 2)
		go g.writeClaims()
	}
	if !g.running {
		g.running = true
		go g.run()
	}
	g.mu.Unlock()
	select {
	case r := <-req.done:
		return r
	case <-ctx.Done():
		// The round may still store it; the caller's retry (a redelivery)
		// finds what was stored.
		return writeRes{err: ctx.Err()}
	}
}

func (g *groupWriter) run() {
	for {
		g.mu.Lock()
		if len(g.pending) == 0 {
			g.running = false
			g.mu.Unlock()
			return
		}
		var group []*writeReq
		n := 0
		for len(g.pending) > 0 && (len(group) == 0 || n+len(g.pending[0].logs) <= maxGroupDocs) {
			r := g.pending[0]
			g.pending = g.pending[1:]
			if r.ctx.Err() != nil {
				r.done <- writeRes{err: r.ctx.Err()}
				continue
			}
			group = append(group, r)
			n += len(r.logs)
		}
		g.mu.Unlock()
		if len(group) > 0 {
			g.round(group, n)
		}
	}
}

func (g *groupWriter) round(group []*writeReq, n int) {
	docs := make([]any, 0, n)
	for _, r := range group {
		docs = append(docs, r.logs...)
	}
	// The round outlives any one caller's context: each caller stops
	// waiting on its own, and what was stored is found again on retry.
	ctx := context.WithoutCancel(group[0].ctx)
	g.logLock.Lock()
	_, err := g.logs.InsertMany(ctx, docs, options.InsertMany().SetOrdered(true))
	g.logLock.Unlock()
	stored := len(docs) // chat_log documents stored, from the start
	var firstErr mongo.WriteError
	var bwe mongo.BulkWriteException
	if err != nil {
		if !errors.As(err, &bwe) || bwe.WriteConcernError != nil || len(bwe.WriteErrors) == 0 {
			for _, r := range group {
				r.done <- writeRes{err: err}
			}
			return
		}
		firstErr = bwe.WriteErrors[0].WriteError
		stored = firstErr.Index
	}

	cr := &claimRound{ctx: ctx, group: group, res: make([]writeRes, len(group))}
	start := 0
	for k, r := range group {
		end := start + len(r.logs)
		switch {
		case stored >= end:
			cr.res[k].n = len(r.logs)
		case stored < start:
			cr.res[k].err = errNotTried
		default:
			cr.res[k].n = stored - start
			cr.res[k].err = mongo.BulkWriteException{WriteErrors: []mongo.BulkWriteError{{WriteError: mongo.WriteError{
				Index: stored - start, Code: firstErr.Code, Message: firstErr.Message}}}}
		}
		for i := range cr.res[k].n {
			cr.claims = append(cr.claims, r.claims[i])
			cr.owner = append(cr.owner, k)
			cr.offset = append(cr.offset, i)
		}
		start = end
	}
	g.stage2 <- cr
}

// writeClaims is the second stage: it writes each round's claims and then
// answers the round's callers.
func (g *groupWriter) writeClaims() {
	for cr := range g.stage2 {
		if len(cr.claims) > 0 {
			g.claimLock.Lock()
			_, err := g.claims.InsertMany(cr.ctx, cr.claims, options.InsertMany().SetOrdered(false))
			g.claimLock.Unlock()
			var bwe mongo.BulkWriteException
			switch {
			case err == nil:
			case errors.As(err, &bwe) && bwe.WriteConcernError == nil:
				for _, we := range bwe.WriteErrors {
					k := cr.owner[we.Index]
					if cr.res[k].claimErrs == nil {
						cr.res[k].claimErrs = map[int]mongo.WriteError{}
					}
					cr.res[k].claimErrs[cr.offset[we.Index]] = we.WriteError
				}
			default:
				for k := range cr.res {
					if cr.res[k].n > 0 && cr.res[k].err == nil {
						cr.res[k].err = err
					}
				}
			}
		}
		for k, r := range cr.group {
			r.done <- cr.res[k]
		}
	}
}
