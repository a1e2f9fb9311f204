package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
)

// maxBatch is the most episodes one SQLite transaction commits. A batch is
// whatever is queued when the writer comes free, never waited for.
const maxBatch = 16

// errClosed reports an episode submitted to, or still queued at, a closed
// store.
var errClosed = errors.New("store closed")

// committer is SQLite's group commit. SQLite has one writer, so concurrent
// episodes wait for it anyway; rather than one transaction each, the
// committer runs whatever episodes are queued (up to maxBatch) in one
// transaction and commits once. The pages
// consecutive episodes share (B-tree interior pages, the seq and index
// tables, WAL frame headers) are then written once per batch rather than
// once per episode. Every caller is answered only after COMMIT returns.
type committer struct {
	store *Store
	queue chan *episodeReq
	quit  chan struct{} // closed by close: stop taking episodes
	done  chan struct{} // closed when run has returned
	stop  sync.Once
}

// Request states: queued until the committer takes it or its caller gives
// up, whichever comes first.
const (
	reqQueued int32 = iota
	reqTaken
	reqAbandoned
)

// episodeReq is one ApplyEpisodeTx call waiting for the committer.
type episodeReq struct {
	ctx        context.Context
	episodeID  string
	build      BuildFunc
	afterWrite AfterWriteFunc

	state atomic.Int32
	done  chan struct{} // closed once res, err and panicked are final

	res      ApplyResult
	err      error
	panicked any // a panic of build or afterWrite, raised again in the caller
}

func startCommitter(s *Store) *committer {
	c := &committer{store: s, queue: make(chan *episodeReq, 4*maxBatch),
		quit: make(chan struct{}), done: make(chan struct{})}
	go c.run()
	return c
}

// apply queues the episode and waits for its outcome. A caller whose ctx
// ends before the committer takes its episode leaves the queue with
// ctx.Err(); once taken, the episode runs to its end (interrupting one of
// its statements would roll back the whole batch) and the caller waits for
// the commit, so that an error always means nothing was written.
func (c *committer) apply(ctx context.Context, episodeID string, build BuildFunc, afterWrite AfterWriteFunc) (ApplyResult, error) {
	r := &episodeReq{ctx: ctx, episodeID: episodeID, build: build, afterWrite: afterWrite, done: make(chan struct{})}
	select {
	case c.queue <- r:
	case <-ctx.Done():
		return ApplyResult{}, fmt.Errorf("apply episode %s: %w", episodeID, ctx.Err())
	case <-c.quit:
		return ApplyResult{}, fmt.Errorf("apply episode %s: %w", episodeID, errClosed)
	}
	select {
	case <-r.done:
	case <-ctx.Done():
		if r.state.CompareAndSwap(reqQueued, reqAbandoned) {
			return ApplyResult{}, fmt.Errorf("apply episode %s: %w", episodeID, ctx.Err())
		}
		<-r.done
	case <-c.done: // closed while queued
		if r.state.CompareAndSwap(reqQueued, reqAbandoned) {
			return ApplyResult{}, fmt.Errorf("apply episode %s: %w", episodeID, errClosed)
		}
		<-r.done
	}
	if r.panicked != nil {
		panic(r.panicked)
	}
	return r.res, r.err
}

// close stops the committer once the batch in progress is answered; the
// episodes still queued fail with errClosed.
func (c *committer) close() {
	c.stop.Do(func() { close(c.quit) })
	<-c.done
}

func (c *committer) run() {
	defer close(c.done)
	for {
		select {
		case <-c.quit: // before anything queued
			return
		default:
		}
		var first *episodeReq
		select {
		case first = <-c.queue:
		case <-c.quit:
			return
		}
		c.commit(c.collect(first))
	}
}

// collect returns first and whatever else is queued, up to maxBatch.
func (c *committer) collect(first *episodeReq) []*episodeReq {
	batch := []*episodeReq{first}
	for len(batch) < maxBatch {
		select {
		case r := <-c.queue:
			batch = append(batch, r)
		default:
			return batch
		}
	}
	return batch
}

// commit runs batch in one transaction and answers every episode it took.
// Episodes share the transaction without savepoints (a savepoint makes
// SQLite copy every page it touches into a sub-journal first): when one
// episode fails, or the commit does, the transaction is rolled back and
// each episode of the batch runs again in a transaction of its own, so
// one bad episode costs the others a retry, never their outcome.
func (c *committer) commit(batch []*episodeReq) {
	var ran []*episodeReq
	for _, r := range batch {
		if !r.take() {
			continue
		}
		if err := r.ctx.Err(); err != nil {
			r.finish(ApplyResult{}, fmt.Errorf("apply episode %s: %w", r.episodeID, err))
			continue
		}
		ran = append(ran, r)
	}
	for len(ran) > 1 {
		failed := c.together(ran)
		switch {
		case failed == len(ran): // done
			return
		case failed < 0: // BEGIN or COMMIT failed: no episode is to blame
			for _, r := range ran {
				c.alone(r)
			}
			return
		}
		c.alone(ran[failed])
		ran = slices.Delete(ran, failed, failed+1)
	}
	if len(ran) == 1 {
		c.alone(ran[0])
	}
}

// together runs every episode of batch in one transaction. When all
// succeed and the commit does, it answers them and returns len(batch).
// Otherwise it rolls back and answers none: it returns the index of the
// episode that failed, or -1 when BEGIN or COMMIT did.
func (c *committer) together(batch []*episodeReq) int {
	// The batch's BEGIN and COMMIT are traced under its first episode.
	ctx := context.WithoutCancel(batch[0].ctx)
	tx, err := c.store.drv.begin(ctx)
	if err != nil {
		return -1
	}
	res := make([]ApplyResult, len(batch))
	for i, r := range batch {
		var ok bool
		if res[i], ok = c.store.applyGuarded(tx, r); !ok {
			_ = tx.rollback(ctx)
			r.panicked, r.err = nil, nil // it runs again alone
			return i
		}
	}
	if err := tx.commit(ctx); err != nil {
		_ = tx.rollback(ctx)
		return -1
	}
	for i, r := range batch {
		r.finish(res[i], nil)
	}
	return len(batch)
}

// alone runs r's episode in a transaction of its own and answers it.
func (c *committer) alone(r *episodeReq) {
	ctx := context.WithoutCancel(r.ctx)
	tx, err := c.store.drv.begin(ctx)
	if err != nil {
		r.finish(ApplyResult{}, fmt.Errorf("apply episode %s: begin: %w", r.episodeID, err))
		return
	}
	res, ok := c.store.applyGuarded(tx, r)
	if !ok {
		_ = tx.rollback(ctx)
		r.finish(ApplyResult{}, r.err)
		return
	}
	if err := tx.commit(ctx); err != nil {
		_ = tx.rollback(ctx)
		r.finish(ApplyResult{}, fmt.Errorf("apply episode %s: commit: %w", r.episodeID, err))
		return
	}
	r.finish(res, nil)
}

// take claims r for the committer; false means its caller has given up.
func (r *episodeReq) take() bool {
	return r.state.CompareAndSwap(reqQueued, reqTaken)
}

// finish answers r's caller.
func (r *episodeReq) finish(res ApplyResult, err error) {
	r.res, r.err = res, err
	close(r.done)
}

// applyGuarded runs r's episode in tx, recording a failure (error or
// panic) in r and reporting false; the caller must then roll tx back.
func (s *Store) applyGuarded(tx txn, r *episodeReq) (res ApplyResult, ok bool) {
	ctx := context.WithoutCancel(r.ctx)
	defer func() {
		if p := recover(); p != nil {
			r.panicked, r.err, ok = p, fmt.Errorf("apply episode %s: panic", r.episodeID), false
		}
	}()
	res, err := s.apply(ctx, tx, r.episodeID, r.build, r.afterWrite)
	if err != nil {
		r.err = fmt.Errorf("apply episode %s: %w", r.episodeID, err)
		return ApplyResult{}, false
	}
	return res, true
}
