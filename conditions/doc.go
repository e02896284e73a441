// Package conditions is the CEL environment of celpolicy: the typed `image`,
// `target`, `now` and `variables` values, the function library (glob,
// semver, ext strings/lists/sets, optional types), compilation with
// positioned errors and cost limits, and evaluation of compiled programs.
//
// An expression is compiled once and evaluated many times:
//
//	env, _ := conditions.NewEnv()
//	prg, err := env.Compile(`image.tag.glob("prod-*")`, conditions.ImageScope, cel.BoolType)
//	if err != nil { ... } // a *CompileError with line and column in the expression
//	val, err := prg.Eval(ctx, conditions.NewActivation(img, now))
//
// Env and Program values are immutable and safe for concurrent use.
//
// Compiling checks every expression with cel-go. Evaluating does not
// always run cel-go's interpreter: an expression in the subset that
// policies are mostly made of (field reads, label lookups, comparisons,
// startsWith, matches and glob on literals, && || !) and that may run
// without cost tracking is evaluated natively on the Go image, with the
// same values and errors (native.go compiles, native_ops.go holds the
// operators; simple literal regexes match on a position automaton,
// regex.go). Everything else, and every explain trace, runs on cel-go.
//
// Compiles that share a Shapes (WithShapes) parse and type-check each
// shape of expression once: template-generated policies differ only in
// their literals (shape.go, shapekey.go, shapecheck.go).
package conditions
