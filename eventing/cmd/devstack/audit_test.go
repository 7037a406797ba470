package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/coffeebuddy/coffeebuddy/eventing/devstack"
	"github.com/coffeebuddy/coffeebuddy/shared/kafka/kafkatest"
	"github.com/coffeebuddy/coffeebuddy/shared/postgres/pgtest"
	"github.com/coffeebuddy/coffeebuddy/shared/slackstandin"
	"github.com/jackc/pgx/v5/pgxpool"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const trailPrefix = "  Read the trail    "

// TestBannerAudit: what the banner says about the audit API for each
// issuer, and that the local ones come with a ready-to-paste command.
func TestBannerAudit(t *testing.T) {
	day := time.Date(2026, 12, 3, 23, 30, 0, 0, time.FixedZone("CET", 3600))
	base := func() devstack.Stack {
		return devstack.Stack{
			Brokers:   []string{"127.0.0.1:19092"},
			Functions: map[string]string{"audit-api": "http://127.0.0.1:4100"},
			LogDir:    "/repo/.tmp/run/logs",
			OIDC: devstack.OIDC{Issuer: "the dev issuer", IssuerURL: "http://127.0.0.1:4200/", TokenURL: "http://127.0.0.1:4200/oauth2/token",
				ClientID: "coffeebuddy-local-audit", ClientSecret: "s3cr3t", Audience: "coffeebuddy-audit", Scope: "audit:read"},
		}
	}
	cmd := `TOKEN=$(curl -s -u coffeebuddy-local-audit:s3cr3t -d grant_type=client_credentials -d scope=audit:read -d audience=coffeebuddy-audit http://127.0.0.1:4200/oauth2/token | sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p'); curl -s -H "Authorization: Bearer $TOKEN" 'http://127.0.0.1:4100/api/v1/audit?end_date=2026-12-04&start_date=2026-12-03'`
	tests := []struct {
		name      string
		edit      func(*devstack.Stack)
		want, not []string
	}{
		{"dev issuer", func(*devstack.Stack) {}, []string{
			"  Audit API         http://127.0.0.1:4100/api/v1/audit  (tokens from the dev issuer at http://127.0.0.1:4200/; make ensure-hydra builds Ory Hydra to use instead)\n",
			"  Audit client      id coffeebuddy-local-audit  secret s3cr3t  (generated for this run; scope audit:read, audience coffeebuddy-audit)\n",
			trailPrefix + cmd + "\n",
		}, []string{"Hydra admin"}},
		{"hydra", func(s *devstack.Stack) {
			s.OIDC.Issuer, s.OIDC.AdminURL, s.OIDC.HydraBin = "Ory Hydra v2.3.0", "http://127.0.0.1:4201", "/repo/.tmp/bin/hydra"
		}, []string{
			"(tokens from Ory Hydra v2.3.0 at http://127.0.0.1:4200/)\n",
			"  Hydra admin       http://127.0.0.1:4201  (more clients: .tmp/bin/hydra create oauth2-client --endpoint http://127.0.0.1:4201 --grant-type client_credentials --scope audit:read --audience coffeebuddy-audit)\n",
			trailPrefix + cmd + "\n",
		}, []string{"ensure-hydra"}},
		{"OIDC_ISSUER_URL", func(s *devstack.Stack) {
			s.OIDC = devstack.OIDC{Issuer: "OIDC_ISSUER_URL", IssuerURL: "https://hydra.example/", Scope: "audit:read"}
		}, []string{"  Audit API         http://127.0.0.1:4100/api/v1/audit  (tokens from OIDC_ISSUER_URL https://hydra.example/, scope audit:read, any audience)\n"},
			[]string{"Audit client", "Read the trail", "secret"}},
		{"no audit-api", func(s *devstack.Stack) { s.Functions = map[string]string{} }, nil,
			[]string{"Audit", "Read the trail"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := base()
			tt.edit(&s)
			var b strings.Builder
			banner(&b, &s, "/repo", time.Second, day)
			for _, w := range tt.want {
				if !strings.Contains(b.String(), w) {
					t.Errorf("banner lacks %q:\n%s", w, b.String())
				}
			}
			for _, n := range tt.not {
				if strings.Contains(b.String(), n) {
					t.Errorf("banner has %q:\n%s", n, b.String())
				}
			}
		})
	}
}

// TestBannerCommandReadsTrail starts make run's stack (dev issuer: the
// default without Hydra), makes a run happen, and pastes the banner's
// command into sh exactly as printed: it reads the run's audit rows, and
// the read itself is recorded with the banner's client as actor.
func TestBannerCommandReadsTrail(t *testing.T) {
	for _, tool := range []string{"sh", "curl", "sed"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("the banner's command needs %s: %v", tool, err)
		}
	}
	db := pgtest.New(t)
	kc := kafkatest.New(t)
	env := map[string]string{"DATABASE_URL": db.URL, "KAFKA_BROKERS": strings.Join(kc.Brokers, ",")}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s, err := devstack.Start(ctx, devstack.Options{
		Root:           "../../..",
		Getenv:         func(k string) string { return env[k] },
		BinDir:         os.Getenv("DEVSTACK_BIN"),
		RandomPorts:    true,
		ReloadInterval: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.OIDC.Issuer != "the dev issuer" || !s.OIDC.Local() {
		t.Fatalf("OIDC %+v: want the dev issuer", s.OIDC)
	}

	res, err := s.Slack.RunCommand(ctx, slackstandin.Command{Command: "/coffee", UserID: "U0ALICE", UserName: "alice",
		ChannelID: "C0AUDIT", TeamID: slackstandin.DefaultTeamID})
	if err != nil || res.Status != 200 {
		t.Fatalf("/coffee: %v %+v", err, res)
	}
	pool, err := pgxpool.New(ctx, s.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	waitRows(t, pool, `SELECT count(*) FROM audit_logs WHERE event_type = 'run_created' AND channel_id = 'C0AUDIT'`, 1)

	var b strings.Builder
	banner(&b, s, "../../..", time.Second, time.Now())
	var cmd string
	for _, line := range strings.Split(b.String(), "\n") {
		if c, ok := strings.CutPrefix(line, trailPrefix); ok {
			cmd = c
		}
	}
	if cmd == "" {
		t.Fatalf("no %q line in the banner:\n%s", trailPrefix, b.String())
	}
	out, err := exec.CommandContext(ctx, "sh", "-c", cmd).CombinedOutput()
	if err != nil {
		t.Fatalf("sh -c %q: %v\n%s", cmd, err, out)
	}
	var page struct {
		Items []struct {
			EventType string `json:"event_type"`
			ChannelID string `json:"channel_id"`
		} `json:"items"`
	}
	if err := json.Unmarshal(out, &page); err != nil {
		t.Fatalf("the command printed no audit page: %v\n%s", err, out)
	}
	found := false
	for _, r := range page.Items {
		found = found || (r.EventType == "run_created" && r.ChannelID == "C0AUDIT")
	}
	if !found {
		t.Errorf("no run_created row for C0AUDIT in %s", out)
	}
	// audit-api recorded the page before writing it.
	waitRows(t, pool, `SELECT count(*) FROM audit_logs WHERE event_type = 'audit_queried' AND actor_user_id = '`+s.OIDC.ClientID+`'`, 1)
}

// waitRows waits until query counts want rows (the events flow
// asynchronously through Kafka and the stand-in).
func waitRows(t *testing.T, db *pgxpool.Pool, query string, want int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var n int
		if err := db.QueryRow(context.Background(), query).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n >= want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d rows, want %d: %s", n, want, query)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
