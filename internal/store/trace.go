package store

import (
	"context"
	"database/sql"
	"errors"
	"strings"

	"github.com/XSAM/otelsql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// tracerName is the instrumentation scope of database spans.
const tracerName = "github.com/kapgw/kapgw/internal/store"

// pgTracer is a pgx QueryTracer that makes one client span per statement,
// named by its SQL operation ("SELECT", "INSERT"). It records neither the
// statement text nor its arguments (arguments are PHI), only the operation,
// the row count and, on failure, the SQLSTATE code.
type pgTracer struct{ tracer trace.Tracer }

// newPGTracer returns nil when tp is nil, leaving pgx untraced.
func newPGTracer(tp trace.TracerProvider) pgx.QueryTracer {
	if tp == nil {
		return nil
	}
	return pgTracer{tp.Tracer(tracerName)}
}

func (t pgTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	op := operation(d.SQL)
	ctx, _ = t.tracer.Start(ctx, op, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(semconv.DBSystemNamePostgreSQL, semconv.DBOperationName(op)))
	return ctx
}

func (t pgTracer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryEndData) {
	span := trace.SpanFromContext(ctx)
	defer span.End()
	span.SetAttributes(attribute.Int64("db.response.returned_rows", d.CommandTag.RowsAffected()))
	if d.Err != nil && !errors.Is(d.Err, pgx.ErrNoRows) {
		code := "error"
		var pe *pgconn.PgError
		if errors.As(d.Err, &pe) {
			code = pe.Code
		}
		span.SetAttributes(semconv.DBResponseStatusCode(code), semconv.ErrorTypeKey.String(code))
		span.SetStatus(codes.Error, code) // never the message: it can quote values
	}
}

// operation is the first keyword of a statement, upper-cased.
func operation(q string) string {
	q = strings.TrimSpace(q)
	if i := strings.IndexAny(q, " \t\n("); i > 0 {
		q = q[:i]
	}
	if q == "" || len(q) > 16 {
		return "QUERY"
	}
	return strings.ToUpper(q)
}

// openSQL opens a database/sql pool, traced through otelsql when tp is set:
// one span per statement and transaction, without statement text or
// arguments.
func openSQL(tp trace.TracerProvider, driverName, dsn string) (*sql.DB, error) {
	if tp == nil {
		return sql.Open(driverName, dsn)
	}
	return otelsql.Open(driverName, dsn,
		otelsql.WithTracerProvider(tp),
		otelsql.WithAttributes(semconv.DBSystemNameSQLite),
		otelsql.WithSpanOptions(otelsql.SpanOptions{
			DisableQuery:         true,
			OmitConnResetSession: true,
			OmitConnPrepare:      true,
			OmitRows:             true,
			OmitConnectorConnect: true,
		}),
		otelsql.WithSpanNameFormatter(func(_ context.Context, method otelsql.Method, query string) string {
			if query == "" {
				return string(method)
			}
			return operation(query)
		}),
	)
}
