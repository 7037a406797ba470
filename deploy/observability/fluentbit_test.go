package observability

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

const (
	fluentBitConf = "fluent-bit/fluent-bit.conf"
	ilmPolicy     = "elasticsearch/ilm-policy.json"
	indexTemplate = "elasticsearch/index-template.json"
	applyScript   = "elasticsearch/apply.sh"
	// functionLogs are log lines the functions wrote during a devstack
	// coffee run (TestLocalStack rewrites it with COFFEEBUDDY_UPDATE_TESTDATA=1).
	functionLogs = "testdata/function-logs.jsonl"
)

// TestFluentBitTime: the Time_Format reads what log/slog writes, in every
// shape it takes (UTC or an offset, trailing zeros trimmed), to the
// nanosecond; a line without a fraction fails under Time_Strict, as it does
// in Fluent Bit.
func TestFluentBitTime(t *testing.T) {
	const format = "%Y-%m-%dT%H:%M:%S.%L%z"
	tests := []struct {
		in   string
		want string // RFC 3339, "" for an error
	}{
		{"2026-12-03T10:04:05.123456789Z", "2026-12-03T10:04:05.123456789Z"},
		{"2026-12-03T11:04:05.123456789+01:00", "2026-12-03T10:04:05.123456789Z"},
		{"2026-12-03T05:34:05.5-0430", "2026-12-03T10:04:05.5Z"},
		{"2026-12-03T10:04:05.12Z", "2026-12-03T10:04:05.12Z"},
		{"2026-12-03T10:04:05Z", ""},
		{"yesterday", ""},
	}
	for _, tt := range tests {
		got, err := FluentBitTime(tt.in, format)
		switch {
		case tt.want == "" && err == nil:
			t.Errorf("%s: parsed as %v, want an error", tt.in, got)
		case tt.want != "" && err != nil:
			t.Errorf("%s: %v", tt.in, err)
		case tt.want != "":
			want, _ := time.Parse(time.RFC3339Nano, tt.want)
			if !got.Equal(want) {
				t.Errorf("%s: %v, want %v", tt.in, got.UTC(), want)
			}
		}
	}
	if _, err := FluentBitTime("03/Dec/2026", "%d/%b/%Y"); err == nil || !strings.Contains(err.Error(), "not emulated") {
		t.Errorf("a directive the emulation lacks must fail loudly, got %v", err)
	}
}

// criWrap writes line as the container runtime does (CRI log format),
// split into partial lines when long, as containerd splits at 16 KiB.
func criWrap(line string, at time.Time, max int) []string {
	ts := at.UTC().Format(time.RFC3339Nano)
	var out []string
	for len(line) > max {
		out = append(out, ts+" stdout P "+line[:max])
		line = line[max:]
	}
	return append(out, ts+" stdout F "+line)
}

// shipped runs lines (the functions' stdout) through the configuration as
// the DaemonSet would, and checks what would reach Elasticsearch.
func shipped(t *testing.T, lines []string) int {
	t.Helper()
	p, err := LoadPipeline(fluentBitConf)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for i, line := range lines {
		var orig map[string]any
		if err := json.Unmarshal([]byte(line), &orig); err != nil {
			t.Fatalf("line %d is not JSON: %q", i, line)
		}
		recs, err := CRI(criWrap(line, time.Now(), 200))
		if err != nil || len(recs) != 1 {
			t.Fatalf("line %d: CRI gave %d records, %v", i, len(recs), err)
		}
		rec, err := p.Apply(recs[0])
		if err != nil {
			t.Errorf("line %d does not parse: %v\n%s", i, err, line)
			continue
		}
		want, err := time.Parse(time.RFC3339Nano, orig["time"].(string))
		if err != nil {
			t.Fatal(err)
		}
		if !rec.Time.Equal(want) {
			t.Errorf("line %d: timestamp %v, want the line's own time %v", i, rec.Time, want)
		}
		if _, ok := rec.Fields["log"]; ok {
			t.Errorf("line %d: the raw log key is still there", i)
		}
		if rec.Fields["stream"] != "stdout" {
			t.Errorf("line %d: stream %v not kept beside the parsed fields", i, rec.Fields["stream"])
		}
		switch rec.Fields["level"] {
		case "DEBUG", "INFO", "WARN", "ERROR":
		default:
			t.Errorf("line %d: level %v", i, rec.Fields["level"])
		}
		for _, k := range []string{"time", "msg", "function"} {
			if s, _ := rec.Fields[k].(string); s == "" {
				t.Errorf("line %d: %s missing", i, k)
			}
		}
		for _, k := range []string{"ce_id", "ce_type", "run_id"} {
			if v, ok := orig[k]; ok {
				if rec.Fields[k] != v {
					t.Errorf("line %d: %s = %v, want %v", i, k, rec.Fields[k], v)
				}
				seen[k]++
			}
		}
	}
	for _, k := range []string{"ce_id", "ce_type", "run_id"} {
		if seen[k] == 0 {
			t.Errorf("no line carried %s: the sample does not show it is shipped", k)
		}
	}
	return len(lines)
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			out = append(out, l)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestFluentBitParsesFunctionLogs: log lines the functions really wrote
// (a devstack coffee run, testdata/) parse with the configuration's parser
// settings: the timestamp is the line's own time to the nanosecond, level,
// msg, function, ce_id, ce_type and run_id arrive as fields. This applies
// the configuration in Go (fluentbit.go), not the fluent-bit binary, which
// cannot be installed here; TestLocalStack does the same on every line of
// its own run.
func TestFluentBitParsesFunctionLogs(t *testing.T) {
	n := shipped(t, readLines(t, functionLogs))
	if n < 20 {
		t.Fatalf("only %d lines in %s", n, functionLogs)
	}
}

// TestFluentBitConfig: the DaemonSet's configuration reads the namespace's
// container logs, ships to Elasticsearch over TLS with credentials from
// the environment only, into the daily indices the template and its
// 30-day policy cover.
func TestFluentBitConfig(t *testing.T) {
	p, err := LoadPipeline(fluentBitConf)
	if err != nil {
		t.Fatal(err)
	}
	var in, out *Section
	for i, s := range p.Sections {
		switch {
		case s.Kind == "INPUT" && s.Get("name") == "tail":
			in = &p.Sections[i]
		case s.Kind == "OUTPUT" && s.Get("name") == "es":
			out = &p.Sections[i]
		}
	}
	if in == nil || out == nil {
		t.Fatal("want a tail input and an es output")
	}
	if !strings.Contains(in.Get("path"), "_coffeebuddy_") || in.Get("multiline.parser") != "cri" {
		t.Errorf("tail input: path %q, multiline.parser %q", in.Get("path"), in.Get("multiline.parser"))
	}
	envRef := regexp.MustCompile(`^\$\{[A-Z_]+\}$`)
	for _, k := range []string{"host", "http_user", "http_passwd"} {
		if !envRef.MatchString(out.Get(k)) {
			t.Errorf("es output %s = %q: want an environment reference like ${ELASTICSEARCH_PASSWORD}", k, out.Get(k))
		}
	}
	if !onOff(out.Get("tls")) || !onOff(out.Get("tls.verify")) {
		t.Error("es output without verified TLS")
	}
	if !onOff(out.Get("logstash_format")) || out.Get("logstash_prefix") == "" {
		t.Fatal("es output: want daily Logstash-format indices")
	}
	if len(p.Filters) != 1 || p.Filters[0].Get("key_name") != "log" {
		t.Errorf("want one parser filter on the log key, got %d", len(p.Filters))
	}

	var tmpl struct {
		IndexPatterns []string `json:"index_patterns"`
		Template      struct {
			Settings map[string]any `json:"settings"`
			Mappings struct {
				Properties map[string]struct {
					Type string `json:"type"`
				} `json:"properties"`
			} `json:"mappings"`
		} `json:"template"`
	}
	readJSON(t, indexTemplate, &tmpl)
	if len(tmpl.IndexPatterns) != 1 || tmpl.IndexPatterns[0] != out.Get("logstash_prefix")+"-*" {
		t.Errorf("template patterns %v do not cover the indices %s-YYYY.MM.DD", tmpl.IndexPatterns, out.Get("logstash_prefix"))
	}
	for field, typ := range map[string]string{"time": "date_nanos", "@timestamp": "date_nanos", "level": "keyword",
		"ce_id": "keyword", "ce_type": "keyword", "run_id": "keyword", "function": "keyword"} {
		if got := tmpl.Template.Mappings.Properties[field].Type; got != typ {
			t.Errorf("template maps %s as %q, want %q", field, got, typ)
		}
	}
	policy, _ := tmpl.Template.Settings["index.lifecycle.name"].(string)
	script, err := os.ReadFile(applyScript)
	if err != nil {
		t.Fatal(err)
	}
	for _, put := range []string{"put _ilm/policy/" + policy + " " + filepath.Base(ilmPolicy), "put _index_template/"} {
		if policy == "" || !strings.Contains(string(script), put) {
			t.Errorf("%s does not %q (the template's policy is %q)", applyScript, put, policy)
		}
	}
}

// TestLogRetentionIs30Days: the ILM policy deletes an index 30 days after
// it was created, and nothing deletes sooner.
func TestLogRetentionIs30Days(t *testing.T) {
	var p struct {
		Policy struct {
			Phases map[string]struct {
				MinAge  string                     `json:"min_age"`
				Actions map[string]json.RawMessage `json:"actions"`
			} `json:"phases"`
		} `json:"policy"`
	}
	readJSON(t, ilmPolicy, &p)
	del, ok := p.Policy.Phases["delete"]
	if !ok || del.MinAge != "30d" {
		t.Fatalf("delete phase %+v, want min_age 30d", del)
	}
	if _, ok := del.Actions["delete"]; !ok {
		t.Fatal("the delete phase does not delete")
	}
	for name, ph := range p.Policy.Phases {
		if _, ok := ph.Actions["delete"]; ok && name != "delete" {
			t.Errorf("phase %s deletes too", name)
		}
		if _, ok := ph.Actions["rollover"]; ok {
			t.Errorf("phase %s rolls over, but Fluent Bit writes daily indices without a write alias", name)
		}
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	if err := dec.Decode(v); err != nil {
		t.Fatal(fmt.Errorf("%s: %w", path, err))
	}
}
