package slackstandin_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestNoFunctionLinksTheStandIn keeps the stand-in a dev tool (DESIGN §7):
// no function's binary may depend on it, directly or through another
// package. It lists each function's dependencies with the go command, as
// `go list -deps ./functions/<name>` does, through the repository's
// go.work. (Tests and the ingress's bench harness may use it: neither is
// in a function's binary.)
func TestNoFunctionLinksTheStandIn(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	yamls, err := filepath.Glob(filepath.Join(root, "functions", "*", "func.yaml"))
	if err != nil || len(yamls) == 0 {
		t.Fatalf("no functions/*/func.yaml under %s: %v", root, err)
	}
	args := []string{"list", "-f", "{{.ImportPath}}{{range .Deps}} {{.}}{{end}}"}
	for _, y := range yamls {
		args = append(args, "./functions/"+filepath.Base(filepath.Dir(y)))
	}
	cmd := exec.CommandContext(t.Context(), "go", args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOWORK="+filepath.Join(root, "go.work"), "GOFLAGS=")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, err.(*exec.ExitError).Stderr)
	}
	const standin = "github.com/coffeebuddy/coffeebuddy/shared/slackstandin"
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(yamls) {
		t.Fatalf("go list listed %d packages for %d functions:\n%s", len(lines), len(yamls), out)
	}
	for _, line := range lines {
		fn, deps, _ := strings.Cut(line, " ")
		if !strings.Contains(deps, "github.com/coffeebuddy/coffeebuddy/shared/function") {
			t.Errorf("%s: the dependency list lacks the function runtime; is go list listing deps? %.200s", fn, deps)
		}
		for _, d := range strings.Fields(deps) {
			if d == standin || strings.HasPrefix(d, standin+"/") {
				t.Errorf("%s links %s: the Slack stand-in is a dev tool, keep it out of function binaries", fn, d)
			}
		}
	}
}
