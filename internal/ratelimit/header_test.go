package ratelimit

import (
	"net/http"
	"testing"
	"time"
)

func TestSetHeaders(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                                string
		result                              Result
		limit, remaining, reset, retryAfter string
	}{
		{"allowed", Result{Allowed: true, Limit: 20, Remaining: 19, ResetAfter: 50 * time.Millisecond}, "20", "19", "1", ""},
		{"allowed full", Result{Allowed: true, Limit: 20, Remaining: 20}, "20", "20", "0", ""},
		{"refused", Result{Limit: 3, RetryAfter: 1200 * time.Millisecond, ResetAfter: 3 * time.Second}, "3", "0", "3", "2"},
		{"refused briefly", Result{Limit: 3, RetryAfter: time.Millisecond, ResetAfter: 2 * time.Second}, "3", "0", "2", "1"},
	}
	for _, tt := range tests {
		h := http.Header{}
		SetHeaders(h, tt.result)
		got := [4]string{h.Get("RateLimit-Limit"), h.Get("RateLimit-Remaining"), h.Get("RateLimit-Reset"), h.Get("Retry-After")}
		want := [4]string{tt.limit, tt.remaining, tt.reset, tt.retryAfter}
		if got != want {
			t.Errorf("%s: got limit, remaining, reset, retry-after %q, want %q", tt.name, got, want)
		}
	}
}
