//go:build ignore

// binstrings writes the printable strings of built binaries as text files,
// for .ci/secret-scan: gitleaks skips binary files, so a secret compiled
// into a function would go unseen. Runs of at least 8 printable ASCII bytes
// are kept (as strings(1) does); a run already written for an earlier
// binary is not repeated (the functions share most of their code), so each
// is scanned once and reported under the first binary that holds it.
//
//	GOWORK=off go run .ci/binstrings.go OUTDIR BINARY...
package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
)

const minRun = 8

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: go run .ci/binstrings.go OUTDIR BINARY...")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2:]); err != nil {
		fmt.Fprintln(os.Stderr, "binstrings:", err)
		os.Exit(1)
	}
}

func run(outDir string, bins []string) error {
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return err
	}
	seen := map[string]bool{}
	var total, kept int
	for _, bin := range bins {
		b, err := os.ReadFile(bin)
		if err != nil {
			return err
		}
		f, err := os.Create(filepath.Join(outDir, filepath.Base(bin)+".strings"))
		if err != nil {
			return err
		}
		w := bufio.NewWriter(f)
		start := -1
		flush := func(end int) {
			if start >= 0 && end-start >= minRun {
				total++
				if s := string(b[start:end]); !seen[s] {
					seen[s] = true
					kept++
					w.WriteString(s)
					w.WriteByte('\n')
				}
			}
			start = -1
		}
		for i, c := range b {
			if c == '\t' || (c >= 0x20 && c < 0x7f) {
				if start < 0 {
					start = i
				}
				continue
			}
			flush(i)
		}
		flush(len(b))
		if err := w.Flush(); err != nil {
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "binstrings: %d binaries, %d strings, %d distinct\n", len(bins), total, kept)
	return nil
}
