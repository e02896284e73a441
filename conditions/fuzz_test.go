package conditions

import (
	"context"
	"fmt"
	"testing"
)

// FuzzCompileEval compiles arbitrary expressions and evaluates the ones
// that compile, plainly and traced: nothing may panic, and both must
// agree on the result.
func FuzzCompileEval(f *testing.F) {
	for _, s := range []string{
		`image.labels["team"] == "web"`,
		`image.labels[?"scan.date"].orValue("") < "2026"`,
		`image.repository.glob("library/**") && semver(image.tag).satisfies(">= 1.0")`,
		`image.platforms.exists(p, p.startsWith("linux/"))`,
		`image.age > duration("2160h") || image.created < now`,
		`sets.intersects(image.platforms, ["linux/arm64"])`,
		`image.referrers.map(r, r.digest).join(",")`,
		`isSemver(image.tag) ? semver(image.tag).major() : -1`,
		`"a,b".split(",").size() == 2`,
	} {
		f.Add(s)
	}
	env, err := NewEnv(WithRuntimeCostLimit(100000))
	if err != nil {
		f.Fatal(err)
	}
	img := testImage()
	f.Fuzz(func(t *testing.T, expr string) {
		prg, err := env.Compile(expr, ImageScope, nil)
		if err != nil {
			if _, ok := err.(*CompileError); !ok {
				t.Fatalf("compile error of type %T: %v", err, err)
			}
			return
		}
		act := NewActivation(img, testNow)
		v1, err1 := prg.Eval(context.Background(), act)
		v2, _, err2 := prg.Trace(context.Background(), act)
		if (err1 == nil) != (err2 == nil) {
			// Exhaustive evaluation may only turn an error into a value
			// where a logical operator absorbs it, never the reverse.
			if err1 == nil {
				t.Fatalf("traced evaluation failed where plain did not: %v", err2)
			}
			return
		}
		// Compared as rendered, so that NaN equals NaN.
		if err1 == nil && fmt.Sprint(ToJSON(v1)) != fmt.Sprint(ToJSON(v2)) {
			t.Fatalf("plain %v and traced %v differ", v1, v2)
		}
	})
}
