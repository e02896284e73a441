package lint

import (
	"regexp"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/parser"
	"github.com/Masterminds/semver/v3"
	"github.com/bmatcuk/doublestar/v4"
	"github.com/celpolicy/celpolicy/internal/celast"
)

// patterns reports regular expressions, glob patterns and semver
// constraints that are built from literals (e.g. concatenated) and do
// not compile. A single literal is already rejected when the policy is
// compiled; a pattern read from the image or a variable cannot be
// checked before evaluation.
func (l *linter) patterns(pa *policyInfo) {
	for _, x := range pa.exprs {
		a := checked(x)
		info := a.SourceInfo()
		for _, n := range ast.MatchDescendants(ast.NavigateAST(a), ast.KindMatcher(ast.CallKind)) {
			c := n.AsCall()
			var arg ast.Expr
			switch fn := c.FunctionName(); {
			case fn == "matches" && c.IsMemberFunction() && len(c.Args()) == 1:
				arg = c.Args()[0]
			case fn == "matches" && !c.IsMemberFunction() && len(c.Args()) == 2:
				arg = c.Args()[1]
			case (fn == "glob" || fn == "satisfies") && c.IsMemberFunction() && len(c.Args()) == 1:
				arg = c.Args()[0]
			case fn == "semver" && !c.IsMemberFunction() && len(c.Args()) == 1:
				arg = c.Args()[0]
			default:
				continue
			}
			if arg.Kind() == ast.LiteralKind || !constantExpr(arg) {
				continue
			}
			text, err := parser.Unparse(arg, info)
			if err != nil {
				continue
			}
			s, ok := evalString(env(x), text)
			if !ok {
				continue
			}
			msg := ""
			switch c.FunctionName() {
			case "matches":
				if _, err := regexp.Compile(s); err != nil {
					msg = "regular expression " + text + " does not compile: " + err.Error()
				}
			case "glob":
				if !doublestar.ValidatePattern(s) {
					msg = "glob pattern " + text + " is invalid"
				}
			case "satisfies":
				if _, err := semver.NewConstraint(s); err != nil {
					msg = "semver constraint " + text + " is invalid: " + err.Error()
				}
			case "semver":
				if _, err := semver.NewVersion(s); err != nil {
					msg = text + " is not a semantic version"
				}
			}
			if msg != "" {
				an, _ := arg.(ast.NavigableExpr)
				pos := x.Expr.Pos
				if an != nil {
					pos = x.Expr.PositionAt(celast.Start(info, an))
				}
				l.report(pos, pa.Name, RuleInvalidPattern, "%s; every evaluation of %s fails", msg, x.Field)
			}
		}
	}
}

// constantExpr reports whether e reads no variable: only literals and
// calls over them.
func constantExpr(e ast.Expr) bool {
	switch e.Kind() {
	case ast.LiteralKind:
		return true
	case ast.CallKind:
		c := e.AsCall()
		if c.IsMemberFunction() && !constantExpr(c.Target()) {
			return false
		}
		for _, a := range c.Args() {
			if !constantExpr(a) {
				return false
			}
		}
		return true
	case ast.ListKind:
		for _, el := range e.AsList().Elements() {
			if !constantExpr(el) {
				return false
			}
		}
		return true
	}
	return false
}

// evalString compiles and evaluates a constant expression.
func evalString(e *cel.Env, text string) (string, bool) {
	a, iss := e.Compile(text)
	if iss.Err() != nil {
		return "", false
	}
	prg, err := e.Program(a)
	if err != nil {
		return "", false
	}
	v, _, err := prg.Eval(cel.NoVars())
	if err != nil {
		return "", false
	}
	s, ok := v.(types.String)
	return string(s), ok
}
