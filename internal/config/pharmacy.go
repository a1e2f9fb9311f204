package config

import (
	"errors"
	"net/url"
	"time"

	"github.com/kapgw/kapgw/internal/secrets"
)

// Pharmacy configures e-prescribing to the compounding pharmacy.
type Pharmacy struct {
	// URL is the pharmacy's SCRIPT endpoint base; empty sends nothing (the
	// job tables are still migrated).
	URL string
	// CallbackSecret is the secret ref of the HMAC key the pharmacy signs
	// callbacks with.
	CallbackSecret string
	// Timeout bounds one delivery attempt; a timeout is retried with the
	// same MessageID.
	Timeout time.Duration
}

func pharmacySettings() []setting {
	return []setting{
		{"pharmacy-url", "KAPGW_PHARMACY_URL", "", "compounding pharmacy SCRIPT endpoint (https://...); empty sends no prescriptions",
			func(c *Config, v string) error { c.Pharmacy.URL = v; return nil }},
		{"pharmacy-callback-secret", "KAPGW_PHARMACY_CALLBACK_SECRET", "vault:secret/kapgw/pharmacy#callback_hmac", "secret ref of the pharmacy callback HMAC key",
			func(c *Config, v string) error { c.Pharmacy.CallbackSecret = v; return nil }},
		{"pharmacy-timeout", "KAPGW_PHARMACY_TIMEOUT", "20s", "timeout of one delivery attempt to the pharmacy",
			func(c *Config, v string) error {
				d, err := time.ParseDuration(v)
				if err != nil {
					return errors.New("must be a duration such as 20s")
				}
				c.Pharmacy.Timeout = d
				return nil
			}},
	}
}

func (p Pharmacy) validate() []error {
	var errs []error
	if p.URL != "" {
		if u, err := url.Parse(p.URL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			errs = append(errs, errors.New("--pharmacy-url / KAPGW_PHARMACY_URL: must be an http(s) URL"))
		}
	}
	if _, err := secrets.ParseRef(p.CallbackSecret); err != nil {
		errs = append(errs, errors.New("--pharmacy-callback-secret / KAPGW_PHARMACY_CALLBACK_SECRET: must be a vault: or local: secret ref"))
	}
	if p.Timeout <= 0 || p.Timeout > 5*time.Minute {
		errs = append(errs, errors.New("--pharmacy-timeout / KAPGW_PHARMACY_TIMEOUT: must be between 1s and 5m"))
	}
	return errs
}
