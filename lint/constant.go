package lint

import (
	"fmt"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/interpreter"
	"github.com/celpolicy/celpolicy/engine"
)

// fold constant-folds x with the values of variables already known to be
// constant and returns the literal it folds to, if any.
func fold(x engine.CompiledExpr, known map[string]any) (any, bool) {
	act, err := interpreter.NewActivation(known)
	if err != nil {
		return nil, false
	}
	folder, err := cel.NewConstantFoldingOptimizer(cel.FoldKnownValues(act))
	if err != nil {
		return nil, false
	}
	opt, err := cel.NewStaticOptimizer(folder)
	if err != nil {
		return nil, false
	}
	out, iss := opt.Optimize(env(x), x.Program.AST())
	if iss.Err() != nil {
		return nil, false
	}
	e := out.NativeRep().Expr()
	if e.Kind() != ast.LiteralKind {
		return nil, false
	}
	return e.AsLiteral(), true
}

// constants folds every policy's condition and reports the policies that
// never match, always match, or are shadowed by one that always matches.
func (l *linter) constants() {
	for _, pa := range l.policies {
		known := map[string]any{}
		for _, x := range pa.exprs {
			if _, isVar := pa.vars["variables."+x.Name]; !isVar || x.Action >= 0 {
				continue
			}
			if v, ok := fold(x, known); ok {
				known["variables."+x.Name] = v
			}
		}
		pa.constant = conditionConstant(pa, known)
		switch {
		case pa.constant == "false":
			l.report(pa.conditionPos(), pa.Name, RuleNeverMatches,
				"policy %q never matches: its condition is false for every image after constant folding", pa.Name)
		case pa.constant == "true" && !pa.Fallback:
			l.report(pa.conditionPos(), pa.Name, RuleAlwaysMatches,
				"policy %q matches every image; if it is meant as the default, set fallback: true so that it applies only when no other policy matched", pa.Name)
		}
	}
	l.unreachable()
}

// conditionConstant is "true" or "false" when the policy's match (or its
// conditions taken together) folds to a constant, "" otherwise.
func conditionConstant(pa *policyInfo, known map[string]any) string {
	if pa.Match != nil {
		for _, x := range pa.condition() {
			if v, ok := fold(x, known); ok {
				return boolString(v)
			}
		}
		return ""
	}
	// all: every one true; any: one true (when given); none: none true.
	allTrue, anyTrue, anyAllFalse, hasAny, noneFalse := true, false, true, false, true
	for _, x := range pa.condition() {
		v, ok := fold(x, known)
		s := ""
		if ok {
			s = boolString(v)
		}
		switch x.Name {
		case "all":
			if s == "false" {
				return "false"
			}
			allTrue = allTrue && s == "true"
		case "any":
			hasAny = true
			anyTrue = anyTrue || s == "true"
			anyAllFalse = anyAllFalse && s == "false"
		case "none":
			if s == "true" {
				return "false"
			}
			noneFalse = noneFalse && s == "false"
		}
	}
	if hasAny && anyAllFalse {
		return "false"
	}
	if allTrue && noneFalse && (!hasAny || anyTrue) {
		return "true"
	}
	return ""
}

func boolString(v any) string {
	if b, ok := v.(types.Bool); ok {
		return fmt.Sprint(bool(b))
	}
	return ""
}

// unreachable reports policies that are never evaluated because one that
// always matches comes first.
func (l *linter) unreachable() {
	var always *policyInfo // first enforce, non-fallback policy that always matches
	for _, pa := range l.policies {
		if pa.Mode != engine.ModeEnforce {
			continue
		}
		if pa.Fallback {
			if always != nil {
				l.report(pa.Pos, pa.Name, RuleUnreachable,
					"fallback policy %q never applies: policy %q (%s) always matches", pa.Name, always.Name, always.Pos)
			}
			continue
		}
		if always != nil && l.set.Combining() == engine.FirstMatch {
			l.report(pa.Pos, pa.Name, RuleUnreachable,
				"policy %q is never evaluated under first-match: policy %q (priority %d, %s) comes first and always matches",
				pa.Name, always.Name, always.Priority, always.Pos)
		}
		if always == nil && pa.constant == "true" {
			always = pa
		}
	}
}
