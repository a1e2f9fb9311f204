package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kapgw/kapgw/internal/store"
)

// JournalStore is the database a Journal is ingested into; *store.Store is
// it.
type JournalStore interface {
	AuditJournalPos(ctx context.Context) (store.JournalPos, error)
	IngestAuditJournal(ctx context.Context, recs []store.AuditRecord, rows []store.Exchange, pos store.JournalPos) error
}

// JournalOptions tune a Journal; the zero value is the default.
type JournalOptions struct {
	// Fsync makes every group wait for fdatasync as well as write: an
	// AuditEvent then survives a power loss, not only a crash of the
	// process, at the price of a disk flush per group. Without it the
	// journal is as durable as the store's SQLite commits
	// (synchronous=NORMAL in WAL mode).
	Fsync bool
	// IngestEvery is how often journalled records are moved into the
	// database (default 100ms).
	IngestEvery time.Duration
	// IngestAfter starts an ingest early once this many records and rows
	// wait (default 2048).
	IngestAfter int
	// MaxTxRows bounds the records and rows of one ingest transaction
	// (default 4096).
	MaxTxRows int
	// MaxFileBytes starts a new journal file once the current one is this
	// large (default 16 MiB); fully ingested files are deleted.
	MaxFileBytes int64
	// Log receives ingest failures; nil discards them.
	Log *slog.Logger
}

// Journal is the AuditEvent writer's durable queue on SQLite: each group
// of AuditEvents (and the exchange rows riding with it) is appended to a
// file under dir with one write, which is all a response waits for; a
// background loop moves the records into the database in large
// transactions that also record how far they got (store.JournalPos), so
// that a crash loses nothing and duplicates nothing. Open replays what a
// crash left; Sync ingests everything appended so far; Close ingests the
// rest.
type Journal struct {
	dir string
	st  JournalStore
	o   JournalOptions
	log *slog.Logger

	mu     sync.Mutex // the append side
	f      *os.File
	seq    uint64 // the number of file f
	size   int64  // bytes of whole frames in f
	broken bool   // f may end in a partial frame: start a new file
	buf    []byte
	closed bool

	waiting atomic.Int64 // records and rows appended since the last ingest
	kick    chan struct{}
	syncs   chan chan error
	stop    chan struct{}
	done    chan struct{}

	cur     store.JournalPos // ingested up to here; the ingest loop's own
	readF   *os.File         // open on file cur.File, or nil
	readSeq uint64
}

// OpenJournal opens the journal in dir (created 0700 if missing), moves
// into st whatever a previous process journalled and did not ingest, and
// starts a new file and the ingest loop. Close stops it.
func OpenJournal(ctx context.Context, dir string, st JournalStore, o JournalOptions) (*Journal, error) {
	if o.IngestEvery <= 0 {
		o.IngestEvery = 100 * time.Millisecond
	}
	if o.IngestAfter <= 0 {
		o.IngestAfter = 2048
	}
	if o.MaxTxRows <= 0 {
		o.MaxTxRows = 4096
	}
	if o.MaxFileBytes <= 0 {
		o.MaxFileBytes = 16 << 20
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("audit journal: %w", err)
	}
	j := &Journal{dir: dir, st: st, o: o, log: log, kick: make(chan struct{}, 1),
		syncs: make(chan chan error), stop: make(chan struct{}), done: make(chan struct{})}
	next, err := j.replay(ctx)
	if err != nil {
		j.closeRead()
		return nil, err
	}
	if err := j.create(next); err != nil {
		return nil, err
	}
	go j.loop()
	return j, nil
}

// replay ingests every journal file from the recorded position, deletes
// them, and returns the number of the next file.
func (j *Journal) replay(ctx context.Context) (uint64, error) {
	pos, err := j.st.AuditJournalPos(ctx)
	if err != nil {
		return 0, fmt.Errorf("audit journal: %w", err)
	}
	files, err := j.files()
	if err != nil {
		return 0, err
	}
	j.cur = pos
	next := pos.File + 1
	for _, seq := range files {
		next = max(next, seq+1)
		if seq < pos.File {
			continue // ingested before a crash that left the file behind
		}
		if seq > j.cur.File {
			j.cur = store.JournalPos{File: seq}
		}
		if err := j.ingestFile(ctx, seq, -1); err != nil {
			return 0, fmt.Errorf("audit journal: replay file %d: %w", seq, err)
		}
	}
	j.closeRead()
	// Nothing before next is left to ingest: say so, then delete.
	if len(files) > 0 {
		j.cur = store.JournalPos{File: next}
		if err := j.st.IngestAuditJournal(untraced(ctx), nil, nil, j.cur); err != nil {
			return 0, fmt.Errorf("audit journal: %w", err)
		}
	}
	j.removeBefore(next)
	return next, nil
}

// files lists the journal's file numbers in order.
func (j *Journal) files() ([]uint64, error) {
	ents, err := os.ReadDir(j.dir)
	if err != nil {
		return nil, fmt.Errorf("audit journal: %w", err)
	}
	var seqs []uint64
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".journal")
		if !ok {
			continue
		}
		if seq, err := strconv.ParseUint(name, 10, 64); err == nil {
			seqs = append(seqs, seq)
		}
	}
	sort.Slice(seqs, func(a, b int) bool { return seqs[a] < seqs[b] })
	return seqs, nil
}

func (j *Journal) path(seq uint64) string {
	return filepath.Join(j.dir, fmt.Sprintf("%020d.journal", seq))
}

// removeBefore deletes the files numbered below seq: all ingested.
func (j *Journal) removeBefore(seq uint64) {
	files, err := j.files()
	if err != nil {
		j.log.Warn("audit journal: list files", "err", err.Error())
		return
	}
	for _, s := range files {
		if s >= seq {
			break
		}
		if err := os.Remove(j.path(s)); err != nil {
			j.log.Warn("audit journal: remove ingested file", "file", s, "err", err.Error())
		}
	}
}

// create starts journal file seq for appending; the caller holds mu or is
// the only user.
func (j *Journal) create(seq uint64) error {
	f, err := os.OpenFile(j.path(seq), os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("audit journal: create file %d: %w", seq, err)
	}
	if _, err := f.Write([]byte(fileMagic)); err != nil {
		_ = f.Close()
		return fmt.Errorf("audit journal: create file %d: %w", seq, err)
	}
	if j.o.Fsync {
		if err := j.syncNew(f); err != nil {
			_ = f.Close()
			return fmt.Errorf("audit journal: create file %d: %w", seq, err)
		}
	}
	if j.f != nil {
		_ = j.f.Close()
	}
	j.f, j.seq, j.size, j.broken = f, seq, int64(len(fileMagic)), false
	return nil
}

// syncNew makes a new file and its directory entry durable.
func (j *Journal) syncNew(f *os.File) error {
	if err := f.Sync(); err != nil {
		return err
	}
	d, err := os.Open(j.dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Append writes one group of records and rows to the journal with one
// write (and, with Fsync, one fdatasync). When it returns nil they survive
// a crash of the process; an error means they may not, and the accesses
// must be refused.
func (j *Journal) Append(recs []store.AuditRecord, rows []store.Exchange) error {
	if len(recs)+len(rows) == 0 {
		return nil
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return ErrClosed
	}
	if j.broken || j.size >= j.o.MaxFileBytes {
		if err := j.create(j.seq + 1); err != nil {
			return err
		}
	}
	j.buf = appendFrame(j.buf[:0], recs, rows)
	if err := j.write(j.buf); err != nil {
		// Cut the partial frame off, so the next one follows a whole
		// frame; when that fails too, the next group starts a new file
		// and readers stop at the torn frame.
		if terr := j.f.Truncate(j.size); terr != nil {
			j.broken = true
		}
		return fmt.Errorf("audit journal: append to file %d: %w", j.seq, err)
	}
	j.size += int64(len(j.buf))
	if cap(j.buf) > 1<<20 {
		j.buf = nil // one huge group does not pin its buffer
	}
	if j.waiting.Add(int64(len(recs)+len(rows))) >= int64(j.o.IngestAfter) {
		select {
		case j.kick <- struct{}{}:
		default:
		}
	}
	return nil
}

// write writes b to the current file, and flushes it to disk with Fsync.
func (j *Journal) write(b []byte) error {
	if _, err := j.f.Write(b); err != nil {
		return err
	}
	if j.o.Fsync {
		return fdatasync(j.f)
	}
	return nil
}

// end returns where the appended frames end now.
func (j *Journal) end() store.JournalPos {
	j.mu.Lock()
	defer j.mu.Unlock()
	return store.JournalPos{File: j.seq, Offset: j.size}
}

// Sync returns once every record appended before it was called is in the
// database, so that a read sees every AuditEvent recorded before it.
func (j *Journal) Sync(ctx context.Context) error {
	reply := make(chan error, 1)
	select {
	case j.syncs <- reply:
	case <-j.done:
		return ErrClosed
	case <-ctx.Done():
		return fmt.Errorf("audit journal sync: %w", ctx.Err())
	}
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return fmt.Errorf("audit journal sync: %w", ctx.Err())
	}
}

// Close refuses further appends, ingests everything journalled and closes
// the files. An error means records are left in the journal: the next
// OpenJournal ingests them.
func (j *Journal) Close() error {
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		<-j.done
		return nil
	}
	j.closed = true
	j.mu.Unlock()
	close(j.stop)
	<-j.done
	ctx, cancel := context.WithTimeout(untraced(context.Background()), 30*time.Second)
	defer cancel()
	err := j.ingest(ctx)
	j.closeRead()
	j.mu.Lock()
	ferr := j.f.Close()
	j.mu.Unlock()
	if err == nil && ferr == nil {
		j.removeBefore(j.cur.File)
	}
	return errors.Join(err, ferr)
}
