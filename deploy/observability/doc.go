// Package observability holds the sources of CoffeeBuddy's dashboards,
// alerts and log shipping (the Helm chart packages these files) and the
// tests that keep them honest: every PromQL expression parses with
// Prometheus's own parser, every metric they name is exported by a
// function of the running local stack, every alert has a runbook, the
// generated files match their sources, and the Fluent Bit parser reads the
// functions' real log lines.
//
// It is its own Go module so that no function links Prometheus's packages.
//
// Generated files (go generate ./... here):
//   - prometheus/prometheusrule.yaml from prometheus/rules.yml
//   - grafana/coffeebuddy.json from the panel list in dashboard.go
package observability

//go:generate go run ./cmd/gen
