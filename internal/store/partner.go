package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// ErrExists reports that a client id is already registered.
var ErrExists = errors.New("already exists")

// ErrReplay reports a client assertion id that was already used and has not
// expired yet.
var ErrReplay = errors.New("assertion id already used")

// Client is one registered SMART Backend Services client: a partner EHR, the
// clinic platform or an admin tool. The gateway reads it on every token
// request and (through a short cache) on every API request, so a change made
// with `kapgw partners` takes effect without a restart.
type Client struct {
	ID       string
	Name     string
	Kind     string   // "partner", "clinic" or "admin" (auth.Kind)
	JWKS     []byte   // an inline JWK Set of public keys, or nil when JWKSURL is set
	JWKSURL  string   // where the JWK Set is fetched, or "" when JWKS is set
	Scopes   []string // the scopes the client may be granted
	Orgs     []string // the clinic organizations a partner serves
	Rate     int      // requests per second on the FHIR API
	Disabled bool
	Version  int64 // grows with every change
}

const clientColumns = `id, name, kind, jwks, jwks_url, scopes, orgs, rate, disabled, version`

// AddClient registers a new client, or fails with ErrExists.
func (s *Store) AddClient(ctx context.Context, c Client) error {
	scopes, orgs, err := clientLists(c)
	if err != nil {
		return err
	}
	now := millis(s.now())
	return s.write(ctx, "add client "+c.ID, func(tx txn) error {
		var n int
		if err := tx.queryRow(ctx, `SELECT COUNT(*) FROM client WHERE id = $1`, c.ID).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return ErrExists
		}
		return tx.exec(ctx, `INSERT INTO client (`+clientColumns+`, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1, $10, $10)`,
			c.ID, c.Name, c.Kind, string(c.JWKS), c.JWKSURL, scopes, orgs, c.Rate, c.Disabled, now)
	})
}

// SetClientDisabled disables (or enables again) a client: its tokens stop
// working at once and it gets no new ones.
func (s *Store) SetClientDisabled(ctx context.Context, id string, disabled bool) error {
	return s.updateClient(ctx, id, "disable client", `disabled = $2`, disabled)
}

// SetClientKeys replaces a client's keys: an inline JWK Set or a JWKS URL.
func (s *Store) SetClientKeys(ctx context.Context, id string, jwks []byte, jwksURL string) error {
	return s.updateClient(ctx, id, "rotate client keys", `jwks = $2, jwks_url = $3`, string(jwks), jwksURL)
}

// updateClient sets columns of one client and bumps its version; args start
// at $2.
func (s *Store) updateClient(ctx context.Context, id, what, set string, args ...any) error {
	now := millis(s.now())
	n := len(args) + 2
	q := fmt.Sprintf(`UPDATE client SET %s, version = version + 1, updated_at = $%d WHERE id = $1 RETURNING id`, set, n)
	return s.write(ctx, what+" "+id, func(tx txn) error {
		var got string
		err := tx.queryRow(ctx, q, append(append([]any{id}, args...), now)...).Scan(&got)
		if isNoRows(err) {
			return ErrNotFound
		}
		return err
	})
}

// Client returns one registered client, or ErrNotFound.
func (s *Store) Client(ctx context.Context, id string) (Client, error) {
	c, err := scanClient(s.drv.queryRow(ctx, `SELECT `+clientColumns+` FROM client WHERE id = $1`, id))
	if isNoRows(err) {
		return Client{}, fmt.Errorf("client %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Client{}, fmt.Errorf("read client %s: %w", id, err)
	}
	return c, nil
}

// Clients returns every registered client, ordered by id.
func (s *Store) Clients(ctx context.Context) ([]Client, error) {
	rs, err := s.drv.query(ctx, `SELECT `+clientColumns+` FROM client ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list clients: %w", err)
	}
	defer rs.Close()
	var out []Client
	for rs.Next() {
		c, err := scanClient(rs)
		if err != nil {
			return nil, fmt.Errorf("list clients: %w", err)
		}
		out = append(out, c)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("list clients: %w", err)
	}
	return out, nil
}

// UseAssertionID records that a client used a client assertion id, valid
// until exp. It fails with ErrReplay when the id was already used by that
// client and has not expired: an assertion is good for one token only.
// Expired ids are deleted on the way.
func (s *Store) UseAssertionID(ctx context.Context, clientID, jti string, exp time.Time) error {
	now := millis(s.now())
	return s.write(ctx, "use assertion id of "+clientID, func(tx txn) error {
		if err := tx.exec(ctx, `DELETE FROM client_assertion_jti WHERE expires_at <= $1`, now); err != nil {
			return err
		}
		var got string
		err := tx.queryRow(ctx, `INSERT INTO client_assertion_jti (client_id, jti, expires_at)
			VALUES ($1, $2, $3) ON CONFLICT (client_id, jti) DO NOTHING RETURNING client_id`,
			clientID, jti, millis(exp)).Scan(&got)
		if isNoRows(err) {
			return ErrReplay
		}
		return err
	})
}

// write runs fn in a transaction and commits it.
func (s *Store) write(ctx context.Context, what string, fn func(tx txn) error) error {
	tx, err := s.drv.begin(ctx)
	if err != nil {
		return fmt.Errorf("%s: begin: %w", what, err)
	}
	defer func() { _ = tx.rollback(context.WithoutCancel(ctx)) }()
	if err := fn(tx); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := tx.commit(ctx); err != nil {
		return fmt.Errorf("%s: commit: %w", what, err)
	}
	return nil
}

func clientLists(c Client) (string, string, error) {
	scopes, err := json.Marshal(nonNil(c.Scopes))
	if err != nil {
		return "", "", fmt.Errorf("encode scopes: %w", err)
	}
	orgs, err := json.Marshal(nonNil(c.Orgs))
	if err != nil {
		return "", "", fmt.Errorf("encode orgs: %w", err)
	}
	return string(scopes), string(orgs), nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func scanClient(row scanner) (Client, error) {
	var c Client
	var jwks, scopes, orgs string
	if err := row.Scan(&c.ID, &c.Name, &c.Kind, &jwks, &c.JWKSURL, &scopes, &orgs, &c.Rate, &c.Disabled, &c.Version); err != nil {
		return Client{}, err
	}
	if jwks != "" {
		c.JWKS = []byte(jwks)
	}
	if err := json.Unmarshal([]byte(scopes), &c.Scopes); err != nil {
		return Client{}, fmt.Errorf("decode scopes of %s: %w", c.ID, err)
	}
	if err := json.Unmarshal([]byte(orgs), &c.Orgs); err != nil {
		return Client{}, fmt.Errorf("decode orgs of %s: %w", c.ID, err)
	}
	return c, nil
}
