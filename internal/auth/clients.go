package auth

import (
	"context"
	"sync"
	"time"

	"github.com/kapgw/kapgw/internal/store"
)

// Registry reads registered clients; *store.Store is one.
type Registry interface {
	Client(ctx context.Context, id string) (store.Client, error)
}

// Clients is a Registry with a short cache, so that every API request does
// not read the database while `kapgw partners disable` still takes effect
// within ttl on every instance.
type Clients struct {
	reg Registry
	ttl time.Duration
	now func() time.Time

	mu    sync.Mutex
	cache map[string]cachedClient
}

type cachedClient struct {
	c     store.Client
	until time.Time
}

// maxCachedClients bounds the cache; ids come only from verified tokens,
// so it holds at most the registered clients.
const maxCachedClients = 10_000

// NewClients returns a cache of reg whose entries live ttl (0: no cache).
func NewClients(reg Registry, ttl time.Duration, now func() time.Time) *Clients {
	return &Clients{reg: reg, ttl: ttl, now: now, cache: map[string]cachedClient{}}
}

// Client returns a registered client, from the cache when it is fresh.
func (c *Clients) Client(ctx context.Context, id string) (store.Client, error) {
	now := c.now()
	c.mu.Lock()
	e, ok := c.cache[id]
	c.mu.Unlock()
	if ok && now.Before(e.until) {
		return e.c, nil
	}
	cl, err := c.reg.Client(ctx, id)
	if err != nil || c.ttl <= 0 {
		return cl, err
	}
	c.mu.Lock()
	if len(c.cache) >= maxCachedClients {
		clear(c.cache)
	}
	c.cache[id] = cachedClient{c: cl, until: now.Add(c.ttl)}
	c.mu.Unlock()
	return cl, nil
}
