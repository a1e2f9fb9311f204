package config

import (
	"errors"
	"time"
)

// Audit configures the AuditEvents of FHIR API accesses and the exchange
// log.
type Audit struct {
	// Enabled writes an AuditEvent for every access to patient data, and
	// refuses the access when it cannot. Production profiles keep it on.
	Enabled bool
	// Retention is how long AuditEvents are kept; older ones are deleted
	// at start-up and hourly.
	Retention time.Duration
	// ExchangeRetention is how long exchange log rows (and their encrypted
	// payloads) are kept.
	ExchangeRetention time.Duration
	// JournalFsync makes the SQLite AuditEvent journal fdatasync every
	// group before the responses leave, so that an AuditEvent survives a
	// power loss and not only a crash of the process (docs/audit.md).
	JournalFsync bool
}

func auditSettings() []setting {
	return []setting{
		{"audit", "KAPGW_AUDIT", "true", "write a FHIR AuditEvent for every access to patient data (true or false)",
			func(c *Config, v string) error {
				switch v {
				case "true":
					c.Audit.Enabled = true
				case "false":
					c.Audit.Enabled = false
				default:
					return errors.New("must be true or false")
				}
				return nil
			}},
		{"audit-retention", "KAPGW_AUDIT_RETENTION", "52560h", "how long AuditEvents are kept (default 6 years)",
			func(c *Config, v string) error { return parseDuration(v, &c.Audit.Retention) }},
		{"exchange-retention", "KAPGW_EXCHANGE_RETENTION", "2160h", "how long exchange log rows are kept (default 90 days)",
			func(c *Config, v string) error { return parseDuration(v, &c.Audit.ExchangeRetention) }},
		{"audit-journal-fsync", "KAPGW_AUDIT_JOURNAL_FSYNC", "false", "on SQLite, fdatasync the AuditEvent journal before each response leaves (true or false)",
			func(c *Config, v string) error {
				switch v {
				case "true":
					c.Audit.JournalFsync = true
				case "false":
					c.Audit.JournalFsync = false
				default:
					return errors.New("must be true or false")
				}
				return nil
			}},
	}
}

func parseDuration(v string, dst *time.Duration) error {
	d, err := time.ParseDuration(v)
	if err != nil {
		return errors.New("must be a duration such as 2160h")
	}
	*dst = d
	return nil
}

func (a Audit) validate(profile string) []error {
	var errs []error
	if a.Retention < time.Hour {
		errs = append(errs, errors.New("--audit-retention / KAPGW_AUDIT_RETENTION: must be at least 1h"))
	}
	if a.ExchangeRetention < time.Hour {
		errs = append(errs, errors.New("--exchange-retention / KAPGW_EXCHANGE_RETENTION: must be at least 1h"))
	}
	if profile == ProfileProduction && !a.Enabled {
		errs = append(errs, errors.New("--audit / KAPGW_AUDIT: a production profile cannot turn AuditEvents off"))
	}
	return errs
}
