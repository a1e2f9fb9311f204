package jobs

import (
	"database/sql"

	"github.com/jackc/pgx/v5"
)

type (
	sqliteTx = *sql.Tx
	pgTx     = pgx.Tx
)
