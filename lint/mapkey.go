package lint

import (
	"fmt"
	"strings"

	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/parser"
	"github.com/celpolicy/celpolicy/internal/celast"
)

// A guard is a fact "map m has key k" that holds where an access is
// evaluated, written m + "\x00" + k with m as the map's unparsed text.
type guards map[string]bool

func guardKey(m, k string) string { return m + "\x00" + k }

// facts adds the guards that hold when e evaluates to want.
func (pa *policyInfo) facts(a *ast.AST, e ast.Expr, want bool, out guards, depth int) {
	if depth > 8 {
		return
	}
	info := a.SourceInfo()
	switch e.Kind() {
	case ast.SelectKind:
		s := e.AsSelect()
		if s.IsTestOnly() && want {
			if m, err := parser.Unparse(s.Operand(), info); err == nil {
				out[guardKey(m, s.FieldName())] = true
			}
		}
	case ast.IdentKind:
		// A variable used as a condition guards what its expression does.
		if v, ok := pa.vars[e.AsIdent()]; ok {
			va := checked(v)
			pa.facts(va, va.Expr(), want, out, depth+1)
		}
	case ast.CallKind:
		c := e.AsCall()
		args := c.Args()
		switch c.FunctionName() {
		case operators.LogicalAnd:
			if want {
				pa.facts(a, args[0], true, out, depth+1)
				pa.facts(a, args[1], true, out, depth+1)
			}
		case operators.LogicalOr:
			if !want {
				pa.facts(a, args[0], false, out, depth+1)
				pa.facts(a, args[1], false, out, depth+1)
			}
		case operators.LogicalNot:
			pa.facts(a, args[0], !want, out, depth+1)
		case operators.In:
			if want && args[0].Kind() == ast.LiteralKind {
				if k, ok := args[0].AsLiteral().(types.String); ok {
					if m, err := parser.Unparse(args[1], info); err == nil {
						out[guardKey(m, string(k))] = true
					}
				}
			}
		}
	}
}

// mapKeys reports map reads by a literal key (m.k, m["k"]) that no has()
// or in guards: in the same expression through &&, || or ?:, or, for an
// action's expressions, in the conditions that made the policy match.
func (l *linter) mapKeys(pa *policyInfo) {
	matched := guards{}
	for _, x := range pa.condition() {
		a := checked(x)
		switch x.Name {
		case "match", "all":
			pa.facts(a, a.Expr(), true, matched, 0)
		case "none":
			pa.facts(a, a.Expr(), false, matched, 0)
		}
	}
	// An action's repository, tag and reason are evaluated only for the
	// targets its where selected.
	selected := map[int]guards{}
	for _, x := range pa.exprs {
		if x.Action >= 0 && strings.HasSuffix(x.Field, ".where") {
			g := guards{}
			for k := range matched {
				g[k] = true
			}
			a := checked(x)
			pa.facts(a, a.Expr(), true, g, 0)
			selected[x.Action] = g
		}
	}
	before := guards{} // facts of earlier all conditions, which short-circuit
	for _, x := range pa.exprs {
		outer := guards{}
		switch {
		case x.Action >= 0 && !strings.HasSuffix(x.Field, ".where") && selected[x.Action] != nil:
			outer = selected[x.Action]
		case x.Action >= 0:
			outer = matched
		case x.Name == "all":
			outer = before
		}
		a := checked(x)
		root := ast.NavigateAST(a)
		for _, acc := range mapAccesses(a, root) {
			if outer[acc.guard] || guardedInside(pa, a, acc) {
				continue
			}
			l.report(x.Expr.PositionAt(celast.Start(a.SourceInfo(), acc.node)), pa.Name, RuleUnguardedMapKey,
				"%s reads key %q of %s without checking that it exists; a missing key is an evaluation error: %s",
				acc.text, acc.key, acc.mapText, suggestion(acc.mapText, acc.key))
		}
		if x.Name == "all" {
			pa.facts(a, a.Expr(), true, before, 0)
		}
	}
}

type mapAccess struct {
	node               ast.NavigableExpr
	text, mapText, key string
	guard              string
}

func mapAccesses(a *ast.AST, root ast.NavigableExpr) []mapAccess {
	info := a.SourceInfo()
	isMap := func(e ast.Expr) bool { return a.GetType(e.ID()).Kind() == types.MapKind }
	var out []mapAccess
	for _, n := range ast.MatchDescendants(root, func(e ast.NavigableExpr) bool {
		switch e.Kind() {
		case ast.SelectKind:
			s := e.AsSelect()
			return !s.IsTestOnly() && isMap(s.Operand())
		case ast.CallKind:
			c := e.AsCall()
			if c.FunctionName() != operators.Index || len(c.Args()) != 2 || !isMap(c.Args()[0]) || c.Args()[1].Kind() != ast.LiteralKind {
				return false
			}
			_, ok := c.Args()[1].AsLiteral().(types.String)
			return ok
		}
		return false
	}) {
		var m ast.Expr
		var key string
		if n.Kind() == ast.SelectKind {
			m, key = n.AsSelect().Operand(), n.AsSelect().FieldName()
		} else {
			m, key = n.AsCall().Args()[0], string(n.AsCall().Args()[1].AsLiteral().(types.String))
		}
		mapText, err1 := parser.Unparse(m, info)
		text, err2 := parser.Unparse(n, info)
		if err1 != nil || err2 != nil {
			continue
		}
		out = append(out, mapAccess{node: n, text: text, mapText: mapText, key: key, guard: guardKey(mapText, key)})
	}
	return out
}

// guardedInside reports whether an enclosing &&, || or ?: of the access
// establishes its key. CEL's && and || absorb an error when the other
// side decides, so a guard on either side counts.
func guardedInside(pa *policyInfo, a *ast.AST, acc mapAccess) bool {
	n := acc.node
	child := n
	for p, ok := n.Parent(); ok; p, ok = p.Parent() {
		if p.Kind() == ast.CallKind {
			c := p.AsCall()
			args := c.Args()
			g := guards{}
			switch c.FunctionName() {
			case operators.LogicalAnd:
				pa.facts(a, other(args, child), true, g, 0)
			case operators.LogicalOr:
				pa.facts(a, other(args, child), false, g, 0)
			case operators.Conditional:
				if args[1].ID() == child.ID() {
					pa.facts(a, args[0], true, g, 0)
				} else if args[2].ID() == child.ID() {
					pa.facts(a, args[0], false, g, 0)
				}
			}
			if g[acc.guard] {
				return true
			}
		}
		child = p
	}
	return false
}

func other(args []ast.Expr, child ast.Expr) ast.Expr {
	if args[0].ID() == child.ID() {
		return args[1]
	}
	return args[0]
}

func suggestion(m, key string) string {
	if isIdentifier(key) {
		return fmt.Sprintf("guard it with has(%s.%s), or read %s.?%s.orValue(\"\")", m, key, m, key)
	}
	return fmt.Sprintf("guard it with %q in %s, or read %s[?%q].orValue(\"\")", key, m, m, key)
}

func isIdentifier(s string) bool {
	for i, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return s != "" && !strings.HasPrefix(s, "__")
}
