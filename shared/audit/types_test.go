package audit_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"slices"
	"strconv"
	"testing"

	"github.com/coffeebuddy/coffeebuddy/shared/audit"
)

// TestTypesComplete fails when an event type constant is added to the
// package without being listed in audit.Types (the API's event_type enum),
// or Types lists a value no constant declares.
func TestTypesComplete(t *testing.T) {
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, ".", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var consts []string
	for _, f := range pkgs["audit"].Files {
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST {
				continue
			}
			for _, s := range g.Specs {
				for i, n := range s.(*ast.ValueSpec).Names {
					lit, ok := s.(*ast.ValueSpec).Values[i].(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING || !n.IsExported() {
						continue
					}
					v, _ := strconv.Unquote(lit.Value)
					consts = append(consts, v)
				}
			}
		}
	}
	slices.Sort(consts)
	got := slices.Clone(audit.Types)
	slices.Sort(got)
	if !slices.Equal(got, slices.Compact(slices.Clone(got))) {
		t.Errorf("audit.Types has duplicates: %v", audit.Types)
	}
	if !slices.Equal(consts, got) {
		t.Errorf("audit.Types = %v\nconstants  = %v", got, consts)
	}
	for _, typ := range consts {
		if !audit.Known(typ) {
			t.Errorf("Known(%q) = false", typ)
		}
	}
	if audit.Known("run_created' OR 1=1") || audit.Known("") {
		t.Error("Known accepts values that are not event types")
	}
}
