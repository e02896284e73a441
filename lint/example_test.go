package lint_test

import (
	"fmt"
	"path/filepath"

	"github.com/celpolicy/celpolicy/engine"
	"github.com/celpolicy/celpolicy/lint"
)

func ExampleLint() {
	dir := filepath.Join("..", "testdata", "lint")
	set, err := engine.Load([]string{filepath.Join(dir, "registries.yaml"), filepath.Join(dir, "where-selects-nothing-bad.yaml")})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, f := range lint.Lint(set) {
		fmt.Println(f.Severity, f.Rule, f.Pos.Line, f.Pos.Column)
	}
	// Output:
	// warning where-selects-nothing 9 14
	// warning where-selects-nothing 12 14
}
