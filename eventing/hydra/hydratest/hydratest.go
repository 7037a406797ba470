// Package hydratest gives tests the Hydra binary, under one rule: Hydra
// tests run only with HYDRA_E2E=1 (make hydra-e2e, which CI runs after make
// test; ADR 0014), whether or not a binary happens to be cached, so make
// test's duration does not depend on it; with HYDRA_E2E=1 a missing binary
// fails the test.
package hydratest

import (
	"os"
	"testing"

	"github.com/coffeebuddy/coffeebuddy/eventing/hydra"
)

// Bin is the Hydra binary (hydra.FindBin; root is the repository root
// relative to the test's folder), or skips t without HYDRA_E2E=1.
func Bin(t testing.TB, root string) string {
	t.Helper()
	if os.Getenv("HYDRA_E2E") == "" {
		t.Skip("Hydra tests run with HYDRA_E2E=1: make hydra-e2e")
	}
	b, err := hydra.FindBin(os.Getenv, root)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
