package lint

import (
	"slices"
	"strings"

	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/parser"
	"github.com/celpolicy/celpolicy/engine"
)

// constraint is a literal condition on one subject (the unparsed text of
// what is compared, e.g. image.tag): equal to a value, not equal to it,
// or starting with a prefix.
type constraint struct {
	subject string
	op      string // "==", "!=", "prefix"
	value   string
}

// disjoint reports whether no value satisfies both constraints.
func disjoint(a, b constraint) bool {
	if a.subject != b.subject {
		return false
	}
	if a.op > b.op {
		a, b = b, a
	}
	switch {
	case a.op == "==" && b.op == "==":
		return a.value != b.value
	case a.op == "!=" && b.op == "==":
		return a.value == b.value
	case a.op == "==" && b.op == "prefix":
		return !strings.HasPrefix(a.value, b.value)
	case a.op == "prefix" && b.op == "prefix":
		return !strings.HasPrefix(a.value, b.value) && !strings.HasPrefix(b.value, a.value)
	}
	return false
}

// constraints returns the literal constraints every matching image meets:
// those of the conjuncts of match, of all and of variables they use.
func (pa *policyInfo) constraints() []constraint {
	var out []constraint
	for _, x := range pa.condition() {
		if x.Name == "match" || x.Name == "all" {
			a := checked(x)
			out = pa.conjuncts(a, a.Expr(), out, 0)
		}
	}
	return out
}

func (pa *policyInfo) conjuncts(a *ast.AST, e ast.Expr, out []constraint, depth int) []constraint {
	if depth > 8 {
		return out
	}
	info := a.SourceInfo()
	unparse := func(e ast.Expr) string {
		s, err := parser.Unparse(e, info)
		if err != nil {
			return ""
		}
		return s
	}
	lit := func(e ast.Expr) (string, bool) {
		if e.Kind() != ast.LiteralKind {
			return "", false
		}
		s, ok := e.AsLiteral().(types.String)
		return string(s), ok
	}
	switch e.Kind() {
	case ast.IdentKind:
		if v, ok := pa.vars[e.AsIdent()]; ok {
			va := checked(v)
			return pa.conjuncts(va, va.Expr(), out, depth+1)
		}
	case ast.CallKind:
		c := e.AsCall()
		args := c.Args()
		switch fn := c.FunctionName(); {
		case fn == operators.LogicalAnd:
			out = pa.conjuncts(a, args[0], out, depth+1)
			return pa.conjuncts(a, args[1], out, depth+1)
		case fn == operators.Equals || fn == operators.NotEquals:
			op := "=="
			if fn == operators.NotEquals {
				op = "!="
			}
			if v, ok := lit(args[1]); ok {
				return append(out, constraint{unparse(args[0]), op, v})
			}
			if v, ok := lit(args[0]); ok {
				return append(out, constraint{unparse(args[1]), op, v})
			}
		case c.IsMemberFunction() && len(args) == 1:
			v, ok := lit(args[0])
			if !ok {
				return out
			}
			subject := unparse(c.Target())
			switch fn {
			case "startsWith":
				return append(out, constraint{subject, "prefix", v})
			case "glob":
				if i := strings.IndexAny(v, `*?[{\`); i >= 0 {
					return append(out, constraint{subject, "prefix", v[:i]})
				}
				return append(out, constraint{subject, "==", v})
			case "matches":
				if strings.HasPrefix(v, "^") {
					p := v[1:]
					if i := strings.IndexAny(p, `\.+*?()|[]{}^$`); i >= 0 {
						p = p[:i]
					}
					return append(out, constraint{subject, "prefix", p})
				}
			}
		}
	}
	return out
}

// conflicts reports pairs of enforce policies of equal priority whose
// literal conditions can hold together and of which one replicates to a
// target the other blocks.
func (l *linter) conflicts() {
	for i, p := range l.policies {
		for _, q := range l.policies[:i] {
			if p.Mode != engine.ModeEnforce || q.Mode != engine.ModeEnforce || p.Priority != q.Priority ||
				p.Fallback != q.Fallback || p.constant == "false" || q.constant == "false" {
				continue
			}
			if overlapExcluded(p.constraints(), q.constraints()) {
				continue
			}
			var parts []string
			if ts := contradictions(q, p); len(ts) > 0 {
				parts = append(parts, p.Name+" blocks "+strings.Join(ts, ", ")+" where "+q.Name+" replicates")
			}
			if ts := contradictions(p, q); len(ts) > 0 {
				parts = append(parts, p.Name+" replicates to "+strings.Join(ts, ", ")+" where "+q.Name+" blocks")
			}
			if len(parts) == 0 {
				continue
			}
			l.report(p.Pos, p.Name, RuleConflictingAction,
				"policies %q and %q have priority %d and may match the same image: %s (%s); block wins at equal priority, but make the conditions exclusive or give one a higher priority to say which you mean",
				p.Name, q.Name, p.Priority, strings.Join(parts, "; "), q.Pos)
		}
	}
}

func overlapExcluded(a, b []constraint) bool {
	for _, x := range a {
		for _, y := range b {
			if disjoint(x, y) {
				return true
			}
		}
	}
	return false
}

// contradictions returns the targets where r replicates and b blocks.
func contradictions(r, b *policyInfo) []string {
	var targets []string
	replicated := map[string]bool{}
	for i, a := range r.Actions {
		if a.Type.Value == engine.ActionReplicate {
			for _, t := range r.targets[i] {
				replicated[t] = true
			}
		}
	}
	for i, a := range b.Actions {
		if a.Type.Value == engine.ActionBlock {
			for _, t := range b.targets[i] {
				if replicated[t] && !slices.Contains(targets, t) {
					targets = append(targets, t)
				}
			}
		}
	}
	slices.Sort(targets)
	return targets
}
