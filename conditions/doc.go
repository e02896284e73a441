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
package conditions
