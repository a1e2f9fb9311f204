package exchange

import (
	"context"
	"sync"
	"time"

	"github.com/kapgw/kapgw/internal/store"
)

// batchMax bounds the rows of one batched commit.
const batchMax = 256

// batcher writes exchange rows in the background, many per transaction, so
// recording a partner's pull costs the request no commit of its own.
type batcher struct {
	mu     sync.RWMutex
	closed bool
	queue  chan store.Exchange
	done   chan struct{}
}

// StartBatching makes Enqueue write in the background through a queue of
// size rows. Rows still queued at Close are written; rows that find the
// queue full are dropped and logged: the exchange log is a diagnostic
// record, and AuditEvents (written before the response leaves) are the
// record of access. Call it once, before serving.
func (r *Recorder) StartBatching(size int) {
	b := &batcher{queue: make(chan store.Exchange, size), done: make(chan struct{})}
	r.batch = b
	go r.loop(b)
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
	return nil
}

func (r *Recorder) loop(b *batcher) {
	defer close(b.done)
	for e := range b.queue {
		rows := []store.Exchange{e}
	gather:
		for len(rows) < batchMax {
			select {
			case more, ok := <-b.queue:
				if !ok {
					break gather
				}
				rows = append(rows, more)
			default:
				break gather
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := r.st.AddExchanges(ctx, rows); err != nil {
			r.log.WarnContext(ctx, "exchange rows not recorded", "rows", len(rows), "err", err.Error())
		}
		cancel()
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
	}
	b.mu.Unlock()
	<-b.done
}
