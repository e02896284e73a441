// Package policytest runs policy tests: *_test.yaml files beside the
// policies that give images and the decisions expected for them. It
// reports each case with the differences between expected and actual,
// writes JUnit XML for CI systems and measures coverage: which policies
// some case made match and not match, and which boolean sub-expressions
// were seen both true and false.
//
// The smallest use:
//
//	rep, err := policytest.Run(ctx, []string{"policies/"}, policytest.WithCoverage())
//	if err != nil { ... } // no test files, or a cancelled ctx
//	rep.WriteText(os.Stdout)
//	if rep.Failed > 0 { ... }
//
// The test-file format is documented in docs/testing.md.
package policytest
