package exchange

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/kapgw/kapgw/internal/store"
)

// batchMax bounds the rows of one batched commit.
const batchMax = 256

// batcher writes exchange rows in the background, many per transaction, so
// recording a partner's pull costs the request no commit of its own.
type batcher struct {
	every  time.Duration // 0: commit as soon as rows arrive
	mu     sync.RWMutex
	closed bool
	queue  chan store.Exchange
	kick   chan struct{} // the queue is half full: flush now
	done   chan struct{}
}

// StartBatching makes Enqueue write in the background through a queue of
// size rows. With every 0 the rows are committed as soon as they arrive;
// with every > 0 they wait in the queue up to every (less when it is half
// full), so that the AuditEvent writer can Take them into its own group
// commits and most of them cost no transaction at all. Rows still queued
// at Close are written; rows that find the queue full are dropped and
// logged: the exchange log is a diagnostic record, and AuditEvents
// (written before the response leaves) are the record of access. Call it
// once, before serving.
func (r *Recorder) StartBatching(size int, every time.Duration) {
	b := &batcher{every: every, queue: make(chan store.Exchange, size), kick: make(chan struct{}, 1), done: make(chan struct{})}
	r.batch = b
	if every > 0 {
		go r.tick(b)
	} else {
		go r.loop(b)
	}
}

// Enqueue records e like Record, in the background when batching is on.
func (r *Recorder) Enqueue(ctx context.Context, e store.Exchange, payload []byte) error {
	b := r.batch
	if b == nil {
		_, err := r.Record(ctx, e, payload)
		return err
	}
	e = r.prepare(ctx, e, payload)
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		_, err := r.st.AddExchange(ctx, e)
		return err
	}
	select {
	case b.queue <- e:
	default:
		r.log.WarnContext(ctx, "exchange log queue full; row dropped", "kind", e.Kind)
	}
	if b.every > 0 && len(b.queue) > cap(b.queue)/2 {
		select {
		case b.kick <- struct{}{}:
		default:
		}
	}
	return nil
}

// Take removes up to max queued rows without waiting, for a writer that
// commits them in its own transaction (the AuditEvent writer). Rows taken
// are its to write, or to give back with Return.
func (r *Recorder) Take(max int) []store.Exchange {
	if r.batch == nil {
		return nil
	}
	rows, _ := drain(r.batch.queue, max)
	return rows
}

// Return puts back rows whose commit failed, to be written by the
// batcher (after Close, at once).
func (r *Recorder) Return(rows []store.Exchange) {
	b := r.batch
	if b == nil {
		r.commit(rows)
		return
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		r.commit(rows)
		return
	}
	for _, e := range rows {
		select {
		case b.queue <- e:
		default:
			r.log.Warn("exchange log queue full; row dropped", "kind", e.Kind)
		}
	}
}

// Flush writes every row queued when it is called, before it returns, so
// that a listing that follows sees them (the background batcher would
// write them within its linger). Rows that fail to be written are put back.
func (r *Recorder) Flush(ctx context.Context) error {
	if r.batch == nil {
		return nil
	}
	for {
		rows := r.Take(batchMax)
		if len(rows) == 0 {
			return nil
		}
		if err := r.st.AddExchanges(untraced(ctx), rows); err != nil {
			r.Return(rows)
			return fmt.Errorf("flush %d exchange rows: %w", len(rows), err)
		}
	}
}

// drain takes up to max rows without waiting, and reports whether the
// queue is still open.
func drain(q chan store.Exchange, max int) ([]store.Exchange, bool) {
	var rows []store.Exchange
	for len(rows) < max {
		select {
		case e, ok := <-q:
			if !ok {
				return rows, false
			}
			rows = append(rows, e)
		default:
			return rows, true
		}
	}
	return rows, true
}

// loop commits rows as they arrive, as many per transaction as are queued.
func (r *Recorder) loop(b *batcher) {
	defer close(b.done)
	for e := range b.queue {
		more, _ := drain(b.queue, batchMax-1)
		r.commit(append([]store.Exchange{e}, more...))
	}
}

// tick commits what is queued every b.every, or when kicked, until the
// queue is closed and empty.
func (r *Recorder) tick(b *batcher) {
	defer close(b.done)
	t := time.NewTicker(b.every)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-b.kick:
		}
		for {
			rows, open := drain(b.queue, batchMax)
			r.commit(rows)
			if !open {
				return
			}
			if len(rows) < batchMax {
				break
			}
		}
	}
}

// commit writes rows in one transaction, outside any request's trace.
func (r *Recorder) commit(rows []store.Exchange) {
	if len(rows) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(untraced(context.Background()), 10*time.Second)
	defer cancel()
	if err := r.st.AddExchanges(ctx, rows); err != nil {
		r.log.WarnContext(ctx, "exchange rows not recorded", "rows", len(rows), "err", err.Error())
	}
}

// Close writes what is queued and stops batching; later rows are written
// one by one.
func (r *Recorder) Close() {
	b := r.batch
	if b == nil {
		return
	}
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		close(b.queue)
		select {
		case b.kick <- struct{}{}:
		default:
		}
	}
	b.mu.Unlock()
	<-b.done
}

// untraced marks ctx as inside an unsampled trace, so a batch, which
// holds rows of many requests, starts no root trace for every statement.
func untraced(ctx context.Context) context.Context {
	return trace.ContextWithSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{0x6b, 0x61, 0x70, 0x67, 0x77, 0x2d, 0x78, 0x6c, 0x6f, 0x67, 0, 1},
		SpanID:  trace.SpanID{0x6b, 0x61, 0x70, 0x67, 0x77, 1},
	}))
}
