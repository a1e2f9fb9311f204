package audit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/kapgw/kapgw/internal/store"
)

// ErrClosed reports a write after Close: the access must be refused.
var ErrClosed = errors.New("audit writer closed")

// Store is where AuditEvents are kept; *store.Store is it.
type Store interface {
	AddAuditEvents(ctx context.Context, recs []store.AuditRecord) error
}

// request is one access's records waiting for a commit.
type request struct {
	recs []store.AuditRecord
	done chan error
}

// Writer group-commits AuditEvents: Write returns only once its records
// are committed, and every record queued while a commit runs goes into the
// next one.
type Writer struct {
	st       Store
	now      func() time.Time
	maxBatch int
	queue    chan request
	stop     chan struct{}
	stopped  chan struct{}
}

// committers is how many batches may commit at once. More than one lets
// PostgreSQL overlap one batch's commit round trip with the next; SQLite's
// single writer serialises them anyway.
const committers = 2

// NewWriter starts a writer committing at most maxBatch records per
// transaction (default 256). Close stops it.
func NewWriter(st Store, now func() time.Time, maxBatch int) *Writer {
	if maxBatch <= 0 {
		maxBatch = 256
	}
	if now == nil {
		now = time.Now
	}
	w := &Writer{st: st, now: now, maxBatch: maxBatch, queue: make(chan request, maxBatch),
		stop: make(chan struct{}), stopped: make(chan struct{})}
	var wg sync.WaitGroup
	for range committers {
		wg.Go(w.loop)
	}
	go func() { wg.Wait(); close(w.stopped) }()
	return w
}

// Record writes the AuditEvents of an access and returns once they are
// durable. An error means they are not, and the access must be refused.
func (w *Writer) Record(ctx context.Context, a Access) error {
	if a.At.IsZero() {
		a.At = w.now()
	}
	recs, err := Records(a)
	if err != nil {
		return err
	}
	r := request{recs: recs, done: make(chan error, 1)}
	select {
	case w.queue <- r:
	case <-w.stop:
		return ErrClosed
	case <-ctx.Done():
		return fmt.Errorf("queue audit event: %w", ctx.Err())
	}
	select {
	case err := <-r.done:
		return err
	case <-w.stopped:
		select {
		case err := <-r.done:
			return err
		default:
			return ErrClosed // queued after the loop's last drain
		}
	case <-ctx.Done():
		return fmt.Errorf("commit audit event: %w", ctx.Err())
	}
}

// loop commits batches until Close; requests still queued then fail.
func (w *Writer) loop() {
	for {
		select {
		case r := <-w.queue:
			w.commit(w.gather(r))
		case <-w.stop:
			for {
				select {
				case r := <-w.queue:
					r.done <- ErrClosed
				default:
					return
				}
			}
		}
	}
}

// gather takes r and whatever else is queued, up to maxBatch records.
func (w *Writer) gather(r request) []request {
	batch, n := []request{r}, len(r.recs)
	for n < w.maxBatch {
		select {
		case more := <-w.queue:
			batch, n = append(batch, more), n+len(more.recs)
		default:
			return batch
		}
	}
	return batch
}

// commit writes a batch in one transaction and releases its requests.
func (w *Writer) commit(batch []request) {
	var recs []store.AuditRecord
	for _, r := range batch {
		recs = append(recs, r.recs...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	err := w.st.AddAuditEvents(ctx, recs)
	cancel()
	if err != nil {
		err = fmt.Errorf("commit %d audit events: %w", len(recs), err)
	}
	for _, r := range batch {
		r.done <- err
	}
}

// Close stops the writer after the batch in progress; later writes fail.
func (w *Writer) Close() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.stopped
}
