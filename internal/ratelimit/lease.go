package ratelimit

import (
	"sync"
	"time"
)

const (
	// leaseShare is the most of a budget one lease may take: a lease is at
	// most Burst/leaseShare requests, so a budget of fewer than
	// 2*leaseShare requests is always decided one request at a time.
	leaseShare = 8
	// leaseTTL is how long leased requests stay spendable; what is left
	// then lapses, unspent.
	leaseTTL = 50 * time.Millisecond
)

// leases are the requests an instance has taken from Redis in advance, per
// key: with WithLeases, Redis decides a key's requests in blocks while its
// budget is far from spent, so that a busy partner costs Redis one round
// trip per block instead of one per request.
//
// The budget in Redis stays the only truth: a block is spent there, all at
// once, before any of it is handed out, so the instances together never
// allow more than Redis granted; a block's unspent requests lapse after
// leaseTTL (which makes the limit stricter for a moment, never looser). A
// block is taken only while Redis's last answer left at least twice the
// block, so near the limit every request is decided by Redis alone and the
// 429 comes exactly when it would without leases.
type leases struct {
	max int // requests per block at most; < 2 turns leasing off
	mu  sync.Mutex
	m   map[string]*lease
}

// lease is one key's block.
type lease struct {
	mu        sync.Mutex
	limit     Limit
	left      int   // requests of the block not handed out yet
	until     int64 // Unix nanoseconds; left lapses then
	remaining int   // Redis's Remaining after the block was taken
	resetAt   int64 // Unix nanoseconds at which Redis's budget is full again
}

// maxLeaseKeys bounds the table; past it, it is cleared (blocks lapse early).
const maxLeaseKeys = 10_000

// get returns key's lease, creating it.
func (ls *leases) get(key string) *lease {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.m == nil || len(ls.m) >= maxLeaseKeys {
		ls.m = make(map[string]*lease)
	}
	l, ok := ls.m[key]
	if !ok {
		l = &lease{}
		ls.m[key] = l
	}
	return l
}

// take hands out one leased request at now if the block has one for limit.
// The caller holds l.mu.
func (l *lease) take(now int64, limit Limit) (Result, bool) {
	if l.left <= 0 || now >= l.until || l.limit != limit {
		return Result{}, false
	}
	l.left--
	return Result{
		Allowed:    true,
		Limit:      limit.Burst,
		Remaining:  l.remaining + l.left,
		ResetAfter: time.Duration(max(l.resetAt-now, 0)),
	}, true
}

// size is how many requests to ask Redis for: a block while the budget is
// known to be far from spent, else one. The caller holds l.mu.
func (ls *leases) size(l *lease, limit Limit) int {
	n := min(ls.max, limit.Burst/leaseShare)
	if n < 2 || l.limit != limit || l.remaining < 2*n {
		return 1
	}
	return n
}

// granted records Redis's answer to a request for n at now (res describes
// the budget after them) and returns the decision for the request that
// asked. The caller holds l.mu.
func (l *lease) granted(now int64, limit Limit, n int, res Result) Result {
	l.limit, l.remaining = limit, res.Remaining
	l.resetAt = now + int64(res.ResetAfter)
	if !res.Allowed {
		l.left = 0
		return res
	}
	l.left, l.until = n-1, now+int64(leaseTTL)
	res.Remaining += l.left
	return res
}
