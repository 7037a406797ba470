package events

import (
	"os"
	"strings"
	"testing"
)

// TestReadmeCatalogMatchesCode keeps README.md's event catalog true: every
// type in Catalog has a row naming its producer, topic and consumer, and the
// README names no type the code does not know.
func TestReadmeCatalogMatchesCode(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string][]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "| `com.coffeebuddy.") {
			continue
		}
		var cells []string
		for _, c := range strings.Split(strings.Trim(line, "|"), "|") {
			cells = append(cells, strings.Trim(strings.TrimSpace(c), "`"))
		}
		rows[cells[0]] = cells
	}
	for _, s := range Catalog {
		row, ok := rows[s.Type]
		if !ok {
			t.Errorf("README.md event catalog lacks %s", s.Type)
			continue
		}
		if row[1] != s.Producer || row[2] != s.Topic || row[4] != s.Consumer {
			t.Errorf("README row for %s = %v; code says producer %q topic %q consumer %q", s.Type, row, s.Producer, s.Topic, s.Consumer)
		}
		delete(rows, s.Type)
	}
	for typ := range rows {
		t.Errorf("README.md lists %s, which shared/events does not define", typ)
	}
}

func TestCatalogTopicsExist(t *testing.T) {
	known := map[string]bool{}
	for _, tp := range Topics {
		wantRetention := 7 * 24.0
		if tp.Name == TopicTimers { // a timer is worthless a day on
			wantRetention = 24
		}
		if tp.Partitions != 3 || tp.ReplicationFactor != 2 || tp.Retention.Hours() != wantRetention {
			t.Errorf("topic %s: %d partitions, rf %d, retention %s", tp.Name, tp.Partitions, tp.ReplicationFactor, tp.Retention)
		}
		known[tp.Name] = true
	}
	for _, s := range Catalog {
		if !known[s.Topic] {
			t.Errorf("%s travels on %s, which is not in Topics", s.Type, s.Topic)
		}
		if got, err := TopicFor(s.Type); err != nil || got != s.Topic {
			t.Errorf("TopicFor(%s) = %q, %v", s.Type, got, err)
		}
	}
	if _, err := TopicFor("com.example.nope"); err == nil {
		t.Error("TopicFor accepted an unknown type")
	}
	if c := (Topic{Name: "x", Compacted: true, Retention: 1e9}).Configs(); *c["cleanup.policy"] != "compact" || *c["retention.ms"] != "1000" {
		t.Errorf("Configs = %v", c)
	}
}
