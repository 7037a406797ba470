package vault

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var scripts = []string{"apply.sh", "rotate-slack-secrets.sh"}

// TestScriptsLint runs shellcheck over the operator scripts (.ci/ensure-
// shellcheck installs it when root on Debian), or at least bash -n.
func TestScriptsLint(t *testing.T) {
	for _, s := range scripts {
		if fi, err := os.Stat(s); err != nil || fi.Mode()&0o111 == 0 {
			t.Errorf("%s: missing or not executable", s)
		}
	}
	if sc, err := exec.LookPath("shellcheck"); err == nil {
		out, err := exec.Command(sc, append([]string{"--severity=style"}, scripts...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("shellcheck: %v\n%s", err, out)
		}
		t.Logf("shellcheck: %s clean", strings.Join(scripts, ", "))
		return
	}
	t.Log("shellcheck not installed (bash .ci/ensure-shellcheck): bash -n only")
	for _, s := range scripts {
		if out, err := exec.Command("bash", "-n", s).CombinedOutput(); err != nil {
			t.Errorf("bash -n %s: %v\n%s", s, err, out)
		}
	}
}

// fakeVault is a vault CLI stand-in: it logs each call (and what a "…=-"
// argument made it read from stdin) and answers list, read and kv
// metadata calls from a state the test picks. No Vault server can run
// here; this checks what the scripts ask of one.
const fakeVault = `#!/usr/bin/env bash
set -euo pipefail
state=${FAKE_VAULT_STATE:?}
dir=${FAKE_VAULT_DIR:?}
printf '%s\n' "$*" >> "$dir/calls"
for a in "$@"; do
  case "$a" in
    *=-) printf 'stdin %s %s\n' "${a%=-}" "$(cat)" >> "$dir/calls" ;;
  esac
done
bump() { v=$(cat "$dir/version" 2>/dev/null || echo 0); echo $((v + 1)) > "$dir/version"; }
case "$*" in
  "token lookup") exit 0 ;;
  "audit list -format=json")
    if [ "$state" = fresh ]; then echo '{}'; else echo '{"file/": {"type": "file"}}'; fi ;;
  "secrets list -format=json")
    if [ "$state" = fresh ]; then echo '{"cubbyhole/": {}}'; else echo '{"cubbyhole/": {}, "database/": {}, "secret/": {}}'; fi ;;
  "auth list -format=json")
    if [ "$state" = fresh ]; then echo '{"token/": {}}'; else echo '{"kubernetes/": {}, "token/": {}}'; fi ;;
  "read -format=json sys/mounts/secret")
    if [ "$state" = kvv1 ]; then echo '{"options": {"version": "1"}}'; else echo '{"options": {"version": "2"}}'; fi ;;
  "read database/config/coffeebuddy")
    if [ "$state" = fresh ]; then echo "No value found" >&2; exit 2; fi ;;
  "kv metadata get -format=json "*)
    [ -f "$dir/version" ] || { echo "No value found" >&2; exit 2; }
    printf '{\n  "data": {\n    "current_version": %s,\n    "max_versions": 0\n  }\n}\n' "$(cat "$dir/version")" ;;
  "kv put "*|"kv patch "*|"kv rollback "*) bump ;;
esac
`

type fake struct {
	dir string
	env []string
}

func newFake(t *testing.T, state string) *fake {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, "vault"), []byte(fakeVault), 0o755); err != nil {
		t.Fatal(err)
	}
	env := []string{"PATH=" + bin + ":" + os.Getenv("PATH"), "FAKE_VAULT_STATE=" + state, "FAKE_VAULT_DIR=" + dir, "HOME=" + dir}
	return &fake{dir: dir, env: env}
}

func (f *fake) run(t *testing.T, stdin string, extraEnv []string, args ...string) (calls []string, stderr string, err error) {
	t.Helper()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(slices.Clone(f.env), extraEnv...)
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	b, _ := os.ReadFile(filepath.Join(f.dir, "calls"))
	_ = os.Remove(filepath.Join(f.dir, "calls"))
	if s := strings.TrimSpace(string(b)); s != "" {
		calls = strings.Split(s, "\n")
	}
	return calls, out.String(), err
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func digits(t *testing.T, n int) string {
	t.Helper()
	var b strings.Builder
	for _, c := range randomHex(t, n) {
		fmt.Fprintf(&b, "%d", int(c)%10)
		if b.Len() == n {
			break
		}
	}
	return b.String()
}

// index is the position of the first call starting with prefix, or -1.
func index(calls []string, prefix string) int {
	return slices.IndexFunc(calls, func(c string) bool { return strings.HasPrefix(c, prefix) })
}

// TestApplyScript runs apply.sh against the fake vault: on a fresh Vault it
// enables and writes everything in order (audit first; the one-off
// database password on stdin only, then rotate-root, then the static
// roles); on one already set up it rewrites policies and roles but leaves
// the mounts and the database connection (whose password is Vault's)
// alone; a KV version 1 mount at secret/ stops it.
func TestApplyScript(t *testing.T) {
	policies, _ := filepath.Glob("policies/*.hcl")
	roles, _ := filepath.Glob("roles/*.json")
	staticRoles, _ := filepath.Glob("database/static-roles/*.json")
	if len(policies) == 0 || len(policies) != len(roles) || len(staticRoles) != 5 {
		t.Fatalf("%d policies, %d roles, %d static roles", len(policies), len(roles), len(staticRoles))
	}
	password := randomHex(t, 12)

	t.Run("fresh", func(t *testing.T) {
		f := newFake(t, "fresh")
		calls, out, err := f.run(t, "", []string{"VAULT_DB_INITIAL_PASSWORD=" + password}, "./apply.sh")
		if err != nil {
			t.Fatalf("apply.sh: %v\n%s", err, out)
		}
		order := []string{
			"write sys/audit/file @audit/file.json",
			"secrets enable -path=secret -version=2 kv",
			"policy write coffeebuddy-",
			"auth enable -path=kubernetes kubernetes",
			"write auth/kubernetes/config @auth/kubernetes.json",
			"write auth/kubernetes/role/coffeebuddy-",
			"secrets enable -path=database database",
			"write database/config/coffeebuddy @database/config.json password=-",
			"stdin password " + password,
			"write -f database/rotate-root/coffeebuddy",
			"write database/static-roles/coffeebuddy-",
		}
		last := -1
		for _, want := range order {
			i := index(calls, want)
			if i < 0 || i < last {
				t.Fatalf("call %q missing or out of order (at %d, after %d):\n%s", want, i, last, strings.Join(calls, "\n"))
			}
			last = i
		}
		for _, p := range policies {
			name := strings.TrimSuffix(filepath.Base(p), ".hcl")
			if index(calls, "policy write coffeebuddy-"+name+" "+p) < 0 {
				t.Errorf("policy %s not written", p)
			}
		}
		for _, r := range roles {
			name := strings.TrimSuffix(filepath.Base(r), ".json")
			if index(calls, "write auth/kubernetes/role/coffeebuddy-"+name+" @"+r) < 0 {
				t.Errorf("role %s not written", r)
			}
		}
		if index(calls, "policy write coffeebuddy-secrets-operator operator/coffeebuddy-secrets-operator.hcl") < 0 {
			t.Error("operator policy not written")
		}
		for _, r := range staticRoles {
			name := strings.TrimSuffix(filepath.Base(r), ".json")
			i := index(calls, "write database/static-roles/"+name+" @"+r)
			if name == "coffeebuddy-pgbouncer" {
				// Without PgBouncer its database role does not exist.
				if i >= 0 {
					t.Errorf("static role %s written without COFFEEBUDDY_PGBOUNCER=true", r)
				}
				continue
			}
			if i < index(calls, "write -f database/rotate-root/") {
				t.Errorf("static role %s not written after rotate-root", r)
			}
		}
		for _, c := range calls {
			if strings.Contains(c, password) && !strings.HasPrefix(c, "stdin ") {
				t.Errorf("the password is on a command line: %s", c)
			}
		}
		if strings.Contains(out, password) {
			t.Error("apply.sh printed the password")
		}
	})

	t.Run("applied before", func(t *testing.T) {
		f := newFake(t, "applied")
		calls, out, err := f.run(t, "", nil, "./apply.sh")
		if err != nil {
			t.Fatalf("apply.sh: %v\n%s", err, out)
		}
		for _, never := range []string{"secrets enable", "auth enable", "write sys/audit", "write database/config/", "write -f database/rotate-root"} {
			if i := index(calls, never); i >= 0 {
				t.Errorf("second run called %q", calls[i])
			}
		}
		if n := len(slices.DeleteFunc(slices.Clone(calls), func(c string) bool { return !strings.HasPrefix(c, "write auth/kubernetes/role/") })); n != len(roles) {
			t.Errorf("second run wrote %d roles, want %d", n, len(roles))
		}
		if index(calls, "write database/static-roles/coffeebuddy-app") < 0 {
			t.Error("second run did not rewrite the static roles")
		}
	})

	t.Run("with PgBouncer", func(t *testing.T) {
		f := newFake(t, "applied")
		calls, out, err := f.run(t, "", []string{"COFFEEBUDDY_PGBOUNCER=true"}, "./apply.sh")
		if err != nil {
			t.Fatalf("apply.sh: %v\n%s", err, out)
		}
		if index(calls, "write database/static-roles/coffeebuddy-pgbouncer @database/static-roles/coffeebuddy-pgbouncer.json") < 0 {
			t.Errorf("static role coffeebuddy-pgbouncer not written with COFFEEBUDDY_PGBOUNCER=true: %q", calls)
		}
	})

	t.Run("KV version 1 at secret/", func(t *testing.T) {
		f := newFake(t, "kvv1")
		calls, out, err := f.run(t, "", nil, "./apply.sh")
		if err == nil || !strings.Contains(out, "not KV version 2") {
			t.Fatalf("apply.sh = %v, %s; want a refusal", err, out)
		}
		if i := index(calls, "policy write"); i >= 0 {
			t.Errorf("wrote after the refusal: %s", calls[i])
		}
	})

	t.Run("dry run", func(t *testing.T) {
		f := newFake(t, "fresh")
		calls, out, err := f.run(t, "", nil, "./apply.sh", "--dry-run")
		if err != nil || len(calls) != 0 || !strings.Contains(out, "vault write database/config/coffeebuddy @database/config.json password=-") {
			t.Fatalf("dry run: %v, %d vault calls, output:\n%s", err, len(calls), out)
		}
	})
}

// TestRotateScript runs rotate-slack-secrets.sh against the fake vault: the
// value goes on stdin, never on a command line or the terminal; the other
// key is kept (patch) unless the path is new (put); malformed values are
// refused before anything is written; rollback names the version.
func TestRotateScript(t *testing.T) {
	signing := randomHex(t, 16) // Slack's shape: 32 hex digits
	// A bot token's shape, made here: no token-like literal in the source.
	token := "xoxb-" + digits(t, 12) + "-" + digits(t, 13) + "-" + randomHex(t, 12)

	tests := []struct {
		name      string
		version   string // "" = the path does not exist yet
		args      []string
		stdin     string
		wantErr   bool
		wantCalls []string
		secret    string // must appear only as stdin
	}{
		{"signing secret", "3", []string{"signing-secret"}, signing + "\n", false,
			[]string{"kv patch -method=rw secret/coffeebuddy/slack signing_secret=-", "stdin signing_secret " + signing}, signing},
		{"pasted with blanks", "3", []string{"signing-secret"}, "  " + signing + " \n", false,
			[]string{"stdin signing_secret " + signing}, signing},
		{"first time: put", "", []string{"signing-secret"}, signing, false,
			[]string{"kv put secret/coffeebuddy/slack signing_secret=-", "stdin signing_secret " + signing}, signing},
		{"bot token", "7", []string{"bot-token"}, token + "\n", false,
			[]string{"kv patch -method=rw secret/coffeebuddy/slack bot_token=-", "stdin bot_token " + token}, token},
		{"not a signing secret", "3", []string{"signing-secret"}, "xoxb-oops\n", true, nil, "xoxb-oops"},
		{"token pasted as signing secret", "3", []string{"bot-token"}, signing + "\n", true, nil, signing},
		{"rollback", "4", []string{"rollback", "3"}, "", false, []string{"kv rollback -version=3 secret/coffeebuddy/slack"}, ""},
		{"rollback without a version", "4", []string{"rollback"}, "", true, nil, ""},
		{"unknown", "4", []string{"rotate-everything"}, "", true, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, "applied")
			if tt.version != "" {
				if err := os.WriteFile(filepath.Join(f.dir, "version"), []byte(tt.version), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			calls, out, err := f.run(t, tt.stdin, nil, append([]string{"./rotate-slack-secrets.sh"}, tt.args...)...)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v\n%s", err, tt.wantErr, out)
			}
			for _, want := range tt.wantCalls {
				if !slices.Contains(calls, want) {
					t.Errorf("no call %q in:\n%s", want, strings.Join(calls, "\n"))
				}
			}
			if tt.wantErr {
				for _, c := range calls {
					if strings.HasPrefix(c, "kv put") || strings.HasPrefix(c, "kv patch") || strings.HasPrefix(c, "kv rollback") {
						t.Errorf("wrote despite the refusal: %s", c)
					}
				}
			}
			if tt.secret != "" {
				for _, c := range calls {
					if strings.Contains(c, tt.secret) && !strings.HasPrefix(c, "stdin ") {
						t.Errorf("the value is on a command line: %s", c)
					}
				}
				if strings.Contains(out, tt.secret) {
					t.Errorf("the script printed the value:\n%s", out)
				}
			}
			if !tt.wantErr && tt.args[0] != "rollback" && tt.version != "" && !strings.Contains(out, "rollback "+tt.version) {
				t.Errorf("no rollback hint to version %s:\n%s", tt.version, out)
			}
		})
	}
}
