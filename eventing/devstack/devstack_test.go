package devstack_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coffeebuddy/coffeebuddy/eventing/devstack"
	"github.com/coffeebuddy/coffeebuddy/shared/config"
	"github.com/coffeebuddy/coffeebuddy/shared/kafka/kafkatest"
	"github.com/coffeebuddy/coffeebuddy/shared/postgres/pgtest"
	"github.com/coffeebuddy/coffeebuddy/shared/slackapi"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// startStack runs the real stack (function binaries as processes, the
// eventing stand-in over the repository's manifests, the local Slack API)
// on a fresh database and Kafka cluster.
func startStack(t *testing.T, extraEnv map[string]string) *devstack.Stack {
	t.Helper()
	return startStackWith(t, extraEnv, nil)
}

// startStackWith is startStack with Options changed by edit (nil: none).
func startStackWith(t *testing.T, extraEnv map[string]string, edit func(*devstack.Options)) *devstack.Stack {
	t.Helper()
	db := pgtest.New(t)
	kc := kafkatest.New(t)
	env := map[string]string{
		"DATABASE_URL":  db.URL,
		"KAFKA_BROKERS": strings.Join(kc.Brokers, ","),
		"LOG_LEVEL":     "debug",
	}
	for k, v := range extraEnv {
		env[k] = v
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	o := devstack.Options{
		Root:           "../..",
		Getenv:         func(k string) string { return env[k] },
		BinDir:         os.Getenv("DEVSTACK_BIN"),
		RandomPorts:    true,
		ReloadInterval: time.Hour,
	}
	if edit != nil {
		edit(&o)
	}
	s, err := devstack.Start(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() { // before Close, which removes the log folder
			for n := range s.Functions {
				b, _ := os.ReadFile(s.LogDir + "/" + n + ".log")
				t.Logf("--- %s.log ---\n%s", n, b)
			}
			if b, err := os.ReadFile(s.LogDir + "/hydra.log"); err == nil {
				t.Logf("--- hydra.log ---\n%s", b)
			}
		}
		s.Close()
	})
	return s // cleanups run LIFO: the stack stops before Kafka and the database
}

// slash posts a /coffee command signed exactly as Slack signs it, with a
// response_url of the stack's Slack stand-in.
func slash(t *testing.T, s *devstack.Stack, user, channel, text string) (int, string) {
	t.Helper()
	status, body, err := trySlash(s, user, channel, text)
	if err != nil {
		t.Fatal(err)
	}
	return status, body
}

// freshConn opens a connection per request, as Slack does: a pooled
// connection to a process killed since would fail the request with EOF.
var freshConn = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

func trySlash(s *devstack.Stack, user, channel, text string) (int, string, error) {
	form := url.Values{
		"token": {"legacy-verification-token"}, "team_id": {"T0001"}, "team_domain": {"acme"},
		"channel_id": {channel}, "channel_name": {"coffee"}, "user_id": {user}, "user_name": {strings.ToLower(user)},
		"command": {"/coffee"}, "text": {text}, "api_app_id": {"A0001"},
		"response_url": {s.Slack.NewResponseURL(channel, user)},
		"trigger_id":   {"13345224609.738474920.8088930838d88f008e0-" + user},
	}
	body := form.Encode()
	ts := time.Now().Unix()
	req, _ := http.NewRequest(http.MethodPost, s.IngressURL+"/slack/commands", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set(slackapi.HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(slackapi.HeaderSignature, slackapi.Sign(config.LocalSlackSigningSecret, ts, []byte(body)))
	resp, err := freshConn.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// TestCoffeeCommandEndToEnd drives the first flow through every layer:
// signed /coffee → slack-ingress → Kafka → eventing stand-in → run-start →
// run row + audit + outbox in one transaction → relay → run.created →
// run-announce → chat.postMessage on the Slack API.
func TestCoffeeCommandEndToEnd(t *testing.T) {
	s := startStack(t, map[string]string{"COFFEE_LAST_CALL": "7m"})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	sent := time.Now().UTC()
	status, body := slash(t, s, "U0ALICE", "C0COFFEE", "")
	if status != http.StatusOK {
		t.Fatalf("ingress answered %d %s", status, body)
	}
	var ack struct{ ResponseType, Text string }
	if err := json.Unmarshal([]byte(body), &ack); err != nil || ack.Text == "" {
		t.Fatalf("ack is not a Slack command response: %q (%v)", body, err)
	}
	// The trigger_id is used while it is valid: the order modal opens.
	views, err := s.Slack.WaitForCalls(ctx, "views.open", 1)
	if err != nil {
		t.Fatalf("views.open never called: %v", err)
	}
	if got := views[0].Params["trigger_id"]; !strings.HasSuffix(got, "U0ALICE") {
		t.Errorf("views.open trigger_id = %q", got)
	}
	posts, err := s.Slack.WaitForCalls(ctx, "chat.postMessage", 1)
	if err != nil {
		t.Fatalf("run message never posted: %v", err)
	}
	if ch := posts[0].Params["channel"]; ch != "C0COFFEE" {
		t.Errorf("run message posted to %q, want C0COFFEE", ch)
	}
	var decoded any // blocks arrive JSON-escaped (\u003c); compare the text
	if err := json.Unmarshal([]byte(posts[0].Params["blocks"]), &decoded); err != nil {
		t.Fatalf("blocks are not JSON: %v", err)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(decoded); err != nil {
		t.Fatal(err)
	}
	plainBlocks := buf.Bytes()
	for _, want := range []string{"order_add", "order_usual", "run_volunteer", "<@U0ALICE>", "<!date^"} {
		if !bytes.Contains(plainBlocks, []byte(want)) {
			t.Errorf("run message blocks lack %q: %s", want, posts[0].Params["blocks"])
		}
	}
	msgs := s.Slack.Messages("C0COFFEE")
	if len(msgs) != 1 {
		t.Fatalf("channel has %d messages, want 1", len(msgs))
	}

	// The database holds exactly the run, its audit rows and its published
	// outbox event.
	db := openDB(t, s.DatabaseURL)
	var (
		runID, team, channel, initiator, runStatus, msgTS string
		createdAt, lastCall                               time.Time
	)
	// Wait for run-announce's commit (it follows the post).
	deadline := time.Now().Add(10 * time.Second)
	for {
		err = db.QueryRow(ctx, `SELECT id::text, team_id, channel_id, initiator_user_id, status, created_at, last_call_at, coalesce(slack_message_ts,'')
			FROM coffee_runs`).Scan(&runID, &team, &channel, &initiator, &runStatus, &createdAt, &lastCall, &msgTS)
		if err != nil {
			t.Fatal(err)
		}
		if msgTS != "" || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if team != "T0001" || channel != "C0COFFEE" || initiator != "U0ALICE" || runStatus != "active" {
		t.Errorf("run row = %s %s %s %s", team, channel, initiator, runStatus)
	}
	if d := createdAt.Sub(sent); d < -2*time.Second || d > 30*time.Second {
		t.Errorf("created_at %v is not near the command time %v", createdAt, sent)
	}
	if got := lastCall.Sub(createdAt); got != 7*time.Minute {
		t.Errorf("last call %v after creation, want COFFEE_LAST_CALL=7m", got)
	}
	if msgTS != msgs[0].TS {
		t.Errorf("slack_message_ts = %q, posted ts = %q", msgTS, msgs[0].TS)
	}
	var audits []string
	rows, err := db.Query(ctx, `SELECT event_type FROM audit_logs WHERE run_id = $1 ORDER BY id`, runID)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var e string
		rows.Scan(&e)
		audits = append(audits, e)
	}
	if strings.Join(audits, ",") != "run_created,run_announced" {
		t.Errorf("audit rows = %v, want run_created,run_announced", audits)
	}
	var outboxType, createdJSON string
	var published bool
	if err := db.QueryRow(ctx, `SELECT ce_type, data->>'created_at', published_at IS NOT NULL FROM outbox WHERE partition_key = $1 AND ce_type = 'com.coffeebuddy.run.created'`,
		runID).Scan(&outboxType, &createdJSON, &published); err != nil {
		t.Fatal(err)
	}
	if outboxType != "com.coffeebuddy.run.created" || !published {
		t.Errorf("outbox row = %s published=%v", outboxType, published)
	}
	if !strings.HasSuffix(createdJSON, "Z") {
		t.Errorf("run.created carries created_at %q, want UTC", createdJSON)
	}

	// A second /coffee in the same channel joins the active run: the modal
	// opens, no second run, no second post.
	if status, body := slash(t, s, "U0BOB", "C0COFFEE", "15"); status != http.StatusOK {
		t.Fatalf("second command: %d %s", status, body)
	}
	if _, err := s.Slack.WaitForCalls(ctx, "views.open", 2); err != nil {
		t.Fatal(err)
	}
	waitProcessed(t, db, "run-start", 2)
	var runs int
	db.QueryRow(ctx, `SELECT count(*) FROM coffee_runs`).Scan(&runs)
	if runs != 1 {
		t.Errorf("%d runs after a second /coffee, want 1", runs)
	}
	if n := len(s.Slack.Calls("chat.postMessage")); n != 1 {
		t.Errorf("%d chat.postMessage calls, want 1", n)
	}
	// bob is told whose run his form is for, and that his 15 did not apply.
	if e := s.Slack.Ephemerals("U0BOB"); len(e) != 1 || !strings.Contains(e[0].Text, "<@U0ALICE>'s coffee run") ||
		!strings.Contains(e[0].Text, "only applies when starting a new run") {
		t.Errorf("answers to bob: %+v", e)
	}
}

// A killed function keeps its address: the stack holds the socket, so a
// request sent while the process is down waits in the backlog and is
// answered by the restarted process, and no other process can take the port.
func TestKilledFunctionRestartsOnItsSocket(t *testing.T) {
	s := startStack(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := s.KillFunction(devstack.IngressName); err != nil {
		t.Fatal(err)
	}
	answered := make(chan int, 1)
	go func() {
		status, _, err := trySlash(s, "U0ALICE", "C0KILL", "")
		if err != nil {
			t.Errorf("/coffee while the ingress was down: %v", err)
		}
		answered <- status
	}()
	select {
	case status := <-answered:
		t.Fatalf("answered %d while the ingress was down", status)
	case <-time.After(300 * time.Millisecond):
	}
	if err := s.StartFunction(ctx, devstack.IngressName); err != nil {
		t.Fatal(err)
	}
	select {
	case status := <-answered:
		if status != http.StatusOK {
			t.Fatalf("queued /coffee answered %d after the restart, want 200", status)
		}
	case <-ctx.Done():
		t.Fatal("queued /coffee never answered after the restart")
	}
	if _, err := s.Slack.WaitForCalls(ctx, "chat.postMessage", 1); err != nil {
		t.Fatalf("the queued /coffee was not carried through: %v", err)
	}
}
