package config

import (
	"errors"
	"strconv"
)

// Sync configures pushes to partner EHRs (internal/sync).
type Sync struct {
	// AllowLoopback lets destinations registered with loopback allowed
	// reach 127.0.0.0/8 and ::1, for tests and development; without it
	// every destination is held to public addresses.
	AllowLoopback bool
}

func syncSettings() []setting {
	return []setting{
		{"sync-allow-loopback", "KAPGW_SYNC_ALLOW_LOOPBACK", "false", "let partner destinations on loopback be reached (tests and development only)",
			func(c *Config, v string) error {
				b, err := strconv.ParseBool(v)
				if err != nil {
					return errors.New("must be true or false")
				}
				c.Sync.AllowLoopback = b
				return nil
			}},
	}
}

func (s Sync) validate(profile string) []error {
	if profile == ProfileProduction && s.AllowLoopback {
		return []error{errors.New("--sync-allow-loopback / KAPGW_SYNC_ALLOW_LOOPBACK: not allowed with --profile production")}
	}
	return nil
}
