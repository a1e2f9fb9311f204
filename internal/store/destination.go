package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// Destination is a partner EHR's outbound FHIR endpoint: where internal/sync
// pushes the episodes the partner may see. Secrets are references only.
type Destination struct {
	PartnerID   string
	BaseURL     string
	Auth        string // none, smart, secret or mtls
	TokenURL    string
	ClientID    string // our client id at the partner
	KeyID       string // kid of the SMART key
	SecretRef   string // vault: or local: reference to the PEM key or client secret
	Scope       string
	Types       []string // resource types wanted; empty: all
	Concurrency int
	Rate        int    // requests per second
	Allow       string // none, loopback or private
	Disabled    bool
	// TLSCertRef and TLSKeyRef reference the PEM client certificate and
	// key presented with auth mtls; CARef the PEM CA bundle the partner's
	// server must chain to (empty: the system roots).
	TLSCertRef, TLSKeyRef, CARef string
	// OnConflict is what a 409 or 412 answer does: resend (the default)
	// or review.
	OnConflict string
	// Orgs and ClientDisabled come from the partner's client registration.
	Orgs           []string
	ClientDisabled bool
}

const destinationColumns = `d.partner_id, d.base_url, d.auth, d.token_url, d.client_id, d.key_id, d.secret_ref,
	d.scope, d.types, d.concurrency, d.rate, d.allow, d.disabled, d.tls_cert_ref, d.tls_key_ref, d.ca_ref,
	d.on_conflict, c.orgs, c.disabled`

// PutDestination creates or replaces a partner's destination; the partner
// must be a registered client.
func (s *Store) PutDestination(ctx context.Context, d Destination) error {
	types, err := json.Marshal(nonNil(d.Types))
	if err != nil {
		return fmt.Errorf("encode types: %w", err)
	}
	return s.write(ctx, "put destination "+d.PartnerID, func(tx txn) error {
		if _, err := scanClient(tx.queryRow(ctx, `SELECT `+clientColumns+` FROM client WHERE id = $1`, d.PartnerID)); err != nil {
			if isNoRows(err) {
				return ErrNotFound
			}
			return err
		}
		return tx.exec(ctx, `INSERT INTO sync_destination (partner_id, base_url, auth, token_url, client_id, key_id,
			secret_ref, scope, types, concurrency, rate, allow, disabled, updated_at, tls_cert_ref, tls_key_ref,
			ca_ref, on_conflict)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
			ON CONFLICT (partner_id) DO UPDATE SET base_url = excluded.base_url, auth = excluded.auth,
			token_url = excluded.token_url, client_id = excluded.client_id, key_id = excluded.key_id,
			secret_ref = excluded.secret_ref, scope = excluded.scope, types = excluded.types,
			concurrency = excluded.concurrency, rate = excluded.rate, allow = excluded.allow,
			disabled = excluded.disabled, updated_at = excluded.updated_at, tls_cert_ref = excluded.tls_cert_ref,
			tls_key_ref = excluded.tls_key_ref, ca_ref = excluded.ca_ref, on_conflict = excluded.on_conflict`,
			d.PartnerID, d.BaseURL, d.Auth, d.TokenURL, d.ClientID, d.KeyID, d.SecretRef, d.Scope, string(types),
			d.Concurrency, d.Rate, d.Allow, d.Disabled, millis(s.now()), d.TLSCertRef, d.TLSKeyRef, d.CARef,
			onConflict(d.OnConflict))
	})
}

// onConflict defaults the conflict rule to resend.
func onConflict(rule string) string {
	if rule == "" {
		return "resend"
	}
	return rule
}

// Destination returns one partner's destination, or ErrNotFound.
func (s *Store) Destination(ctx context.Context, partnerID string) (Destination, error) {
	d, err := scanDestination(s.drv.queryRow(ctx, `SELECT `+destinationColumns+`
		FROM sync_destination d JOIN client c ON c.id = d.partner_id WHERE d.partner_id = $1`, partnerID))
	if isNoRows(err) {
		return d, fmt.Errorf("destination %s: %w", partnerID, ErrNotFound)
	}
	if err != nil {
		return d, fmt.Errorf("read destination %s: %w", partnerID, err)
	}
	return d, nil
}

// Destinations returns every destination, ordered by partner.
func (s *Store) Destinations(ctx context.Context) ([]Destination, error) {
	return destinations(ctx, s.drv)
}

// DestinationsTx is Destinations inside tx: the outbox reads them in the
// episode's transaction.
func (s *Store) DestinationsTx(ctx context.Context, tx Tx) ([]Destination, error) {
	return destinations(ctx, tx.querier())
}

func destinations(ctx context.Context, q querier) ([]Destination, error) {
	rs, err := q.query(ctx, `SELECT `+destinationColumns+`
		FROM sync_destination d JOIN client c ON c.id = d.partner_id ORDER BY d.partner_id`)
	if err != nil {
		return nil, fmt.Errorf("list destinations: %w", err)
	}
	defer rs.Close()
	var out []Destination
	for rs.Next() {
		d, err := scanDestination(rs)
		if err != nil {
			return nil, fmt.Errorf("list destinations: %w", err)
		}
		out = append(out, d)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("list destinations: %w", err)
	}
	return out, nil
}

func scanDestination(row scanner) (Destination, error) {
	var d Destination
	var types, orgs string
	err := row.Scan(&d.PartnerID, &d.BaseURL, &d.Auth, &d.TokenURL, &d.ClientID, &d.KeyID, &d.SecretRef,
		&d.Scope, &types, &d.Concurrency, &d.Rate, &d.Allow, &d.Disabled, &d.TLSCertRef, &d.TLSKeyRef, &d.CARef,
		&d.OnConflict, &orgs, &d.ClientDisabled)
	if err != nil {
		return d, err
	}
	if err := json.Unmarshal([]byte(types), &d.Types); err != nil {
		return d, fmt.Errorf("decode types: %w", err)
	}
	if err := json.Unmarshal([]byte(orgs), &d.Orgs); err != nil {
		return d, fmt.Errorf("decode orgs: %w", err)
	}
	return d, nil
}

// PatientAccessTx returns the patient_access rows of an episode inside tx.
func (s *Store) PatientAccessTx(ctx context.Context, tx Tx, episodeID string) ([]PatientAccess, error) {
	return patientAccess(ctx, tx.querier(), episodeID)
}

// EpisodeAccess returns the patient_access rows of an episode.
func (s *Store) EpisodeAccess(ctx context.Context, episodeID string) ([]PatientAccess, error) {
	return patientAccess(ctx, s.drv, episodeID)
}

func patientAccess(ctx context.Context, q querier, episodeID string) ([]PatientAccess, error) {
	rs, err := q.query(ctx, `SELECT patient_id, org_id, sharing_from, sharing_until FROM patient_access
		WHERE episode_id = $1 ORDER BY org_id`, episodeID)
	if err != nil {
		return nil, fmt.Errorf("read access of episode %s: %w", episodeID, err)
	}
	defer rs.Close()
	var out []PatientAccess
	for rs.Next() {
		var a PatientAccess
		var from, until *int64
		if err := rs.Scan(&a.PatientID, &a.OrgID, &from, &until); err != nil {
			return nil, fmt.Errorf("read access of episode %s: %w", episodeID, err)
		}
		a.SharingFrom, a.SharingUntil = optTime(from), optTime(until)
		out = append(out, a)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("read access of episode %s: %w", episodeID, err)
	}
	return out, nil
}

func optTime(ms *int64) *time.Time {
	if ms == nil {
		return nil
	}
	t := fromMillis(*ms)
	return &t
}
