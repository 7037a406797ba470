// Command gen writes the parts of the Helm chart deploy/helm/coffeebuddy that
// another file of this repository already says, so the chart and its sources
// cannot drift (docs/adr/0016-helm-chart.md). `make chart` runs it:
//
//	cd deploy/helm/gen && GOWORK=off go run . [-root ../../..] [-out DIR] [-helm PATH] [-knative=false]
//
// From the repository it reads, and into the chart (or -out) it writes:
//
//   - eventing/*.yaml → templates/eventing/*.yaml: the manifests the local
//     stand-in reads, with the namespace, the Kafka bootstrap servers, the
//     KafkaSource consumer group and the Broker's config made values;
//   - shared/events.Topics → templates/kafka-topics.yaml: Strimzi KafkaTopics;
//   - functions/*/{main.go,func.yaml} → files/functions.yaml: per-function
//     facts from code (Needs, HTTP or CloudEvents, what else it reads) that
//     the one Service template turns into env, Vault secrets and roles;
//   - deploy/kong/kong.yaml → files/kong/kong.yaml (decK sync Job), and
//     deploy/kong/admin-networkpolicy.yaml → templates/kong-admin-networkpolicy.yaml;
//   - deploy/postgres/roles.sql → files/postgres/roles.sql, when it exists;
//   - deploy/observability/*.{yaml,yml,json} → files/observability/, when
//     the folder exists;
//   - .ko.yaml (repository root): one stripped, static ko build per function
//     and for the migrate command.
//
// Then, unless -knative=false, it renders the chart's Services with Helm
// (default values, ko:// images) into deploy/knative/service-<name>.yaml, one
// object per file, for the tools that read them (deploy/validate, the Kong
// route check, `ko resolve -f deploy/knative/`), and the chart's other pods
// that log in to Vault (every optional part on) into
// deploy/vault/workloads/, for deploy/vault's policy and role generator.
//
// With -out, the chart's hand-written files are copied there first, so a
// test can regenerate everything into a temporary folder and compare.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
)

func main() {
	root := flag.String("root", "../../..", "repository root")
	out := flag.String("out", "", "write here instead of into the repository (a copy of the chart is made first)")
	helm := flag.String("helm", "", "helm binary (default $HELM_BIN, else <root>/.tmp/bin/helm)")
	knative := flag.Bool("knative", true, "also render deploy/knative/service-*.yaml and deploy/vault/workloads/*.yaml with helm")
	obs := flag.String("observability", "", "read the monitoring objects here instead of <root>/deploy/observability (tests)")
	roles := flag.String("roles", "", "read the roles script here instead of <root>/deploy/postgres/roles.sql (tests)")
	flag.Parse()
	if err := run(*root, *out, *helm, *obs, *roles, *knative); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(root, out, helm, obs, roles string, knative bool) error {
	root, err := filepath.Abs(root)
	if err != nil {
		return err
	}
	if out == "" {
		out = root
	} else if out, err = filepath.Abs(out); err != nil {
		return err
	}
	if helm == "" {
		helm = os.Getenv("HELM_BIN")
	}
	if helm == "" {
		helm = filepath.Join(root, ".tmp", "bin", "helm")
	}
	g := &Generator{Root: root, Out: out, ObservabilityDir: obs, RolesFile: roles}
	if out != root {
		if err := copyTree(filepath.Join(root, ChartDir), filepath.Join(out, ChartDir)); err != nil {
			return err
		}
	}
	if err := g.Chart(); err != nil {
		return err
	}
	if knative {
		if err := g.Knative(helm); err != nil {
			return err
		}
		return g.VaultWorkloads(helm)
	}
	return nil
}
