package main

import "testing"

func TestRoutes(t *testing.T) {
	rs := routes{}
	for _, v := range []string{"run-start=http://127.0.0.1:8081", "Service/run-announce=http://127.0.0.1:8082/"} {
		if err := rs.Set(v); err != nil {
			t.Fatalf("Set(%q): %v", v, err)
		}
	}
	for _, bad := range []string{"run-start", "=http://x", "x=", "x=not a url", "x=/relative"} {
		if err := rs.Set(bad); err == nil {
			t.Errorf("Set(%q) accepted", bad)
		}
	}
	if u, err := rs.resolve("Service", "run-start"); err != nil || u != "http://127.0.0.1:8081" {
		t.Errorf("resolve run-start = %q, %v", u, err)
	}
	if u, err := rs.resolve("Service", "run-announce"); err != nil || u != "http://127.0.0.1:8082/" {
		t.Errorf("resolve Service/run-announce = %q, %v", u, err)
	}
	if _, err := rs.resolve("Service", "outbox-sweep"); err == nil {
		t.Error("resolve of an unrouted service succeeded")
	}
}
