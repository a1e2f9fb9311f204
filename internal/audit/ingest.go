package audit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/kapgw/kapgw/internal/store"
)

// loop ingests every IngestEvery, when IngestAfter records wait, and for
// every Sync, until Close (which ingests the rest itself).
func (j *Journal) loop() {
	defer close(j.done)
	t := time.NewTicker(j.o.IngestEvery)
	defer t.Stop()
	failing := false
	for {
		var replies []chan error
		select {
		case <-j.stop:
			return
		case <-t.C:
		case <-j.kick:
		case r := <-j.syncs:
			replies = append(replies, r)
		}
		for more := true; more; {
			select {
			case r := <-j.syncs:
				replies = append(replies, r)
			default:
				more = false
			}
		}
		ctx, cancel := context.WithTimeout(untraced(context.Background()), 30*time.Second)
		err := j.ingest(ctx)
		cancel()
		for _, r := range replies {
			r <- err
		}
		if err != nil && !failing {
			j.log.Error("audit journal: ingest failed; records stay journalled and are retried", "file", j.cur.File, "err", err.Error())
		} else if err == nil && failing {
			j.log.Info("audit journal: ingest recovered", "file", j.cur.File)
		}
		failing = err != nil
	}
}

// ingest moves everything appended so far into the database.
func (j *Journal) ingest(ctx context.Context) error {
	end := j.end()
	if j.cur == end {
		return nil
	}
	j.waiting.Store(0)
	for j.cur.File < end.File {
		if err := j.ingestFile(ctx, j.cur.File, -1); err != nil {
			return err
		}
		next := store.JournalPos{File: j.cur.File + 1}
		if err := j.st.IngestAuditJournal(ctx, nil, nil, next); err != nil {
			return fmt.Errorf("ingest audit journal: %w", err)
		}
		j.closeRead()
		j.cur = next
		j.removeBefore(next.File)
	}
	return j.ingestFile(ctx, end.File, end.Offset)
}

// ingestFile ingests file seq from the current position up to limit, or to
// its end when limit < 0, in transactions of up to MaxTxRows records and
// rows. A torn frame ends the file: it was never acknowledged.
func (j *Journal) ingestFile(ctx context.Context, seq uint64, limit int64) error {
	data, start, err := j.read(seq, limit)
	if err != nil || data == nil {
		return err
	}
	var recs []store.AuditRecord
	var rows []store.Exchange
	off := start
	flush := func() error {
		if len(recs)+len(rows) == 0 {
			return nil
		}
		pos := store.JournalPos{File: seq, Offset: off}
		if err := j.st.IngestAuditJournal(ctx, recs, rows, pos); err != nil {
			return fmt.Errorf("ingest audit journal: %w", err)
		}
		j.cur, recs, rows = pos, recs[:0], rows[:0]
		return nil
	}
	for b := data; len(b) > 0; {
		payload, n, need, err := nextFrame(b)
		if err == nil && need > 0 {
			err = errTorn
		}
		if err == nil {
			recs, rows, err = decodeFrame(payload, recs, rows)
		}
		if err != nil {
			j.log.Warn("audit journal: torn frame; the rest of the file was never acknowledged and is skipped",
				"file", seq, "offset", off, "bytes", len(b))
			break
		}
		b, off = b[n:], off+int64(n)
		if len(recs)+len(rows) >= j.o.MaxTxRows {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// read returns the bytes of file seq from the current position (after the
// file's magic) up to limit or its end, and the offset they start at. A
// missing file, or one that does not start with the magic, reads as empty.
func (j *Journal) read(seq uint64, limit int64) ([]byte, int64, error) {
	f, err := j.reader(seq)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	off := j.cur.Offset
	if off < int64(len(fileMagic)) {
		magic := make([]byte, len(fileMagic))
		if _, err := f.ReadAt(magic, 0); err != nil || string(magic) != fileMagic {
			j.log.Warn("audit journal: file without journal header skipped", "file", seq)
			return nil, 0, nil
		}
		off = int64(len(fileMagic))
		j.cur.Offset = off
	}
	if limit < 0 {
		fi, err := f.Stat()
		if err != nil {
			return nil, 0, fmt.Errorf("ingest audit journal: %w", err)
		}
		limit = fi.Size()
	}
	if limit <= off {
		return nil, off, nil
	}
	data := make([]byte, limit-off)
	n, err := f.ReadAt(data, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, 0, fmt.Errorf("ingest audit journal: read file %d: %w", seq, err)
	}
	return data[:n], off, nil
}

// reader returns the open file seq for reading.
func (j *Journal) reader(seq uint64) (*os.File, error) {
	if j.readF != nil && j.readSeq == seq {
		return j.readF, nil
	}
	j.closeRead()
	f, err := os.Open(j.path(seq))
	if err != nil {
		return nil, err
	}
	j.readF, j.readSeq = f, seq
	return f, nil
}

func (j *Journal) closeRead() {
	if j.readF != nil {
		_ = j.readF.Close()
		j.readF = nil
	}
}
