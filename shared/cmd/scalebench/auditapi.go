package main

// The audit query API part of the audit benchmark (issue 8: "p50/p95/p99
// for the first page and the 50th page of a 90-day range, with and without
// filters, and the time to stream 90 days as NDJSON").
//
// It measures shared/auditquery, the package functions/audit-api calls for
// every page and export (that function is its own module; this command
// cannot import it): auditquery.Page for pages, auditquery.Stream with
// Row.AppendJSON for exports. The HTTP layer, the token check and the
// access records are not in these figures (an optional HTTP export through
// httptest puts the transfer back). Peers measured side by side in the
// same run: OFFSET pagination of the same statement, and encoding/json.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"regexp"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/coffeebuddy/coffeebuddy/shared/audit"
	"github.com/coffeebuddy/coffeebuddy/shared/auditquery"
)

// apiConfig sizes the audit query API part.
type apiConfig struct {
	On        bool
	Iters     int // measured samples per cell (shape × page) after the warm-up
	Warmup    int // rounds of every cell before measuring
	Limit     int // rows a page
	DeepPage  int // the deep page measured (the 50th)
	RangeDays int // days a query's range covers
	EndDays   int // the range ends at a random point in the last EndDays days of the data
	Exports   int // repetitions of each export mode
	HTTP      bool
}

func fullAPI() apiConfig {
	return apiConfig{On: true, Iters: 200, Warmup: 20, Limit: 100, DeepPage: 50, RangeDays: 90, EndDays: 7, Exports: 3, HTTP: true}
}

func (a apiConfig) validate(days int) error {
	if a.Iters < 1 || a.Warmup < 0 || a.Limit < 1 || a.Limit > 1000 || a.DeepPage < 2 || a.RangeDays < 1 ||
		a.EndDays < 0 || a.RangeDays+a.EndDays > days || a.Exports < 1 {
		return fmt.Errorf("bad audit API size %+v (range + end days must fit in %d days)", a, days)
	}
	return nil
}

// apiShape is one filter shape of the API.
type apiShape struct {
	Name   string
	Types  []string // event types, fixed
	Column string   // actor_user_id, channel_id or team_id: a value drawn at random per call
}

// apiShapes: the "with and without filters", one per index the
// API's migration added, and the known weak spot (several rare types).
var apiShapes = []apiShape{
	{Name: "no filter"},
	{Name: "common event type (`order_placed`)", Types: []string{audit.OrderPlaced}},
	{Name: "rare event type (`run_cancelled`)", Types: []string{audit.RunCancelled}},
	{Name: "one actor (`user_id`)", Column: "actor_user_id"},
	{Name: "one channel", Column: "channel_id"},
	{Name: "one team", Column: "team_id"},
	{Name: "two event types (`run_created`, `run_closed`)", Types: []string{audit.RunCreated, audit.RunClosed}},
	{Name: "two rare event types (`run_cancelled`, `housekeeping_done`)", Types: []string{audit.RunCancelled, audit.HousekeepingDone}},
}

// apiReport is what the API part found.
type apiReport struct {
	Config     apiConfig
	RefStart   time.Time // the reference range: the RangeDays up to the seed's end
	RefEnd     time.Time
	Shapes     []apiShapeData
	Cells      []apiCell
	Plans      []apiPlan
	Exports    []exportRun
	ExportRows int64 // rows of the export range (count(*))
	ExportFrom time.Time
	ExportTo   time.Time
	Violations []string
	Took       time.Duration
}

// apiShapeData is how many rows a shape matches.
type apiShapeData struct {
	Shape string
	Rows  int64 // fixed shapes: rows in the reference range
	// Column shapes: the values that exist, how many rows one has in the
	// reference range (median, max), and how many have a full deep page in
	// every range the benchmark draws.
	Values, Deep        int
	MedianRows, MaxRows int64
	DeepOK              bool // the shape has a full deep page in every range drawn
}

// apiCell is one shape × page, keyset (auditquery.Page) and OFFSET side by side.
type apiCell struct {
	Shape        string
	Page         int
	Keyset       result
	Offset       result
	Skipped      string // why there are no samples
	MinRows      int    // fewest rows a measured call returned (a light actor's range may hold less than a page)
	WalkedPerRun int    // pages walked (untimed) before each timed call
}

// apiPlan is one EXPLAIN (ANALYZE, BUFFERS) of a statement the API sends.
type apiPlan struct {
	Shape, What string // What: "page 1", "page 50", "page 50, OFFSET", "export batch …"
	SQL         string
	Lines       []string
	Nodes       string // the plan's nodes, outermost first
	Execution   string // ms
	Buffers     string
	Checked     bool // the API's own statement: a Seq Scan on audit_logs fails the run
}

// exportRun is one export of the range.
type exportRun struct {
	Mode       string
	Rep        int
	Rows       int64
	Bytes      int64
	Took       time.Duration
	CPU        time.Duration // this process's user+system CPU (encoder, pgx decoding; the HTTP client too in the http mode)
	HeapBefore uint64        // live heap after a GC, before the export
	PeakHeap   uint64        // highest heap in use (live and not yet collected) sampled every 2 ms
	Allocs     uint64        // bytes allocated during the export
	GCs        uint64
}

func (e exportRun) rowsPerSec() float64 { return float64(e.Rows) / e.Took.Seconds() }

const (
	exportAppendJSON = "Row.AppendJSON (the handler's encoder)"
	exportStdJSON    = "encoding/json.Marshal per row"
	exportHTTP       = "Row.AppendJSON through HTTP (httptest, loopback)"
)

// runAPI measures the API part on the seeded database at url (read only).
func runAPI(ctx context.Context, url string, c auditConfig, rep *auditReport) (*apiReport, error) {
	a := c.API
	began := time.Now()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, err
	}
	cfg.MaxConns = 4
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	day := 24 * time.Hour
	ar := &apiReport{Config: a, RefEnd: rep.Seeded, RefStart: rep.Seeded.Add(-time.Duration(a.RangeDays) * day)}
	// Every range drawn contains [seeded − RangeDays, seeded − EndDays):
	// a value with a full deep page there has one in every range.
	inner0, inner1 := ar.RefStart, rep.Seeded.Add(-time.Duration(a.EndDays)*day)
	deepRows := int64(a.DeepPage * a.Limit)

	values := map[string][]string{}     // column → every value that exists
	deepValues := map[string][]string{} // column → values with a full deep page in every range
	for _, sh := range apiShapes {
		d := apiShapeData{Shape: sh.Name}
		if sh.Column == "" {
			f := auditquery.Filter{Start: ar.RefStart, End: ar.RefEnd, EventTypes: sh.Types}
			var inner int64
			if err := pool.QueryRow(ctx, countSQL(f), countArgs(f, inner0, inner1)...).Scan(&d.Rows, &inner); err != nil {
				return nil, fmt.Errorf("count %s: %w", sh.Name, err)
			}
			d.DeepOK = inner >= deepRows
		} else {
			rows, _ := pool.Query(ctx, `SELECT `+sh.Column+`,
					count(*) FILTER (WHERE occurred_at >= $1 AND occurred_at < $2),
					count(*) FILTER (WHERE occurred_at >= $3 AND occurred_at < $4)
				FROM audit_logs WHERE `+sh.Column+` IS NOT NULL GROUP BY 1 ORDER BY 1`, ar.RefStart, ar.RefEnd, inner0, inner1)
			type vc struct {
				v         string
				ref, innr int64
			}
			vcs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (vc, error) {
				var x vc
				return x, r.Scan(&x.v, &x.ref, &x.innr)
			})
			if err != nil {
				return nil, fmt.Errorf("values of %s: %w", sh.Column, err)
			}
			var counts []int64
			for _, x := range vcs {
				values[sh.Column] = append(values[sh.Column], x.v)
				counts = append(counts, x.ref)
				if x.innr >= deepRows {
					deepValues[sh.Column] = append(deepValues[sh.Column], x.v)
				}
			}
			if len(counts) == 0 {
				return nil, fmt.Errorf("no values of %s", sh.Column)
			}
			slices.Sort(counts)
			d.Values, d.Deep = len(vcs), len(deepValues[sh.Column])
			d.MedianRows, d.MaxRows = counts[len(counts)/2], counts[len(counts)-1]
			d.DeepOK = d.Deep > 0
		}
		ar.Shapes = append(ar.Shapes, d)
	}

	r := rand.New(rand.NewPCG(c.Seed, 23))
	filter := func(sh apiShape, deep bool) auditquery.Filter {
		end := rep.Seeded.Add(-time.Duration(r.Int64N(int64(time.Duration(a.EndDays)*day) + 1))).Truncate(time.Second)
		f := auditquery.Filter{Start: end.Add(-time.Duration(a.RangeDays) * day), End: end, EventTypes: sh.Types}
		if sh.Column != "" {
			vs := values[sh.Column]
			if deep {
				vs = deepValues[sh.Column]
			}
			v := vs[r.IntN(len(vs))]
			switch sh.Column {
			case "actor_user_id":
				f.UserID = v
			case "channel_id":
				f.ChannelID = v
			case "team_id":
				f.TeamID = v
			}
		}
		return f.Normalize() // as the handler parses it
	}

	// The cells, measured round-robin: every round draws fresh parameters
	// for every cell, so the box's noise spreads over all cells alike.
	type cellSamples struct{ keyset, offset []time.Duration }
	samples := make([][2]cellSamples, len(apiShapes))
	cells := make([][2]apiCell, len(apiShapes))
	for i, sh := range apiShapes {
		for k, page := range []int{1, a.DeepPage} {
			cells[i][k] = apiCell{Shape: sh.Name, Page: page, WalkedPerRun: page - 1}
			if page > 1 && !ar.Shapes[i].DeepOK {
				cells[i][k].Skipped = fmt.Sprintf("no value has %d rows (%d pages) in every range drawn", deepRows, a.DeepPage)
			}
		}
	}
	lastLog := time.Now()
	for round := range a.Warmup + a.Iters {
		for i, sh := range apiShapes {
			for k := range cells[i] {
				cell := &cells[i][k]
				if cell.Skipped != "" {
					continue
				}
				f := filter(sh, cell.Page > 1)
				kd, od, n, err := timePagePair(ctx, pool, f, cell.Page, a.Limit, r.IntN(2) == 0)
				if err != nil {
					return nil, fmt.Errorf("%s, page %d: %w", sh.Name, cell.Page, err)
				}
				if round >= a.Warmup {
					if len(samples[i][k].keyset) == 0 || n < cell.MinRows {
						cell.MinRows = n
					}
					samples[i][k].keyset = append(samples[i][k].keyset, kd)
					samples[i][k].offset = append(samples[i][k].offset, od)
				}
			}
		}
		if time.Since(lastLog) > 30*time.Second {
			c.logf("audit query API: round %d of %d", round+1, a.Warmup+a.Iters)
			lastLog = time.Now()
		}
	}
	for i := range cells {
		for k := range cells[i] {
			if cells[i][k].Skipped == "" {
				cells[i][k].Keyset = summarize("keyset", samples[i][k].keyset)
				cells[i][k].Offset = summarize("offset", samples[i][k].offset)
			}
			ar.Cells = append(ar.Cells, cells[i][k])
		}
	}

	c.logf("audit query API: explaining")
	for i, sh := range apiShapes {
		for _, page := range []int{1, a.DeepPage} {
			if page > 1 && !ar.Shapes[i].DeepOK {
				continue
			}
			f := filter(sh, page > 1)
			after, err := walk(ctx, pool, f, page-1, a.Limit)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", sh.Name, err)
			}
			what := fmt.Sprintf("page %d", page)
			sql, args := auditquery.Statement(f, after, a.Limit+1) // what Page sends
			p, err := explainAPI(ctx, pool, sh.Name, what, sql, args, true)
			if err != nil {
				return nil, err
			}
			ar.Plans = append(ar.Plans, p)
			osql, oargs := offsetStatement(f, (page-1)*a.Limit, a.Limit)
			p, err = explainAPI(ctx, pool, sh.Name, what+", OFFSET", osql, oargs, false)
			if err != nil {
				return nil, err
			}
			ar.Plans = append(ar.Plans, p)
		}
	}
	ar.ExportTo = rep.Seeded
	ar.ExportFrom = ar.ExportTo.Add(-time.Duration(a.RangeDays) * day)
	exportFilter := auditquery.Filter{Start: ar.ExportFrom, End: ar.ExportTo}
	mid, err := walk(ctx, pool, exportFilter, 1, auditquery.ExportBatch)
	if err != nil {
		return nil, err
	}
	for _, e := range []struct {
		what  string
		after *auditquery.Position
	}{{"export, first batch", nil}, {"export, a later batch", mid}} {
		sql, args := auditquery.Statement(exportFilter, e.after, auditquery.ExportBatch) // what Stream sends
		p, err := explainAPI(ctx, pool, "no filter", e.what, sql, args, true)
		if err != nil {
			return nil, err
		}
		ar.Plans = append(ar.Plans, p)
	}
	for _, p := range ar.Plans {
		if p.Checked && strings.Contains(strings.Join(p.Lines, "\n"), "Seq Scan on audit_logs") {
			ar.Violations = append(ar.Violations, fmt.Sprintf("audit API %s, %s: Seq Scan on audit_logs", p.Shape, p.What))
		}
	}

	if err := pool.QueryRow(ctx, countSQL(exportFilter), countArgs(exportFilter, inner0, inner1)...).Scan(&ar.ExportRows, new(int64)); err != nil {
		return nil, err
	}
	modes := []string{exportAppendJSON, exportStdJSON}
	if a.HTTP {
		modes = append(modes, exportHTTP)
	}
	for round := 1; round <= a.Exports; round++ {
		for _, m := range modes {
			c.logf("audit query API: export %d of %d: %s", round, a.Exports, m)
			e, err := export(ctx, pool, exportFilter, m)
			if err != nil {
				return nil, fmt.Errorf("export (%s): %w", m, err)
			}
			if e.Rows != ar.ExportRows {
				return nil, fmt.Errorf("export (%s): %d rows, the range has %d", m, e.Rows, ar.ExportRows)
			}
			e.Rep = round
			ar.Exports = append(ar.Exports, e)
			c.logf("audit query API: %d rows in %s: %.0f rows/s, peak heap %s MiB", e.Rows, e.Took.Round(time.Millisecond), e.rowsPerSec(), mib(int64(e.PeakHeap)))
		}
	}
	ar.Took = time.Since(began)
	return ar, nil
}

// countSQL counts f's rows, and its rows in a second range.
func countSQL(f auditquery.Filter) string {
	sql, args := auditquery.Statement(f, nil, 1)
	where := sql[strings.Index(sql, "WHERE"):strings.Index(sql, "ORDER BY")]
	n := len(args) - 1 // without the limit
	return fmt.Sprintf(`SELECT count(*), count(*) FILTER (WHERE occurred_at >= $%d AND occurred_at < $%d) FROM audit_logs %s`, n+1, n+2, where)
}

func countArgs(f auditquery.Filter, from, to time.Time) []any {
	_, args := auditquery.Statement(f, nil, 1)
	return append(args[:len(args)-1], from, to)
}

// offsetStatement is the OFFSET peer of a page: the statement Page sends
// for the first page of f (limit + 1 rows: the page and whether more
// follow), skipping offset rows.
func offsetStatement(f auditquery.Filter, offset, limit int) (string, []any) {
	sql, args := auditquery.Statement(f, nil, limit+1)
	args = append(args, offset)
	return sql + " OFFSET $" + strconv.Itoa(len(args)), args
}

// walk pages through f, pages pages of limit rows, as a client following
// next cursors does, and returns the position after the last one.
func walk(ctx context.Context, pool *pgxpool.Pool, f auditquery.Filter, pages, limit int) (*auditquery.Position, error) {
	var after *auditquery.Position
	for p := 0; p < pages; p++ {
		rows, more, err := auditquery.Page(ctx, pool, f, after, limit)
		if err != nil {
			return nil, err
		}
		if !more {
			return nil, fmt.Errorf("page %d of %+v is the last", p+1, f)
		}
		pos := rows[len(rows)-1].Position()
		after = &pos
	}
	return after, nil
}

// timePagePair times page page of f twice: through auditquery.Page after
// walking the pages before it with their positions (the walk is not
// timed), and as the OFFSET peer; in the order given, both after the walk.
// The two must return the same rows.
func timePagePair(ctx context.Context, pool *pgxpool.Pool, f auditquery.Filter, page, limit int, keysetFirst bool) (keyset, offset time.Duration, n int, err error) {
	after, err := walk(ctx, pool, f, page-1, limit)
	if err != nil {
		return 0, 0, 0, err
	}
	var kRows, oRows []auditquery.Row
	doKeyset := func() error {
		t0 := time.Now()
		rows, _, err := auditquery.Page(ctx, pool, f, after, limit)
		keyset = time.Since(t0)
		kRows = rows
		return err
	}
	doOffset := func() error {
		sql, args := offsetStatement(f, (page-1)*limit, limit)
		t0 := time.Now()
		rows, _ := pool.Query(ctx, sql, append([]any{pgx.QueryExecModeCacheDescribe}, args...)...)
		out, err := pgx.CollectRows(rows, pgx.RowToStructByName[auditquery.Row]) // decoded as Page decodes
		offset = time.Since(t0)
		oRows = out
		return err
	}
	order := []func() error{doKeyset, doOffset}
	if !keysetFirst {
		order[0], order[1] = order[1], order[0]
	}
	for _, fn := range order {
		if err := fn(); err != nil {
			return 0, 0, 0, err
		}
	}
	if len(oRows) > limit {
		oRows = oRows[:limit]
	}
	if len(kRows) != len(oRows) || len(kRows) == 0 {
		return 0, 0, 0, fmt.Errorf("keyset page has %d rows, OFFSET %d", len(kRows), len(oRows))
	}
	for i := range kRows {
		if kRows[i].ID != oRows[i].ID {
			return 0, 0, 0, fmt.Errorf("row %d: keyset id %d, OFFSET id %d", i, kRows[i].ID, oRows[i].ID)
		}
	}
	return keyset, offset, len(kRows), nil
}

var planNode = regexp.MustCompile(`^\s*(?:->\s+)?([A-Z][A-Za-z ]+?(?: (?:using|on) \S+(?: on \S+)?)?)\s+\(cost=`)

// explainAPI runs EXPLAIN (ANALYZE, BUFFERS) of sql with args, in the mode
// auditquery sends it (the unnamed statement, planned for these values).
func explainAPI(ctx context.Context, pool *pgxpool.Pool, shape, what, sql string, args []any, checked bool) (apiPlan, error) {
	p := apiPlan{Shape: shape, What: what, SQL: sql, Checked: checked}
	rows, _ := pool.Query(ctx, "EXPLAIN (ANALYZE, BUFFERS) "+sql, append([]any{pgx.QueryExecModeCacheDescribe}, args...)...)
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return p, fmt.Errorf("explain %s, %s: %w", shape, what, err)
	}
	p.Lines = lines
	var nodes []string
	for _, l := range lines {
		t := strings.TrimSpace(l)
		switch {
		case strings.HasPrefix(t, "Execution Time:"):
			p.Execution = strings.TrimSuffix(strings.TrimPrefix(t, "Execution Time: "), " ms")
		case strings.HasPrefix(t, "Buffers:") && p.Buffers == "":
			p.Buffers = strings.TrimPrefix(t, "Buffers: ")
		}
		if m := planNode.FindStringSubmatch(l); m != nil {
			nodes = append(nodes, m[1])
		}
	}
	p.Nodes = strings.Join(nodes, " → ")
	return p, nil
}

// export streams f as the handler does, in one of the modes, and measures it.
func export(ctx context.Context, pool *pgxpool.Pool, f auditquery.Filter, mode string) (exportRun, error) {
	e := exportRun{Mode: mode}
	runtime.GC()
	e.HeapBefore = readMetric("/memory/classes/heap/objects:bytes")
	allocs0, gcs0 := readMetric("/gc/heap/allocs:bytes"), readMetric("/gc/cycles/total:gc-cycles")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var peak uint64
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			peak = max(peak, readMetric("/memory/classes/heap/objects:bytes"))
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	cpu0 := cpuTime()
	t0 := time.Now()
	var err error
	switch mode {
	case exportAppendJSON:
		cw := &countingWriter{}
		out := auditquery.NewNDJSON(cw)
		e.Rows, err = auditquery.Stream(ctx, pool, f, nil, out.Write)
		if err == nil {
			err = out.Flush()
		}
		e.Bytes = cw.n
	case exportStdJSON:
		cw := &countingWriter{}
		out := &stdNDJSON{bw: bufio.NewWriterSize(cw, 64<<10)}
		e.Rows, err = auditquery.Stream(ctx, pool, f, nil, out.write)
		if err == nil {
			err = out.bw.Flush()
		}
		e.Bytes = cw.n
	case exportHTTP:
		e.Rows, e.Bytes, err = exportOverHTTP(ctx, pool, f)
	default:
		err = fmt.Errorf("unknown export mode %q", mode)
	}
	e.Took = time.Since(t0)
	e.CPU = cpuTime() - cpu0
	close(stop)
	wg.Wait()
	e.PeakHeap = peak
	e.Allocs = readMetric("/gc/heap/allocs:bytes") - allocs0
	e.GCs = readMetric("/gc/cycles/total:gc-cycles") - gcs0
	return e, err
}

// stdNDJSON is the peer of auditquery.NDJSON (the handler's writer): the
// same buffering and flushing, the line from encoding/json instead of
// Row.AppendJSON.
type stdNDJSON struct {
	bw       *bufio.Writer
	buffered int
}

func (o *stdNDJSON) write(r *auditquery.Row) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if _, err := o.bw.Write(append(b, '\n')); err != nil {
		return err
	}
	if o.buffered++; o.buffered >= 1000 {
		o.buffered = 0
		return o.bw.Flush()
	}
	return nil
}

// exportOverHTTP serves the export from an httptest server as the handler
// writes it (no token check, no access records) and reads it with an
// http.Client, counting lines and bytes.
func exportOverHTTP(ctx context.Context, pool *pgxpool.Pool, f auditquery.Filter) (rows, bytes int64, err error) {
	var served int64
	var serveErr error
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.WriteHeader(http.StatusOK)
		out := auditquery.NewNDJSON(w)
		served, serveErr = auditquery.Stream(r.Context(), pool, f, nil, out.Write)
		if serveErr == nil {
			serveErr = out.Flush()
		}
		if serveErr != nil {
			panic(http.ErrAbortHandler)
		}
	}))
	defer srv.Close()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	if err != nil {
		return 0, 0, err
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	cw := &countingWriter{countLines: true}
	if _, err := io.Copy(cw, resp.Body); err != nil {
		return 0, cw.n, err
	}
	srv.Close() // waits for the handler
	if serveErr != nil {
		return cw.lines, cw.n, serveErr
	}
	if cw.lines != served {
		return cw.lines, cw.n, fmt.Errorf("client read %d lines, server sent %d rows", cw.lines, served)
	}
	return cw.lines, cw.n, nil
}

// countingWriter discards what it is given (io.Discard), counting bytes,
// and lines if asked to.
type countingWriter struct {
	n, lines   int64
	countLines bool
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	if c.countLines {
		c.lines += int64(bytes.Count(p, []byte{'\n'}))
	}
	return io.Discard.Write(p)
}

func readMetric(name string) uint64 {
	s := []metrics.Sample{{Name: name}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// cpuTime is this process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
