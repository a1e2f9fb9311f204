package kap_test

import (
	"testing"

	"github.com/kapgw/kapgw/internal/kap"
)

func TestValidNPI(t *testing.T) {
	t.Parallel()
	cases := []struct {
		npi  string
		want bool
	}{
		{"1234567893", true}, // the CMS worked example
		{"1590830166", true},
		{"1996030825", true},
		{"1987654328", true},
		{"1234567890", false},
		{"1590830167", false},
		{"123456789", false},
		{"12345678930", false},
		{"123456789X", false},
		{"", false},
	}
	for _, c := range cases {
		if got := kap.ValidNPI(c.npi); got != c.want {
			t.Errorf("ValidNPI(%q) = %v, want %v", c.npi, got, c.want)
		}
	}
}

func TestValidDEA(t *testing.T) {
	t.Parallel()
	cases := []struct {
		dea  string
		want bool
	}{
		{"MA1318600", true},
		{"FM6842682", true},
		{"AB1234563", true}, // 1+3+5 + 2*(2+4+6) = 33
		{"AB1234567", false},
		{"MA1318601", false},
		{"ma1318600", false},
		{"M11318600", false},
		{"MA131860", false},
		{"MA13186000", false},
		{"", false},
	}
	for _, c := range cases {
		if got := kap.ValidDEA(c.dea); got != c.want {
			t.Errorf("ValidDEA(%q) = %v, want %v", c.dea, got, c.want)
		}
	}
}

func TestScaleOf(t *testing.T) {
	t.Parallel()
	cases := []struct {
		instrument string
		max        int
	}{
		{kap.InstrumentPHQ9, 27}, {kap.InstrumentGAD7, 21}, {kap.InstrumentPCL5, 80},
		{kap.InstrumentMADRS, 60}, {kap.InstrumentCADSS, 92},
	}
	for _, c := range cases {
		s, ok := kap.ScaleOf(c.instrument)
		if !ok || s.MaxScore() != c.max {
			t.Errorf("ScaleOf(%s) = %+v, %v; want max score %d", c.instrument, s, ok, c.max)
		}
	}
	if _, ok := kap.ScaleOf("BDI-II"); ok {
		t.Errorf("ScaleOf(BDI-II) is known")
	}
}
