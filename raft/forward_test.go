package raft

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/tallyhq/tally/core"
)

// TestForwardedErrorsComplete: every sentinel core declares crosses a
// forward, so a refusal on a follower is the one the leader gave.
func TestForwardedErrorsComplete(t *testing.T) {
	files, err := filepath.Glob("../core/*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	found := 0
	for _, name := range files {
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			spec, ok := n.(*ast.ValueSpec)
			if !ok || len(spec.Values) != 1 || !ast.IsExported(spec.Names[0].Name) {
				return true
			}
			call, ok := spec.Values[0].(*ast.CallExpr)
			if !ok || len(call.Args) != 1 {
				return true
			}
			if fn, ok := call.Fun.(*ast.SelectorExpr); !ok || fn.Sel.Name != "New" {
				return true
			}
			lit, ok := call.Args[0].(*ast.BasicLit)
			if !ok {
				return true
			}
			text, _ := strconv.Unquote(lit.Value)
			found++
			if _, ok := sentinelByText[text]; !ok {
				t.Errorf("core.%s (%q) is not in forwardedErrors", spec.Names[0].Name, text)
			}
			return true
		})
	}
	if found < 40 {
		t.Fatalf("found only %d sentinels in core", found)
	}
	if len(sentinelByText) != len(forwardedErrors) {
		t.Fatal("two forwarded sentinels share a text")
	}
}

// TestErrorRoundTrip: an error keeps its text and its sentinels across the
// wire; unknown sentinel texts are dropped.
func TestErrorRoundTrip(t *testing.T) {
	err := fmt.Errorf("%w: %w: key k1", ErrNotLeader, fmt.Errorf("%w: more", core.ErrKeyUsed))
	back := decodeError(encodeError(err))
	if back.Error() != err.Error() || !errors.Is(back, core.ErrKeyUsed) || !errors.Is(back, ErrNotLeader) || errors.Is(back, core.ErrKeyInactive) {
		t.Fatalf("round trip: %v", back)
	}
	if e := decodeError([]byte(`{"message":"m","sentinels":["from a newer version"]}`)); e.Error() != "m" || errors.Is(e, core.ErrNotApplied) {
		t.Fatalf("unknown sentinel: %v", e)
	}
	if e := decodeError([]byte("not json")); !errors.Is(e, core.ErrNotApplied) {
		t.Fatalf("unreadable: %v", e)
	}
}
