package engine

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse feeds arbitrary bytes to the loader and the compiler: they
// must never panic, and every problem must carry a position.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("../examples/policies/*.yaml")
	for _, name := range files {
		if data, err := os.ReadFile(name); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte(inventoryYAML))
	f.Add([]byte("apiVersion: celpolicy.dev/v1\nkind: Policy\nmetadata: {name: p}\nspec:\n  match: |\n    image.tag ==\n  actions: [{type: block}]\n"))
	f.Add([]byte("a: &x [*x]\n"))
	f.Add([]byte("--- \n...\n---\n[1, 2]\n"))
	img := webImage()
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := Parse("fuzz.yaml", data)
		checkPositions(t, err)
		set, err := Compile(b)
		checkPositions(t, err)
		if err == nil && set != nil {
			if _, err := set.Evaluate(context.Background(), img, WithTrace()); err != nil {
				t.Fatalf("evaluate: %v", err)
			}
		}
	})
}

func checkPositions(t *testing.T, err error) {
	var list ErrorList
	if err == nil || !errors.As(err, &list) {
		return
	}
	for _, e := range list {
		if e.Pos.File != "fuzz.yaml" || e.Pos.Line < 1 || e.Pos.Column < 1 {
			t.Fatalf("error without a position: %#v", e)
		}
	}
}

// FuzzExprPosition checks that mapping an expression offset back into
// the file never panics and stays inside the file, for every scalar style.
func FuzzExprPosition(f *testing.F) {
	f.Add("image.tag == 'x'", 3)
	f.Add("|\n  a &&\n\n  b", 7)
	f.Add(">-\n    image.labels[\"a\"]\n      == \"b\"", 20)
	f.Add("\"a\\\"b\\u00e9\"", 4)
	f.Fuzz(func(t *testing.T, scalar string, off int) {
		doc := "match: " + scalar + "\n"
		src := newSourceFile("fuzz.yaml", []byte(doc))
		for _, style := range []int{0, 1, 2, 3, 4} {
			e := Expr{Text: scalar, Pos: Position{File: "fuzz.yaml", Line: 1, Column: 8}, src: src}
			e.style = 1 << style
			p := e.PositionAt(off)
			if p.Line < 1 || p.Column < 1 {
				t.Fatalf("position %v out of the file", p)
			}
		}
	})
}
