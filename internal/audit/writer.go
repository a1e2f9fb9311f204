package audit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/kapgw/kapgw/internal/store"
)

// ErrClosed reports a write after Close: the access must be refused.
var ErrClosed = errors.New("audit writer closed")

// Store is where AuditEvents are kept; *store.Store is it.
type Store interface {
	AddAuditEventsAndExchanges(ctx context.Context, recs []store.AuditRecord, rows []store.Exchange) error
}

// Rider supplies rows to commit in the same transaction as a group of
// AuditEvents: the exchange log's queue (*exchange.Recorder). Take never
// waits; Return gets back the rows of a commit that failed.
type Rider interface {
	Take(max int) []store.Exchange
	Return(rows []store.Exchange)
}

// Options tune a Writer; the zero value is the default.
type Options struct {
	// MaxBatch bounds the AuditEvents of one transaction (default 256).
	MaxBatch int
	// Committers is how many batches may commit at once (default 2). More
	// than one lets PostgreSQL overlap one batch's commit round trip with
	// the next; SQLite's single writer serialises them anyway, and one
	// committer makes its groups larger.
	Committers int
	// Rider, when set, has its rows written in every group commit.
	Rider Rider
	// MaxDelay bounds how long a group waits for accesses still being
	// served to join it (default 1ms; negative: never wait).
	MaxDelay time.Duration
	// Journal, when set, takes each group with one append instead of a
	// database transaction, and moves it into the database in the
	// background (SQLite, whose commits are the bottleneck; see
	// docs/audit.md). The Writer owns it: Close closes it.
	Journal *Journal
}

// request is one access's records waiting for a commit.
type request struct {
	recs []store.AuditRecord
	done chan error
}

// Writer group-commits AuditEvents: Record returns only once its records
// are committed (to the database, or appended to the Journal), and every
// record queued while a commit runs goes into the next one.
type Writer struct {
	st      Store
	now     func() time.Time
	o       Options
	queue   chan request
	stop    chan struct{}
	stopped chan struct{}

	// active counts accesses between Begin and its end; waiting those of
	// them inside Record. active - waiting are still being served, and
	// will want the next commit.
	active, waiting atomic.Int64
}

// NewWriter starts a writer; Close stops it.
func NewWriter(st Store, now func() time.Time, o Options) *Writer {
	if o.MaxBatch <= 0 {
		o.MaxBatch = 256
	}
	if o.Committers <= 0 {
		o.Committers = 2
	}
	if now == nil {
		now = time.Now
	}
	if o.MaxDelay == 0 {
		o.MaxDelay = time.Millisecond
	}
	w := &Writer{st: st, now: now, o: o, queue: make(chan request, o.MaxBatch),
		stop: make(chan struct{}), stopped: make(chan struct{})}
	var wg sync.WaitGroup
	for range o.Committers {
		wg.Go(w.loop)
	}
	go func() { wg.Wait(); close(w.stopped) }()
	return w
}

// Begin tells the writer an access is being served and will Record soon;
// call the returned end when the access is over, recorded or not. A group
// commit waits briefly (Options.MaxDelay) for accesses still being served,
// so that with many in flight one commit serves them all (as PostgreSQL's
// commit_delay does with commit_siblings); with none in flight it does not
// wait at all.
func (w *Writer) Begin() (end func()) {
	w.active.Add(1)
	return func() { w.active.Add(-1) }
}

// Record writes the AuditEvents of an access and returns once they are
// durable. An error means they are not, and the access must be refused.
func (w *Writer) Record(ctx context.Context, a Access) error {
	w.waiting.Add(1)
	defer w.waiting.Add(-1)
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

// gather takes r and whatever else is queued, up to MaxBatch records, and
// waits up to MaxDelay for accesses still being served to queue too.
func (w *Writer) gather(r request) []request {
	batch, n := []request{r}, len(r.recs)
	var deadline <-chan time.Time
	for n < w.o.MaxBatch {
		select {
		case more := <-w.queue:
			batch, n = append(batch, more), n+len(more.recs)
			continue
		default:
		}
		if w.o.MaxDelay < 0 || w.active.Load() <= w.waiting.Load() {
			return batch // nobody else is on the way
		}
		if deadline == nil {
			t := time.NewTimer(w.o.MaxDelay)
			defer t.Stop()
			deadline = t.C
		}
		select {
		case more := <-w.queue:
			batch, n = append(batch, more), n+len(more.recs)
		case <-deadline:
			return batch
		case <-w.stop:
			return batch
		}
	}
	return batch
}

// commit writes a batch, and the rider's rows, in one transaction and
// releases its requests.
func (w *Writer) commit(batch []request) {
	var recs []store.AuditRecord
	if len(batch) == 1 {
		recs = batch[0].recs
	} else {
		for _, r := range batch {
			recs = append(recs, r.recs...)
		}
	}
	var rows []store.Exchange
	if w.o.Rider != nil {
		rows = w.o.Rider.Take(w.o.MaxBatch)
	}
	err := w.write(recs, rows)
	if err != nil {
		if len(rows) > 0 {
			w.o.Rider.Return(rows)
		}
		err = fmt.Errorf("commit %d audit events: %w", len(recs), err)
	}
	for _, r := range batch {
		r.done <- err
	}
}

// write makes a group durable: one journal append, or one transaction.
func (w *Writer) write(recs []store.AuditRecord, rows []store.Exchange) error {
	if w.o.Journal != nil {
		return w.o.Journal.Append(recs, rows)
	}
	ctx, cancel := context.WithTimeout(untraced(context.Background()), 10*time.Second)
	defer cancel()
	return w.st.AddAuditEventsAndExchanges(ctx, recs, rows)
}

// Sync returns once every AuditEvent recorded before it was called is in
// the database, and the exchange rows waiting for a group commit with it:
// a read of AuditEvents calls it first to see its own writes. Without a
// journal every recorded AuditEvent already is, and it returns at once.
func (w *Writer) Sync(ctx context.Context) error {
	j := w.o.Journal
	if j == nil {
		return nil
	}
	if w.o.Rider != nil {
		for {
			rows := w.o.Rider.Take(w.o.MaxBatch)
			if len(rows) == 0 {
				break
			}
			if err := j.Append(nil, rows); err != nil {
				w.o.Rider.Return(rows)
				return err
			}
		}
	}
	return j.Sync(ctx)
}

// Close stops the writer after the batch in progress; later writes fail.
// With a journal it then ingests everything journalled and closes it
// (records it cannot ingest stay for the next OpenJournal, and the
// journal's log says so).
func (w *Writer) Close() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.stopped
	if w.o.Journal != nil {
		if err := w.o.Journal.Close(); err != nil {
			w.o.Journal.log.Error("audit journal: records left for the next start", "err", err.Error())
		}
	}
}

// untraced marks ctx as inside an unsampled trace, so a group commit,
// which serves many requests' traces at once, does not start root traces
// of its own for every statement: each request's server span already
// covers its wait for the commit.
func untraced(ctx context.Context) context.Context {
	return trace.ContextWithSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{0x6b, 0x61, 0x70, 0x67, 0x77, 0x2d, 0x61, 0x75, 0x64, 0x69, 0x74, 1},
		SpanID:  trace.SpanID{0x6b, 0x61, 0x70, 0x67, 0x77, 1},
	}))
}
