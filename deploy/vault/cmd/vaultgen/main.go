// Command vaultgen writes deploy/vault/policies/*.hcl and roles/*.json from
// the Knative Services' Vault annotations (see package vault). Run it from
// deploy/vault: `GOWORK=off go generate`. Files of functions that no longer
// use Vault are removed.
package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/coffeebuddy/coffeebuddy/deploy/vault"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(log); err != nil {
		log.Error("vaultgen", "err", err)
		os.Exit(1)
	}
}

func run(log *slog.Logger) error {
	services, err := vault.LoadServices(filepath.Join("..", ".."))
	if err != nil {
		return err
	}
	files, err := vault.Generate(services)
	if err != nil {
		return err
	}
	for _, dir := range vault.Generated {
		old, err := filepath.Glob(filepath.Join(dir, "*"))
		if err != nil {
			return err
		}
		for _, f := range old {
			if _, keep := files[filepath.ToSlash(f)]; !keep {
				if err := os.Remove(f); err != nil {
					return err
				}
				log.Info("removed", "file", f)
			}
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.FromSlash(name), b, 0o644); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	log.Info("generated", "files", len(files))
	return nil
}
