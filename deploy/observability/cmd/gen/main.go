// Command gen writes the generated observability files from their sources:
// prometheus/prometheusrule.yaml from prometheus/rules.yml, and
// grafana/coffeebuddy.json from dashboard.go. Run from deploy/observability
// (go generate ./...).
package main

import (
	"fmt"
	"os"

	"github.com/coffeebuddy/coffeebuddy/deploy/observability"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run() error {
	rf, err := observability.LoadRules(observability.RulesFile)
	if err != nil {
		return err
	}
	pr, err := observability.PrometheusRule(rf)
	if err != nil {
		return err
	}
	if err := os.WriteFile(observability.PrometheusRuleFile, pr, 0o644); err != nil {
		return err
	}
	d, err := observability.Dashboard()
	if err != nil {
		return err
	}
	return os.WriteFile(observability.DashboardFile, d, 0o644)
}
