package observability

import (
	"bytes"
	"encoding/json"
)

// The Grafana dashboard (uid coffeebuddy) is written by Dashboard from the
// panel list below (`go generate` writes grafana/coffeebuddy.json; a test
// fails when the file differs), so its layout, datasource and ids stay
// consistent however many panels it grows. Every expression names only
// metrics the functions export or rules.yml records (tests).

// DashboardUID is the dashboard's uid: alerts link to /d/coffeebuddy.
const DashboardUID = "coffeebuddy"

// query is one PromQL expression of a panel and its legend.
type query struct {
	Expr   string
	Legend string
}

// panel is a time series or stat panel, or a row (Row set).
type panel struct {
	Row         string
	Title       string
	Description string
	Kind        string // timeseries (default) or stat
	Unit        string // Grafana unit: s, percentunit, short, reqps …
	Width       int    // of 24; default 12
	Queries     []query
	// Thresholds, for stats: the value from which it turns red.
	Red *float64
}

func ptr(f float64) *float64 { return &f }

// Grafana substitutes these; the tests replace them before parsing.
const (
	rate5  = "$__rate_interval"
	fnSel  = `function=~"$function"`
	budget = "0.001" // the slash-command SLO's error budget (99.9 %)
)

// panels is the dashboard, top to bottom.
var panels = []panel{
	{Row: "Slash commands (slack-ingress): what a person in Slack waits for"},
	{Title: "Command latency p50 / p95 / p99", Unit: "s", Width: 8,
		Description: "Time slack-ingress takes to answer a slash command (signature check, Kafka produce before the ack, history lookups). Slack gives up after 3 s; the SLO is 99.9 % answered, done, within 3 s.",
		Queries: []query{
			{`histogram_quantile(0.50, sum by (le) (rate(slack_ingress_request_duration_seconds_bucket{endpoint="commands",outcome!="rejected"}[` + rate5 + `])))`, "p50"},
			{`histogram_quantile(0.95, sum by (le) (rate(slack_ingress_request_duration_seconds_bucket{endpoint="commands",outcome!="rejected"}[` + rate5 + `])))`, "p95"},
			{`histogram_quantile(0.99, sum by (le) (rate(slack_ingress_request_duration_seconds_bucket{endpoint="commands",outcome!="rejected"}[` + rate5 + `])))`, "p99"},
		}},
	{Title: "Slack requests by endpoint and outcome", Unit: "reqps", Width: 8,
		Description: "ok: done; failed: not done through our fault (Kafka or the database), answered with an apology; rejected: not a signed Slack request.",
		Queries: []query{
			{`sum by (endpoint, outcome) (rate(slack_ingress_request_duration_seconds_count[` + rate5 + `]))`, "{{endpoint}} {{outcome}}"},
		}},
	{Title: "SLO burn rate (1 = spending the 30-day budget exactly)", Unit: "short", Width: 8,
		Description: "Error ratio of the slash-command SLO divided by its budget (0.1 %). CoffeeBuddyIngressErrorBudgetBurn pages at 14.4 over 1 h (and 5 m) or 6 over 6 h (and 30 m).",
		Queries: []query{
			{`coffeebuddy:slack_ingress_slo_errors:ratio_rate5m / ` + budget, "5m"},
			{`coffeebuddy:slack_ingress_slo_errors:ratio_rate1h / ` + budget, "1h"},
			{`coffeebuddy:slack_ingress_slo_errors:ratio_rate6h / ` + budget, "6h"},
			{`coffeebuddy:slack_ingress_slo_errors:ratio_rate3d / ` + budget, "3d"},
		}},
	{Title: "Kafka produce before the ack, p95", Unit: "s", Width: 8,
		Description: "The durable hand-off (acks=all) slack-ingress waits for before answering Slack.",
		Queries: []query{
			{`histogram_quantile(0.95, sum by (le) (rate(slack_ingress_produce_seconds_bucket[` + rate5 + `])))`, "p95"},
		}},

	{Row: "Coffee runs"},
	{Title: "Order volume (orders per hour)", Unit: "short", Width: 8,
		Description: "Orders placed (order form and My usual) that order-place and order-usual handled, per hour.",
		Queries: []query{
			{`3600 * sum(rate(coffeebuddy_events_total{function=~"order-place|order-usual",outcome="ok"}[` + rate5 + `]))`, "orders/h"},
			{`3600 * sum(rate(coffeebuddy_events_total{function="run-start",outcome="ok"}[` + rate5 + `]))`, "runs started/h"},
		}},
	{Title: "Error rate %", Kind: "stat", Unit: "percentunit", Width: 4, Red: ptr(0.01),
		Description: "Share of all CloudEvents answered retry, permanent or unavailable (Slack's 429s are not errors). CoffeeBuddyHighErrorRate fires per function above 1 % for 5 minutes.",
		Queries: []query{
			{`sum(rate(coffeebuddy_events_total{outcome=~"retry|permanent|unavailable"}[` + rate5 + `])) / sum(rate(coffeebuddy_events_total[` + rate5 + `]))`, "errors"},
		}},
	{Title: "Runs past last call", Unit: "short", Width: 6,
		Description: "Active runs whose last call has passed, and how long past it the oldest is (s). run-timer closes at last call, run-tick within the minute; CoffeeBuddyRunStuckPastLastCall pages after 5 minutes.",
		Queries: []query{
			{`max(coffeebuddy_runs_past_last_call)`, "runs"},
			{`max(coffeebuddy_runs_oldest_past_last_call_seconds)`, "oldest (s)"},
		}},
	{Title: "Runner fairness (std dev of completed runs)", Unit: "short", Width: 6,
		Description: "Standard deviation of completed runs among the candidates of the latest runner assignment.",
		Queries: []query{
			{`max by (function) (coffeebuddy_runner_fairness_stddev)`, "{{function}}"},
		}},

	{Row: "Functions, per function and event type"},
	{Title: "Event rate", Unit: "ops", Width: 12,
		Description: "CloudEvents handled per second, by function and type.",
		Queries: []query{
			{`sum by (function, type) (rate(coffeebuddy_events_total{` + fnSel + `}[` + rate5 + `]))`, "{{function}} {{type}}"},
		}},
	{Title: "Error rate by function", Unit: "percentunit", Width: 12,
		Description: "The ratio CoffeeBuddyHighErrorRate alerts on (recording rule coffeebuddy:events_errors:ratio_rate5m).",
		Queries: []query{
			{`coffeebuddy:events_errors:ratio_rate5m{` + fnSel + `}`, "{{function}}"},
		}},
	{Title: "Handle time p95 (one delivery attempt)", Unit: "s", Width: 12,
		Description: "Time from decode to answer inside the function, by function and type.",
		Queries: []query{
			{`histogram_quantile(0.95, sum by (function, type, le) (rate(coffeebuddy_event_handle_seconds_bucket{` + fnSel + `}[` + rate5 + `])))`, "{{function}} {{type}}"},
		}},
	{Title: "Event latency p95 (created → done, retries included)", Unit: "s", Width: 12,
		Description: "From the CloudEvent's time attribute to handled (or failed for good): queueing in Kafka and the broker, and every earlier attempt and backoff.",
		Queries: []query{
			{`histogram_quantile(0.95, sum by (function, type, le) (rate(coffeebuddy_event_latency_seconds_bucket{` + fnSel + `}[` + rate5 + `])))`, "{{function}} {{type}}"},
		}},
	{Title: "Retries", Unit: "ops", Width: 12,
		Description: "Events answered so that the broker retries them (retry: 500/409, unavailable: 503 with a breaker open) and events buffered in slack.retry because Slack rate limited them.",
		Queries: []query{
			{`sum by (function, type, outcome) (rate(coffeebuddy_events_total{outcome=~"retry|unavailable",` + fnSel + `}[` + rate5 + `]))`, "{{function}} {{type}} {{outcome}}"},
			{`sum by (function, method) (rate(slack_dm_retries_total{` + fnSel + `}[` + rate5 + `]))`, "{{function}} slack.retry {{method}}"},
		}},
	{Title: "Dead letters", Unit: "short", Width: 12,
		Description: "Records that reached coffee.deadletter (any writer), and per function what it answered 4xx (permanent, rejected) or quarantined. Runbook: docs/runbooks/dead-letters.md.",
		Queries: []query{
			{`max by (topic) (delta(coffeebuddy_kafka_topic_end_offsets{topic="coffee.deadletter"}[1h]))`, "coffee.deadletter, last hour"},
			{`sum by (function, type) (increase(coffeebuddy_events_total{outcome="permanent",` + fnSel + `}[1h]))`, "{{function}} {{type}} permanent"},
			{`sum by (function, reason) (increase(coffeebuddy_events_rejected_total{` + fnSel + `}[1h]))`, "{{function}} rejected {{reason}}"},
			{`sum by (topic) (increase(coffeebuddy_records_quarantined_total[1h]))`, "quarantined from {{topic}}"},
		}},
	{Title: "Circuit breakers (0 closed, 1 half-open, 2 open)", Unit: "short", Width: 12,
		Description: "Per function and downstream. CoffeeBuddyBreakerOpen pages when one has not closed for 2 minutes.",
		Queries: []query{
			{`max by (function, downstream) (coffeebuddy_breaker_state{` + fnSel + `})`, "{{function}} {{downstream}}"},
		}},
	{Title: "Breaker openings", Unit: "short", Width: 12,
		Description: "Transitions to open in the last 15 minutes; more than a few means a flapping downstream.",
		Queries: []query{
			{`sum by (function, downstream) (increase(coffeebuddy_breaker_transitions_total{to="open",` + fnSel + `}[15m]))`, "{{function}} {{downstream}}"},
		}},

	{Row: "Slack"},
	{Title: "Slack 429s by method", Unit: "reqps", Width: 8,
		Description: "Slack Web API calls answered 429 (rate limited). Handled: the event waits in slack.retry.",
		Queries: []query{
			{`sum by (method) (rate(slack_api_rate_limited_total[` + rate5 + `]))`, "{{method}}"},
		}},
	{Title: "Slack retry backlog", Unit: "short", Width: 8,
		Description: "Records waiting behind the slack-retry Trigger (its consumer group's lag). CoffeeBuddySlackRetryBacklogGrowing fires when it has not emptied for 15 minutes and grew.",
		Queries: []query{
			{`coffeebuddy:slack_retry_backlog:sum`, "backlog"},
		}},
	{Title: "Slack refusals by method and error", Unit: "short", Width: 8,
		Description: "Calls Slack refused for good (ok:false, expired response_url …) in the last hour: logged and never retried.",
		Queries: []query{
			{`sum by (method, error) (increase(slack_api_errors_total[1h]))`, "{{method}} {{error}}"},
		}},

	{Row: "Outbox and Kafka"},
	{Title: "Outbox backlog", Unit: "short", Width: 8,
		Description: "Outbox rows not yet published to Kafka (normally 0 within a second of commit).",
		Queries: []query{
			{`max(coffeebuddy_outbox_unpublished)`, "unpublished"},
		}},
	{Title: "Oldest unpublished outbox row", Unit: "s", Width: 8,
		Description: "Age of the oldest unpublished row. CoffeeBuddyOutboxBacklog pages above 5 minutes.",
		Queries: []query{
			{`max(coffeebuddy_outbox_oldest_unpublished_age_seconds)`, "age"},
		}},
	{Title: "Consumer lag by group", Unit: "short", Width: 8,
		Description: "Records not yet delivered, per consumer group (a Trigger's: knative-trigger-coffeebuddy-<trigger>; locally coffeebuddy-source.<trigger>) and topic.",
		Queries: []query{
			{`max by (group, topic) (coffeebuddy_kafka_consumer_group_lag)`, "{{group}} {{topic}}"},
		}},
	{Title: "Records written per topic", Unit: "short", Width: 12,
		Description: "Records per second written to each catalog topic (from the topics' end offsets).",
		Queries: []query{
			{`max by (topic) (deriv(coffeebuddy_kafka_topic_end_offsets[5m]))`, "{{topic}}"},
		}},
	{Title: "Firing alerts", Unit: "short", Width: 12,
		Description: "CoffeeBuddy alerts firing now, by name and severity (rules: deploy/observability/prometheus/rules.yml).",
		Queries: []query{
			{`sum by (alertname, severity) (ALERTS{alertstate="firing",alertname=~"CoffeeBuddy.*"})`, "{{alertname}} ({{severity}})"},
		}},
}

// Dashboard returns the dashboard's JSON, indented, with a final newline.
func Dashboard() ([]byte, error) {
	ds := map[string]any{"type": "prometheus", "uid": "${datasource}"}
	var out []any
	x, y, rowH := 0, 0, 0
	for i, p := range panels {
		id := i + 1
		if p.Row != "" {
			if x > 0 {
				y += rowH
			}
			x, rowH = 0, 0
			out = append(out, map[string]any{
				"type": "row", "id": id, "title": p.Row, "collapsed": false, "panels": []any{},
				"gridPos": map[string]int{"h": 1, "w": 24, "x": 0, "y": y},
			})
			y++
			continue
		}
		w := p.Width
		if w == 0 {
			w = 12
		}
		h := 8
		if x+w > 24 {
			x, y = 0, y+rowH
			rowH = 0
		}
		var targets []any
		for j, q := range p.Queries {
			targets = append(targets, map[string]any{
				"refId": string(rune('A' + j)), "datasource": ds, "expr": q.Expr, "legendFormat": q.Legend, "range": true,
			})
		}
		kind := p.Kind
		if kind == "" {
			kind = "timeseries"
		}
		defaults := map[string]any{"unit": p.Unit}
		options := map[string]any{
			"legend":  map[string]any{"displayMode": "table", "placement": "bottom", "showLegend": true, "calcs": []string{"lastNotNull", "max"}},
			"tooltip": map[string]any{"mode": "multi", "sort": "desc"},
		}
		if kind == "stat" {
			options = map[string]any{"reduceOptions": map[string]any{"calcs": []string{"lastNotNull"}, "fields": "", "values": false},
				"colorMode": "background", "graphMode": "area", "textMode": "auto"}
		}
		if p.Red != nil {
			defaults["thresholds"] = map[string]any{"mode": "absolute", "steps": []any{
				map[string]any{"color": "green", "value": nil},
				map[string]any{"color": "red", "value": *p.Red},
			}}
		}
		out = append(out, map[string]any{
			"type": kind, "id": id, "title": p.Title, "description": p.Description, "datasource": ds,
			"gridPos":     map[string]int{"h": h, "w": w, "x": x, "y": y},
			"fieldConfig": map[string]any{"defaults": defaults, "overrides": []any{}},
			"options":     options,
			"targets":     targets,
		})
		x += w
		rowH = max(rowH, h)
		if x >= 24 {
			x, y, rowH = 0, y+rowH, 0
		}
	}
	d := map[string]any{
		"uid": DashboardUID, "title": "CoffeeBuddy", "tags": []string{"coffeebuddy"},
		"description":   "CoffeeBuddy: slash commands, coffee runs, functions, Slack, outbox and Kafka. Generated by deploy/observability (go generate); do not edit by hand.",
		"timezone":      "browser",
		"schemaVersion": 39,
		"version":       1,
		"editable":      true,
		"graphTooltip":  1,
		"refresh":       "30s",
		"time":          map[string]string{"from": "now-6h", "to": "now"},
		"annotations":   map[string]any{"list": []any{}},
		"links":         []any{},
		"templating": map[string]any{"list": []any{
			map[string]any{"type": "datasource", "name": "datasource", "label": "Prometheus", "query": "prometheus",
				"current": map[string]any{}, "hide": 0, "refresh": 1},
			map[string]any{"type": "query", "name": "function", "label": "Function", "datasource": ds,
				"query":      map[string]any{"query": "label_values(coffeebuddy_events_total, function)", "refId": "function"},
				"definition": "label_values(coffeebuddy_events_total, function)",
				"includeAll": true, "multi": true, "allValue": ".*", "refresh": 2, "sort": 1,
				"current": map[string]any{"selected": true, "text": []string{"All"}, "value": []string{"$__all"}}},
		}},
		"panels": out,
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(d); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
