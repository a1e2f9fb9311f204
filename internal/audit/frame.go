package audit

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"time"

	"github.com/kapgw/kapgw/internal/store"
)

// A journal file is fileMagic, then frames. A frame is one group commit:
// its payload's length and CRC-32C (4 bytes each, little endian), then the
// payload: the AuditRecords and the exchange rows, each field a uvarint
// length and bytes, or a varint. A frame whose length runs past the end of
// the file or whose CRC does not match is a write that never completed: it
// and everything after it in that file are ignored.
const (
	fileMagic   = "KAPGWAJ1"
	frameHeader = 8
	// maxFrame bounds a frame's payload, so that a corrupt length cannot
	// make a reader allocate gigabytes.
	maxFrame = 64 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errTorn reports a frame that was not completely written.
var errTorn = errors.New("torn journal frame")

// appendFrame appends the frame of one group to dst.
func appendFrame(dst []byte, recs []store.AuditRecord, rows []store.Exchange) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, frameHeader)...)
	dst = binary.AppendUvarint(dst, uint64(len(recs)))
	for _, r := range recs {
		dst = appendField(dst, r.ID)
		dst = binary.AppendVarint(dst, r.Recorded.UnixNano())
		dst = appendField(dst, r.ClientID)
		dst = appendField(dst, r.PatientID)
		dst = appendField(dst, r.Action)
		dst = appendField(dst, r.Outcome)
		dst = binary.AppendUvarint(dst, uint64(len(r.Body)))
		dst = append(dst, r.Body...)
	}
	dst = binary.AppendUvarint(dst, uint64(len(rows)))
	for _, e := range rows {
		dst = binary.AppendVarint(dst, e.At.UnixNano())
		for _, s := range []string{e.Kind, e.Direction, e.TraceID, e.EpisodeID, e.PartnerID} {
			dst = appendField(dst, s)
		}
		dst = binary.AppendUvarint(dst, uint64(len(e.Refs)))
		for _, s := range e.Refs {
			dst = appendField(dst, s)
		}
		for _, s := range []string{e.Operation, e.Status, e.Code} {
			dst = appendField(dst, s)
		}
		dst = binary.AppendVarint(dst, int64(e.Attempt))
		dst = binary.AppendVarint(dst, int64(e.Duration))
		dst = appendField(dst, e.ErrorClass)
		dst = appendField(dst, e.Payload)
	}
	payload := dst[start+frameHeader:]
	binary.LittleEndian.PutUint32(dst[start:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(dst[start+4:], crc32.Checksum(payload, castagnoli))
	return dst
}

// appendField appends s with its length.
func appendField(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// nextFrame splits the first whole frame off b: its payload and its
// length with the header. need > 0 says b holds only part of a frame of
// need bytes (read more); errTorn that the frame is corrupt.
func nextFrame(b []byte) (payload []byte, n, need int, err error) {
	if len(b) < frameHeader {
		return nil, 0, frameHeader, nil
	}
	size := binary.LittleEndian.Uint32(b)
	if size > maxFrame {
		return nil, 0, 0, errTorn
	}
	n = frameHeader + int(size)
	if len(b) < n {
		return nil, 0, n, nil
	}
	payload = b[frameHeader:n]
	if crc32.Checksum(payload, castagnoli) != binary.LittleEndian.Uint32(b[4:]) {
		return nil, 0, 0, errTorn
	}
	return payload, n, 0, nil
}

// decodeFrame appends the records and rows of a frame's payload.
func decodeFrame(p []byte, recs []store.AuditRecord, rows []store.Exchange) ([]store.AuditRecord, []store.Exchange, error) {
	d := decoder{b: p}
	for range d.count() {
		r := store.AuditRecord{ID: d.str()}
		r.Recorded = time.Unix(0, d.varint()).UTC()
		r.ClientID, r.PatientID, r.Action, r.Outcome = d.str(), d.str(), d.str(), d.str()
		r.Body = d.bytes()
		recs = append(recs, r)
	}
	for range d.count() {
		e := store.Exchange{At: time.Unix(0, d.varint()).UTC()}
		e.Kind, e.Direction, e.TraceID, e.EpisodeID, e.PartnerID = d.str(), d.str(), d.str(), d.str(), d.str()
		for range d.count() {
			e.Refs = append(e.Refs, d.str())
		}
		e.Operation, e.Status, e.Code = d.str(), d.str(), d.str()
		e.Attempt, e.Duration = int(d.varint()), time.Duration(d.varint())
		e.ErrorClass, e.Payload = d.str(), d.str()
		rows = append(rows, e)
	}
	if d.bad || len(d.b) != 0 {
		return nil, nil, errors.New("malformed journal frame")
	}
	return recs, rows, nil
}

// decoder reads a frame's payload; bad is set, and zero values returned,
// once it runs out of bytes.
type decoder struct {
	b   []byte
	bad bool
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.bad, d.b = true, nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.bad, d.b = true, nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a number of items, at most the bytes left (each item takes
// at least one), so a corrupt count cannot loop for long.
func (d *decoder) count() int {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.bad, d.b = true, nil
		return 0
	}
	return int(n)
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.bad, d.b = true, nil
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) str() string { return string(d.bytes()) }
