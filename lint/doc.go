// Package lint finds policies that load but are likely wrong: conditions
// that are constant after folding, policies another always shadows,
// same-priority policies that contradict each other, map keys read
// without a guard, patterns built from literals that do not compile, and
// where selectors that select no registry of the inventory.
//
// The smallest use:
//
//	set, err := engine.Load([]string{"policies/"})
//	if err != nil { ... }
//	for _, f := range lint.Lint(set) {
//		fmt.Println(f) // file:line:col: rule-id: message
//	}
//
// The rules are documented in docs/lint.md.
package lint
