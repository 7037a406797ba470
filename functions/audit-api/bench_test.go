package main

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"
)

// BenchmarkExportNDJSON exports 200,000 rows through HTTP (token check,
// access records, keyset batches, encoding) and reports rows/s; the target
// is at least 100,000. go test -run '^$' -bench ExportNDJSON -benchtime 3x
func BenchmarkExportNDJSON(b *testing.B) {
	r := newRig(b)
	const n = 200_000
	if _, err := r.db.Pool.Exec(context.Background(), `
		INSERT INTO audit_logs (occurred_at, event_type, actor_user_id, team_id, channel_id, run_id, ce_id, details)
		SELECT $1::timestamptz + i * interval '10 ms', 'order_placed', 'U' || (i % 500), 'T1', 'C' || (i % 50),
		       md5('run' || (i / 20))::uuid, 'ce-' || i, jsonb_build_object('drink', 'latte', 'size', 'medium', 'n', i)
		FROM generate_series(1, $2) AS i`, day, n); err != nil {
		b.Fatal(err)
	}
	if _, err := r.db.Pool.Exec(context.Background(), `VACUUM ANALYZE audit_logs`); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	var rows int64
	for range b.N {
		req, _ := http.NewRequest(http.MethodGet, r.srv.URL+Path+"?"+marchQuery+"&format=ndjson", nil)
		req.Header.Set("Authorization", "Bearer "+r.issuer.Token(b, nil))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		nb, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || nb == 0 {
			b.Fatalf("export: %d, %d bytes, %v", resp.StatusCode, nb, err)
		}
		rows += n
	}
	b.ReportMetric(float64(rows)/time.Since(start).Seconds(), "rows/s")
}
