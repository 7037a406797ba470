package slackstandin

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// sentShortcode finds a shortcode in Go source as the bot writes one: at
// the start of a string or after a space, and followed by a space, a quote
// or the string's end (so "15:04:05" and SQL's ::regclass do not count).
var sentShortcode = regexp.MustCompile("(?:^|[\\s\"`(])(:[a-z][a-z0-9_+-]*:)(?:[\\s\"`)]|$)")

// TestEveryShortcodeTheBotSendsIsDrawn greps the code that writes Slack
// messages (shared/blocks and every function) for :shortcodes: and
// NewRichTextSectionEmojiElement names; the page must draw each one.
func TestEveryShortcodeTheBotSendsIsDrawn(t *testing.T) {
	richEmoji := regexp.MustCompile(`NewRichTextSectionEmojiElement\("([a-z0-9_+-]+)"`)
	found := map[string][]string{}
	for _, root := range []string{"../blocks", "../../functions"} {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && (d.Name() == "node_modules" || d.Name() == "testdata") {
				return filepath.SkipDir
			}
			if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			src, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, line := range strings.Split(string(src), "\n") {
				if strings.HasPrefix(strings.TrimSpace(line), "//") {
					continue
				}
				for _, m := range sentShortcode.FindAllStringSubmatch(line, -1) {
					found[strings.Trim(m[1], ":")] = append(found[strings.Trim(m[1], ":")], path)
				}
				for _, m := range richEmoji.FindAllStringSubmatch(line, -1) {
					found[m[1]] = append(found[m[1]], path)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(found) < 10 {
		t.Fatalf("found only %d shortcodes (%v): is the grep still finding the bot's messages?", len(found), found)
	}
	for name, where := range found {
		if _, ok := emojiChar(name); !ok {
			t.Errorf(":%s: (in %s) has no emoji in emojiByName", name, where[0])
		}
	}
	t.Logf("%d shortcodes the bot sends, all drawn", len(found))
}

func TestReplaceEmoji(t *testing.T) {
	for in, want := range map[string]string{
		":coffee::tada:":          "☕🎉",
		":wave::skin-tone-3:":     "👋🏼",
		":unknown: stays":         ":unknown: stays",
		"12:30:45 is not a emoji": "12:30:45 is not a emoji",
	} {
		if got := replaceEmoji(in); got != want {
			t.Errorf("replaceEmoji(%q) = %q, want %q", in, got, want)
		}
	}
}
