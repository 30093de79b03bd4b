package embedded

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"time"
)

// FerretDB 1.24's SQLite backend finds a document by _id with
// `WHERE _ferretdb_sjson->'$._id' = ?`, but the unique index it creates for
// _id is on `_ferretdb_sjson->"_id"`: a different expression, so SQLite never
// uses it and every _id lookup, update and delete scans the whole table,
// parsing each row's JSON (measured: an UpdateOne by _id costs ~3 ms on 200
// documents, ~10 ms on 1,000, and grows with the table). The embedded dev
// stack therefore adds, to every collection table, an index on exactly the
// expression FerretDB queries. FerretDB does not know about these indexes (it
// neither lists nor needs them); dropping a collection drops them with its
// table. Only the embedded SQLite backend needs this.

// idPathIndexer adds the missing indexes as collections appear.
type idPathIndexer struct {
	dir  string
	log  *slog.Logger
	done map[string]bool // table names indexed already (per database file)
}

// runIDPathIndexer polls dir's SQLite databases until ctx ends: quickly while
// the system starts (collections are created on first use), then slowly.
func runIDPathIndexer(ctx context.Context, dir string, log *slog.Logger) {
	x := &idPathIndexer{dir: dir, log: log, done: map[string]bool{}}
	start := time.Now()
	for {
		x.pass(ctx)
		every := 250 * time.Millisecond
		if time.Since(start) > time.Minute {
			every = 5 * time.Second
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
	}
}

func (x *idPathIndexer) pass(ctx context.Context) {
	files, _ := filepath.Glob(filepath.Join(x.dir, "*.sqlite"))
	for _, f := range files {
		if err := x.index(ctx, f); err != nil && ctx.Err() == nil {
			x.log.Debug("indexing FerretDB _id paths", "file", filepath.Base(f), "err", err)
		}
	}
}

func (x *idPathIndexer) index(ctx context.Context, file string) error {
	// FerretDB links modernc.org/sqlite, which registers this driver.
	db, err := sql.Open("sqlite", "file:"+file+"?_pragma=busy_timeout(10000)")
	if err != nil {
		return err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\_ferretdb\_%' ESCAPE '\'`)
	if err != nil {
		return err
	}
	var tables []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			rows.Close()
			return err
		}
		if !x.done[file+"\x00"+t] {
			tables = append(tables, t)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, t := range tables {
		q := fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %s ON %s (_ferretdb_sjson->'$._id')`,
			quoteIdent(t+"_easychat_id_path"), quoteIdent(t))
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", t, err)
		}
		x.done[file+"\x00"+t] = true
		x.log.Debug("indexed FerretDB _id path", "table", t)
	}
	return nil
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
