package engine

import (
	"regexp/syntax"
	"strings"

	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/overloads"
	"cel.dev/cel-go/common/types"
	"github.com/celpolicy/celpolicy/conditions"
)

// The index narrows the policies an image is evaluated against. For
// each policy it extracts, from the checked ASTs of its match or
// conditions, clauses of literal predicates (atoms) over image fields:
// when every atom of one clause is false, the policy evaluates to false
// without an error. Such a policy can be skipped: it neither matches nor
// fails, so the decision is the same.

// fieldKey names what an atom reads: a string field of the image
// ("registry", "repository", ...) or an entry of a map field ("labels"
// or "annotations" with key).
type fieldKey struct {
	field string
	key   string
}

func (f fieldKey) isMap() bool { return f.field == "labels" || f.field == "annotations" }

// atom is "field == value" or, with prefix, "field starts with value".
type atom struct {
	field  fieldKey
	prefix bool
	value  string
	// strict: reading the field fails when a map key is absent
	// (image.labels["team"]), so an image without the key must still
	// evaluate the policy to report its error.
	strict bool
}

// clause is a disjunction of atoms: if all of them are false, so is the
// expression it was extracted from (and it raised no error).
type clause []atom

// maxClauseProduct bounds the clauses a disjunction builds from the
// clauses of its sides.
const maxClauseProduct = 16

// stringFields are the image's string fields: always present, never an
// error to read.
var stringFields = map[string]bool{
	"registry": true, "repository": true, "tag": true, "digest": true,
	"reference": true, "mediaType": true, "source": true,
}

type extractor struct {
	vars map[string][]clause // clauses of bool variables, by name
	safe map[string]bool     // variables whose evaluation cannot fail
}

// policyClauses returns the clauses of a compiled policy: each one, when
// all its atoms are false, makes the policy not match without an error.
func policyClauses(cp *compiledPolicy) []clause {
	x := &extractor{vars: map[string][]clause{}, safe: map[string]bool{}}
	for _, v := range cp.vars {
		if v.prg == nil {
			continue
		}
		e := v.prg.AST().NativeRep().Expr()
		x.vars[v.name] = x.clauses(e)
		x.safe[v.name] = x.cannotError(e)
	}
	if cp.match != nil {
		return x.clauses(expr(cp.match))
	}
	// Conditions are evaluated in order and the first error is returned:
	// an `all` condition proves a policy false only when the ones before
	// it cannot fail.
	var out []clause
	safe := true
	for _, c := range cp.all {
		if safe {
			out = append(out, x.clauses(expr(c.prg))...)
		}
		safe = safe && x.cannotError(expr(c.prg))
	}
	if len(cp.anyOf) > 0 && safe {
		// No `any` condition holds: each is false, without an error.
		var acc []clause
		for i, c := range cp.anyOf {
			cs := x.clauses(expr(c.prg))
			if i == 0 {
				acc = cs
			} else {
				acc = product(acc, cs)
			}
			if len(acc) == 0 {
				break
			}
		}
		out = append(out, acc...)
	}
	return out
}

func expr(p *conditions.Program) ast.Expr { return p.AST().NativeRep().Expr() }

// clauses extracts the clauses of a bool expression.
func (x *extractor) clauses(e ast.Expr) []clause {
	switch e.Kind() {
	case ast.IdentKind:
		if name, ok := strings.CutPrefix(e.AsIdent(), conditions.VariablePrefix); ok {
			return x.vars[name]
		}
		return nil
	case ast.CallKind:
	default:
		return nil
	}
	c := e.AsCall()
	args := c.Args()
	switch c.FunctionName() {
	case operators.LogicalAnd:
		// CEL's && is false when either side is false, whatever error
		// the other side has.
		return append(x.clauses(args[0]), x.clauses(args[1])...)
	case operators.LogicalOr:
		return product(x.clauses(args[0]), x.clauses(args[1]))
	case operators.Equals:
		for _, sides := range [2][2]ast.Expr{{args[0], args[1]}, {args[1], args[0]}} {
			if v, ok := stringLiteral(sides[1]); ok {
				if a, ok := fieldAtom(sides[0], v, false); ok {
					return []clause{{a}}
				}
			}
		}
	case operators.In:
		if args[1].Kind() != ast.ListKind {
			return nil
		}
		l := args[1].AsList()
		if l.Size() == 0 || len(l.OptionalIndices()) > 0 {
			return nil
		}
		var cl clause
		for _, el := range l.Elements() {
			v, ok := stringLiteral(el)
			if !ok {
				return nil
			}
			a, ok := fieldAtom(args[0], v, false)
			if !ok {
				return nil
			}
			cl = append(cl, a)
		}
		return []clause{cl}
	case overloads.StartsWith:
		if !c.IsMemberFunction() || len(args) != 1 {
			return nil
		}
		if p, ok := stringLiteral(args[0]); ok && p != "" {
			if a, ok := fieldAtom(c.Target(), p, true); ok {
				return []clause{{a}}
			}
		}
	case "glob":
		if !c.IsMemberFunction() || len(args) != 1 {
			return nil
		}
		if pat, ok := stringLiteral(args[0]); ok {
			p, exact := globPrefix(pat)
			if p == "" && !exact {
				return nil
			}
			if a, ok := fieldAtom(c.Target(), p, !exact); ok {
				return []clause{{a}}
			}
		}
	case overloads.Matches:
		target, pattern := c.Target(), ast.Expr(nil)
		switch {
		case c.IsMemberFunction() && len(args) == 1:
			pattern = args[0]
		case !c.IsMemberFunction() && len(args) == 2:
			target, pattern = args[0], args[1]
		default:
			return nil
		}
		if pat, ok := stringLiteral(pattern); ok {
			if p := regexPrefix(pat); p != "" {
				if a, ok := fieldAtom(target, p, true); ok {
					return []clause{{a}}
				}
			}
		}
	}
	return nil
}

// product is the clauses of a disjunction: both sides are false when one
// clause of each is all false.
func product(a, b []clause) []clause {
	if len(a) == 0 || len(b) == 0 {
		return nil
	}
	var out []clause
	for _, ca := range a {
		for _, cb := range b {
			if len(out) == maxClauseProduct {
				return out
			}
			out = append(out, append(append(clause{}, ca...), cb...))
		}
	}
	return out
}

func stringLiteral(e ast.Expr) (string, bool) {
	if e.Kind() != ast.LiteralKind {
		return "", false
	}
	s, ok := e.AsLiteral().(types.String)
	return string(s), ok
}

func isImage(e ast.Expr) bool { return e.Kind() == ast.IdentKind && e.AsIdent() == "image" }

// fieldAtom returns the atom "e == v" (or "e starts with v") when e reads
// an image field the index knows.
func fieldAtom(e ast.Expr, v string, prefix bool) (atom, bool) {
	a := atom{value: v, prefix: prefix}
	switch e.Kind() {
	case ast.SelectKind:
		s := e.AsSelect()
		if s.IsTestOnly() {
			return a, false
		}
		if isImage(s.Operand()) && stringFields[s.FieldName()] {
			a.field = fieldKey{field: s.FieldName()}
			return a, true
		}
		// image.labels.team: a missing key is an error.
		if m, ok := mapField(s.Operand()); ok {
			a.field, a.strict = fieldKey{field: m, key: s.FieldName()}, true
			return a, true
		}
	case ast.CallKind:
		c := e.AsCall()
		args := c.Args()
		switch {
		case c.FunctionName() == operators.Index && len(args) == 2:
			// image.labels["team"]: a missing key is an error.
			if m, ok := mapField(args[0]); ok {
				if k, ok := stringLiteral(args[1]); ok {
					a.field, a.strict = fieldKey{field: m, key: k}, true
					return a, true
				}
			}
		case c.FunctionName() == "orValue" && c.IsMemberFunction() && len(args) == 1:
			// image.labels[?"team"].orValue("") and image.labels.?team.orValue(""):
			// a missing key reads as the default, so the atom holds for
			// a missing key only when it holds for the default.
			def, ok := stringLiteral(args[0])
			if !ok || c.Target().Kind() != ast.CallKind {
				return a, false
			}
			opt := c.Target().AsCall()
			oargs := opt.Args()
			if (opt.FunctionName() != operators.OptIndex && opt.FunctionName() != operators.OptSelect) || len(oargs) != 2 {
				return a, false
			}
			m, ok := mapField(oargs[0])
			if !ok {
				return a, false
			}
			k, ok := stringLiteral(oargs[1])
			if !ok {
				return a, false
			}
			if def == v || prefix && strings.HasPrefix(def, v) {
				return a, false
			}
			a.field = fieldKey{field: m, key: k}
			return a, true
		}
	}
	return a, false
}

// mapField reports whether e is image.labels or image.annotations.
func mapField(e ast.Expr) (string, bool) {
	if e.Kind() != ast.SelectKind {
		return "", false
	}
	s := e.AsSelect()
	if s.IsTestOnly() || !isImage(s.Operand()) {
		return "", false
	}
	switch s.FieldName() {
	case "labels", "annotations":
		return s.FieldName(), true
	}
	return "", false
}

// globPrefix returns the literal text every string a doublestar pattern
// matches starts with, and whether the pattern is all literal (then only
// that text matches).
func globPrefix(pat string) (string, bool) {
	i := strings.IndexAny(pat, `*?[{\`)
	if i < 0 {
		return pat, true
	}
	// "a/**" also matches "a": keep the separator out of the prefix.
	return strings.TrimSuffix(pat[:i], "/"), false
}

// regexPrefix returns the literal text every string an anchored regular
// expression matches starts with ("" when it has none).
func regexPrefix(pat string) string {
	re, err := syntax.Parse(pat, syntax.Perl)
	if err != nil || re.Op != syntax.OpConcat || len(re.Sub) < 2 || re.Sub[0].Op != syntax.OpBeginText {
		return ""
	}
	var b strings.Builder
	for _, sub := range re.Sub[1:] {
		if sub.Op != syntax.OpLiteral || sub.Flags&syntax.FoldCase != 0 {
			break
		}
		b.WriteString(string(sub.Rune))
	}
	return b.String()
}

// cannotError reports, conservatively, whether evaluating e can never
// fail: it reads only fields that are always present, with operators
// that never fail on them.
func (x *extractor) cannotError(e ast.Expr) bool {
	switch e.Kind() {
	case ast.LiteralKind:
		return true
	case ast.IdentKind:
		switch n := e.AsIdent(); n {
		case "image", "now":
			return true
		default:
			name, ok := strings.CutPrefix(n, conditions.VariablePrefix)
			return ok && x.safe[name]
		}
	case ast.SelectKind:
		s := e.AsSelect()
		if isImage(s.Operand()) {
			return true
		}
		return s.IsTestOnly() && x.cannotError(s.Operand())
	case ast.ListKind:
		for _, el := range e.AsList().Elements() {
			if !x.cannotError(el) {
				return false
			}
		}
		return true
	case ast.CallKind:
		c := e.AsCall()
		switch c.FunctionName() {
		case operators.LogicalAnd, operators.LogicalOr, operators.LogicalNot,
			operators.Equals, operators.NotEquals, operators.Less, operators.LessEquals,
			operators.Greater, operators.GreaterEquals, operators.In,
			overloads.StartsWith, overloads.EndsWith, overloads.Contains, overloads.Size,
			operators.OptIndex, operators.OptSelect, "orValue", "hasValue":
		case overloads.Matches, "glob", overloads.TypeConvertDuration, overloads.TypeConvertTimestamp:
			// Literal patterns, durations and timestamps are validated
			// when the policy compiles.
			args := c.Args()
			if _, ok := stringLiteral(args[len(args)-1]); !ok {
				return false
			}
		default:
			return false
		}
		if c.IsMemberFunction() && !x.cannotError(c.Target()) {
			return false
		}
		for _, a := range c.Args() {
			if !x.cannotError(a) {
				return false
			}
		}
		return true
	}
	return false
}
