package main

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/coffeebuddy/coffeebuddy/shared/audit"
	"go.yaml.in/yaml/v3"
)

type openAPISchema struct {
	Type      any            `yaml:"type"`
	Format    string         `yaml:"format"`
	Enum      []string       `yaml:"enum"`
	Items     *openAPISchema `yaml:"items"`
	Minimum   *int           `yaml:"minimum"`
	Maximum   *int           `yaml:"maximum"`
	Default   *int           `yaml:"default"`
	MaxLength *int           `yaml:"maxLength"`
}

type openAPIDoc struct {
	OpenAPI string `yaml:"openapi"`
	Paths   map[string]map[string]struct {
		Parameters []struct {
			Name     string        `yaml:"name"`
			In       string        `yaml:"in"`
			Required bool          `yaml:"required"`
			Explode  *bool         `yaml:"explode"`
			Schema   openAPISchema `yaml:"schema"`
		} `yaml:"parameters"`
		Responses map[string]any `yaml:"responses"`
	} `yaml:"paths"`
	Components struct {
		Schemas map[string]struct {
			Properties map[string]openAPISchema `yaml:"properties"`
		} `yaml:"schemas"`
	} `yaml:"components"`
}

// TestOpenAPIMatchesHandler: docs/api/audit.openapi.yaml documents exactly
// the handler's parameters (Params), with the same limits, the event types
// of shared/audit, and the problem types the handler writes.
func TestOpenAPIMatchesHandler(t *testing.T) {
	b, err := os.ReadFile("../../docs/api/audit.openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc openAPIDoc
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi %q", doc.OpenAPI)
	}
	op, ok := doc.Paths[Path]["get"]
	if !ok || len(doc.Paths) != 1 || len(doc.Paths[Path]) != 1 {
		t.Fatalf("the document must describe exactly GET %s", Path)
	}
	var docNames, codeNames []string
	for _, p := range op.Parameters {
		docNames = append(docNames, p.Name)
	}
	for _, p := range Params {
		codeNames = append(codeNames, p.Name)
	}
	if !slices.Equal(docNames, codeNames) {
		t.Fatalf("documented parameters %v, handler's %v", docNames, codeNames)
	}
	for i, p := range Params {
		d := op.Parameters[i]
		if d.In != "query" || d.Required != p.Required {
			t.Errorf("%s: in %q required %v; handler: required %v", p.Name, d.In, d.Required, p.Required)
		}
		s := d.Schema
		switch p.Kind {
		case "integer":
			if s.Type != "integer" || s.Minimum == nil || *s.Minimum != p.Min || s.Maximum == nil || *s.Maximum != p.Max ||
				s.Default == nil || *s.Default != p.Default {
				t.Errorf("%s: schema %+v; handler: %d..%d default %d", p.Name, s, p.Min, p.Max, p.Default)
			}
		case "enum":
			enum := s.Enum
			if p.Repeatable {
				if s.Type != "array" || s.Items == nil || d.Explode == nil || !*d.Explode {
					t.Errorf("%s: a repeatable parameter must be an exploded array", p.Name)
					continue
				}
				enum = s.Items.Enum
			}
			if !slices.Equal(enum, p.Enum) {
				t.Errorf("%s: documented enum %v, handler's %v", p.Name, enum, p.Enum)
			}
		case "uuid":
			if s.Format != "uuid" {
				t.Errorf("%s: format %q, want uuid", p.Name, s.Format)
			}
		case "string":
			if s.MaxLength == nil || *s.MaxLength != p.MaxLen {
				t.Errorf("%s: maxLength %v, handler's %d", p.Name, s.MaxLength, p.MaxLen)
			}
		}
	}
	if ev := op.Parameters[slices.Index(codeNames, "event_type")].Schema.Items; ev == nil || !slices.Equal(ev.Enum, audit.Types) {
		t.Errorf("event_type enum differs from shared/audit's Types %v", audit.Types)
	}
	for _, code := range []string{"200", "400", "401", "403", "405", "503"} {
		if _, ok := op.Responses[code]; !ok {
			t.Errorf("response %s undocumented", code)
		}
	}
	problemTypes := doc.Components.Schemas["Problem"].Properties["type"].Enum
	if want := []string{ProblemInvalidParams, ProblemUnauthorized, ProblemForbidden, ProblemUnavailable, ProblemInternal, ProblemAboutBlank}; !slices.Equal(problemTypes, want) {
		t.Errorf("problem types %v, handler's %v", problemTypes, want)
	}
}

// TestREADMEListsEventTypes: the README's Audit API section names every
// event type the API can return.
func TestREADMEListsEventTypes(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(b), "\n## Audit API\n")
	if !ok {
		t.Fatal("README has no \"## Audit API\" section")
	}
	sec, _, _ = strings.Cut(sec, "\n## ")
	var listed []string
	for _, m := range regexp.MustCompile("(?m)^\\| `([a-z_]+)` \\|").FindAllStringSubmatch(sec, -1) {
		listed = append(listed, m[1])
	}
	if !slices.Equal(listed, audit.Types) {
		t.Errorf("README's event type table lists %v, want shared/audit's Types in order %v", listed, audit.Types)
	}
}
