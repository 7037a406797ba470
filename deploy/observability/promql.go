package observability

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/prometheus/prometheus/promql/parser"
)

// grafanaVars are the values the tests give Grafana's variables, so that a
// dashboard expression parses as Prometheus will see it.
var grafanaVars = map[string]string{
	"$__rate_interval": "5m",
	"$__interval":      "1m",
	"$__range":         "1h",
	"$function":        ".*",
}

var anyVar = regexp.MustCompile(`\$\{?[A-Za-z_][A-Za-z0-9_]*\}?`)

// Substitute replaces Grafana's variables in expr; it fails on a variable
// it does not know, so a new one is given a value here on purpose.
func Substitute(expr string) (string, error) {
	keys := make([]string, 0, len(grafanaVars))
	for k := range grafanaVars {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return len(keys[i]) > len(keys[j]) }) // $__range before $__r…
	for _, k := range keys {
		expr = strings.ReplaceAll(expr, "${"+k[1:]+"}", grafanaVars[k])
		expr = strings.ReplaceAll(expr, k, grafanaVars[k])
	}
	if v := anyVar.FindString(expr); v != "" {
		return "", fmt.Errorf("unknown Grafana variable %s in %q", v, expr)
	}
	return expr, nil
}

// MetricNames parses expr with Prometheus's own parser and returns the
// metric names its selectors name.
func MetricNames(expr string) ([]string, error) {
	e, err := parser.ParseExpr(expr)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		name := vs.Name
		for _, m := range vs.LabelMatchers {
			if m.Name == "__name__" && m.Type.String() == "=" {
				name = m.Value
			}
		}
		if name != "" {
			seen[name] = true
		}
		return nil
	})
	var out []string
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out, nil
}

// Synthetic are series Prometheus makes itself, not any function.
var Synthetic = map[string]bool{"ALERTS": true, "ALERTS_FOR_STATE": true, "up": true}
