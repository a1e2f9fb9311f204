package telemetry

import (
	"context"
	"net/url"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// redactor is a span processor that scrubs, at span start, the attributes a
// library instrumentation may fill with request data: query strings (which
// can carry patient search values) and statement texts. It is a safety net
// behind the gateway's own instrumentation, which never sets them.
type redactor struct{}

var _ sdktrace.SpanProcessor = redactor{}

// urlKeys hold a whole URL; their query, fragment and user info are dropped.
var urlKeys = map[attribute.Key]bool{"url.full": true, "http.url": true, "http.target": true}

// blankKeys hold request values and are emptied.
var blankKeys = map[attribute.Key]bool{"url.query": true, "db.statement": true, "db.query.text": true}

func (redactor) OnStart(_ context.Context, s sdktrace.ReadWriteSpan) {
	var fix []attribute.KeyValue
	for _, kv := range s.Attributes() {
		switch {
		case urlKeys[kv.Key]:
			fix = append(fix, kv.Key.String(stripURL(kv.Value.AsString())))
		case blankKeys[kv.Key]:
			fix = append(fix, kv.Key.String(""))
		}
	}
	if len(fix) > 0 {
		s.SetAttributes(fix...)
	}
}

// stripURL keeps scheme, host and path. A value that does not parse is
// dropped whole.
func stripURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	u.User, u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = nil, "", false, "", ""
	return u.String()
}

func (redactor) OnEnd(sdktrace.ReadOnlySpan)      {}
func (redactor) Shutdown(context.Context) error   { return nil }
func (redactor) ForceFlush(context.Context) error { return nil }
