package conditions

import (
	"regexp"
	"regexp/syntax"
	"time"

	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/overloads"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"github.com/bmatcuk/doublestar/v4"
)

// A native program evaluates a checked expression directly on the Go
// values of an Activation, without cel-go's interpreter: no attribute
// resolution, no ref.Val boxing, no frame. It covers the expressions
// replication policies are mostly made of, with CEL's semantics:
//
//   - image and target fields of type string, int, duration, timestamp,
//     map(string, string) and list(string);
//   - m[k], m.k (a missing key is CEL's "no such key" error) and has(m.k);
//   - string, bool and literal constants, duration("…") and timestamp("…")
//     of literals;
//   - == != < <= > >= on strings, ints, bools, durations and timestamps;
//   - && || ! and _?_:_, with CEL's error absorption: false && error is
//     false, true || error is true;
//   - in on a literal list of strings or ints, on image.platforms and on
//     a map's keys;
//   - startsWith, endsWith, contains, matches with a literal pattern
//     (simpleRegex when it covers the pattern) and glob.
//
// Anything else (variables, comprehensions, arithmetic, semver, …) is
// left to cel-go: nativeCompile reports false and the program is planned
// as usual. TestNativeAgreesWithCEL checks that both give the same value
// or the same error.
type nativeProgram struct {
	b func(*Activation) (bool, error)
	s func(*Activation) (string, error)
}

// nativeCompile returns the native program of a checked expression of
// type bool or string, or false when the expression uses anything the
// native evaluator does not cover.
//
// parsed, when not nil, returns a regex literal already parsed, or nil.
func nativeCompile(a *ast.AST, parsed func(pattern string) *syntax.Regexp) (*nativeProgram, bool) {
	c := nativeCompiler{a: a, parsed: parsed}
	n, ok := c.compile(a.Expr())
	if !ok {
		return nil, false
	}
	switch n.kind {
	case nBool:
		return &nativeProgram{b: n.boolFn()}, true
	case nString:
		return &nativeProgram{s: n.stringFn()}, true
	}
	return nil, false
}

type nkind int

const (
	nBool nkind = iota + 1
	nString
	nInt      // int64
	nDuration // time.Duration as int64 nanoseconds
	nTimestamp
	nStringMap
	nStringList
	nIntList // only as a literal, for in
	nStruct  // image or target, only as a select operand
)

type (
	boolFn   = func(*Activation) (bool, error)
	stringFn = func(*Activation) (string, error)
	intFn    = func(*Activation) (int64, error)
	timeFn   = func(*Activation) (time.Time, error)
	mapFn    = func(*Activation) (map[string]string, error)
	listFn   = func(*Activation) ([]string, error)
)

// nnode is one compiled sub-expression: a function of the kind's Go type,
// and for a literal its constant value.
type nnode struct {
	kind nkind
	fn   any
	lit  any // bool, string, int64, time.Time, []string or []int64 for a constant
	// structName is "image" or "target" for nStruct.
	structName string
}

func (n nnode) boolFn() boolFn {
	if v, ok := n.lit.(bool); ok {
		return func(*Activation) (bool, error) { return v, nil }
	}
	return n.fn.(boolFn)
}

func (n nnode) stringFn() stringFn {
	if v, ok := n.lit.(string); ok {
		return func(*Activation) (string, error) { return v, nil }
	}
	return n.fn.(stringFn)
}

func (n nnode) intFn() intFn {
	if v, ok := n.lit.(int64); ok {
		return func(*Activation) (int64, error) { return v, nil }
	}
	return n.fn.(intFn)
}

func (n nnode) timeFn() timeFn {
	if v, ok := n.lit.(time.Time); ok {
		return func(*Activation) (time.Time, error) { return v, nil }
	}
	return n.fn.(timeFn)
}

type nativeCompiler struct {
	a      *ast.AST
	parsed func(pattern string) *syntax.Regexp
}

func (c *nativeCompiler) kindOf(e ast.Expr) (nkind, bool) {
	t := c.a.GetType(e.ID())
	if t == nil {
		return 0, false
	}
	switch t.Kind() {
	case types.BoolKind:
		return nBool, true
	case types.StringKind:
		return nString, true
	case types.IntKind:
		return nInt, true
	case types.DurationKind:
		return nDuration, true
	case types.TimestampKind:
		return nTimestamp, true
	case types.MapKind:
		if p := t.Parameters(); len(p) == 2 && p[0].Kind() == types.StringKind && p[1].Kind() == types.StringKind {
			return nStringMap, true
		}
	case types.ListKind:
		if p := t.Parameters(); len(p) == 1 && p[0].Kind() == types.StringKind {
			return nStringList, true
		}
		if p := t.Parameters(); len(p) == 1 && p[0].Kind() == types.IntKind {
			return nIntList, true
		}
	case types.StructKind:
		if n := t.TypeName(); n == ImageTypeName || n == TargetTypeName {
			return nStruct, true
		}
	}
	return 0, false
}

func (c *nativeCompiler) compile(e ast.Expr) (nnode, bool) {
	kind, ok := c.kindOf(e)
	if !ok {
		return nnode{}, false
	}
	// A qualified identifier (variables.x) is a select in the tree and an
	// identifier in the reference map.
	if r, ok := c.a.ReferenceMap()[e.ID()]; ok && r.Name != "" {
		return c.ident(r.Name, kind)
	}
	switch e.Kind() {
	case ast.LiteralKind:
		return c.literal(e, kind)
	case ast.IdentKind:
		return c.ident(e.AsIdent(), kind)
	case ast.SelectKind:
		return c.selection(e, kind)
	case ast.CallKind:
		return c.call(e, kind)
	case ast.ListKind:
		return c.list(e, kind)
	}
	return nnode{}, false
}

func (c *nativeCompiler) literal(e ast.Expr, kind nkind) (nnode, bool) {
	switch v := e.AsLiteral().(type) {
	case types.Bool:
		return nnode{kind: nBool, lit: bool(v)}, kind == nBool
	case types.String:
		return nnode{kind: nString, lit: string(v)}, kind == nString
	case types.Int:
		return nnode{kind: nInt, lit: int64(v)}, kind == nInt
	}
	return nnode{}, false
}

func (c *nativeCompiler) ident(name string, kind nkind) (nnode, bool) {
	switch name {
	case "image", "target":
		return nnode{kind: nStruct, structName: name}, kind == nStruct
	case "now":
		if kind != nTimestamp {
			return nnode{}, false
		}
		return nnode{kind: nTimestamp, fn: timeFn(func(a *Activation) (time.Time, error) { return a.now.Time, nil })}, true
	}
	return nnode{}, false
}

func (c *nativeCompiler) list(e ast.Expr, kind nkind) (nnode, bool) {
	l := e.AsList()
	if len(l.OptionalIndices()) > 0 {
		return nnode{}, false
	}
	var vals any
	var ok bool
	switch kind {
	case nStringList:
		vals, ok = literals(l.Elements(), func(v ref.Val) (string, bool) { s, ok := v.(types.String); return string(s), ok })
	case nIntList:
		vals, ok = literals(l.Elements(), func(v ref.Val) (int64, bool) { i, ok := v.(types.Int); return int64(i), ok })
	}
	return nnode{kind: kind, lit: vals}, ok
}

// literals returns the Go values of a list of literals, or false when
// one is not a literal value can convert.
func literals[T any](elems []ast.Expr, value func(ref.Val) (T, bool)) ([]T, bool) {
	vals := make([]T, 0, len(elems))
	for _, el := range elems {
		if el.Kind() != ast.LiteralKind {
			return nil, false
		}
		v, ok := value(el.AsLiteral())
		if !ok {
			return nil, false
		}
		vals = append(vals, v)
	}
	return vals, true
}

// imageField returns the reader of one field of the bound image and the
// kind it yields, or nil.
func imageField(field string) (any, nkind) {
	switch field {
	case "registry":
		return stringFn(func(a *Activation) (string, error) { return a.image.Registry, nil }), nString
	case "repository":
		return stringFn(func(a *Activation) (string, error) { return a.image.Repository, nil }), nString
	case "tag":
		return stringFn(func(a *Activation) (string, error) { return a.image.Tag, nil }), nString
	case "digest":
		return stringFn(func(a *Activation) (string, error) { return a.image.Digest, nil }), nString
	case "reference":
		return stringFn(func(a *Activation) (string, error) { return a.image.Reference, nil }), nString
	case "mediaType":
		return stringFn(func(a *Activation) (string, error) { return a.image.MediaType, nil }), nString
	case "source":
		return stringFn(func(a *Activation) (string, error) { return a.image.Source, nil }), nString
	case "labels":
		return mapFn(func(a *Activation) (map[string]string, error) { return a.image.Labels, nil }), nStringMap
	case "annotations":
		return mapFn(func(a *Activation) (map[string]string, error) { return a.image.Annotations, nil }), nStringMap
	case "platforms":
		return listFn(func(a *Activation) ([]string, error) { return a.image.Platforms, nil }), nStringList
	case "size":
		return intFn(func(a *Activation) (int64, error) { return a.image.Size, nil }), nInt
	case "age":
		return intFn(func(a *Activation) (int64, error) { return int64(a.image.Age), nil }), nDuration
	case "created":
		return timeFn(func(a *Activation) (time.Time, error) {
			// cel-go reads a zero time.Time field as the Unix epoch.
			if a.image.Created.IsZero() {
				return time.Unix(0, 0), nil
			}
			return a.image.Created, nil
		}), nTimestamp
	}
	return nil, 0
}

// targetField returns the reader of one field of the bound target and
// the kind it yields, or nil.
func targetField(field string) (any, nkind) {
	switch field {
	case "name":
		return stringFn(targetReader(func(t *Target) string { return t.Name })), nString
	case "host":
		return stringFn(targetReader(func(t *Target) string { return t.Host })), nString
	case "labels":
		return mapFn(targetReader(func(t *Target) map[string]string { return t.Labels })), nStringMap
	}
	return nil, 0
}

// targetReader reads a field of the bound target, with cel-go's error
// when none is bound.
func targetReader[T any](get func(*Target) T) func(*Activation) (T, error) {
	return func(a *Activation) (T, error) {
		if a.target == nil {
			var zero T
			return zero, errNoTarget
		}
		return get(a.target), nil
	}
}

// errNoTarget is cel-go's error for a target-scope expression evaluated
// without a target bound.
var errNoTarget error = types.NewErr("no such attribute(s): target").(*types.Err)

func (c *nativeCompiler) selection(e ast.Expr, kind nkind) (nnode, bool) {
	s := e.AsSelect()
	op, ok := c.compile(s.Operand())
	if !ok {
		return nnode{}, false
	}
	field := s.FieldName()
	switch op.kind {
	case nStruct:
		if s.IsTestOnly() {
			return nnode{}, false
		}
		read := imageField
		if op.structName == "target" {
			read = targetField
		}
		fn, k := read(field)
		return nnode{kind: kind, fn: fn}, fn != nil && k == kind
	case nStringMap:
		m := op.fn.(mapFn)
		if s.IsTestOnly() {
			return nnode{kind: nBool, fn: boolFn(func(a *Activation) (bool, error) {
				mv, err := m(a)
				if err != nil {
					return false, err
				}
				_, ok := mv[field]
				return ok, nil
			})}, kind == nBool
		}
		key := stringFn(func(*Activation) (string, error) { return field, nil })
		return nnode{kind: nString, fn: index(m, key)}, kind == nString
	}
	return nnode{}, false
}

func (c *nativeCompiler) overload(e ast.Expr) string {
	r, ok := c.a.ReferenceMap()[e.ID()]
	if !ok || len(r.OverloadIDs) != 1 {
		return ""
	}
	return r.OverloadIDs[0]
}

func (c *nativeCompiler) args(call ast.CallExpr) ([]nnode, bool) {
	var exprs []ast.Expr
	if call.IsMemberFunction() {
		exprs = append(exprs, call.Target())
	}
	exprs = append(exprs, call.Args()...)
	out := make([]nnode, len(exprs))
	for i, x := range exprs {
		n, ok := c.compile(x)
		if !ok {
			return nil, false
		}
		out[i] = n
	}
	return out, true
}

func (c *nativeCompiler) call(e ast.Expr, kind nkind) (nnode, bool) {
	call := e.AsCall()
	fn := call.FunctionName()
	switch fn {
	case operators.LogicalAnd, operators.LogicalOr:
		args, ok := c.args(call)
		if !ok || kind != nBool {
			return nnode{}, false
		}
		return nnode{kind: nBool, fn: logical(fn == operators.LogicalOr, args[0].boolFn(), args[1].boolFn())}, true
	case operators.Conditional:
		args, ok := c.args(call)
		if !ok || args[0].kind != nBool || args[1].kind != kind || args[2].kind != kind {
			return nnode{}, false
		}
		return conditional(args[0].boolFn(), args[1], args[2])
	}
	args, ok := c.args(call)
	if !ok {
		return nnode{}, false
	}
	ov := c.overload(e)
	switch ov {
	case overloads.LogicalNot:
		x := args[0].boolFn()
		return boolNode(func(a *Activation) (bool, error) {
			v, err := x(a)
			return !v, err
		}), true
	case overloads.Equals, overloads.NotEquals:
		return equality(args[0], args[1], ov == overloads.NotEquals)
	case overloads.IndexMap:
		if args[0].kind != nStringMap || args[1].kind != nString {
			return nnode{}, false
		}
		return nnode{kind: nString, fn: index(args[0].fn.(mapFn), args[1].stringFn())}, kind == nString
	case overloads.InList:
		return in(args[0], args[1])
	case overloads.InMap:
		if args[0].kind != nString || args[1].kind != nStringMap {
			return nnode{}, false
		}
		k, m := args[0].stringFn(), args[1].fn.(mapFn)
		return boolNode(func(a *Activation) (bool, error) {
			kv, err := k(a)
			if err != nil {
				return false, err
			}
			mv, err := m(a)
			if err != nil {
				return false, err
			}
			_, ok := mv[kv]
			return ok, nil
		}), true
	case overloads.StartsWithString, overloads.EndsWithString, overloads.ContainsString:
		return stringPredicate(ov, args[0].stringFn(), args[1].stringFn()), true
	case overloads.MatchesString, overloads.Matches:
		pat, ok := args[1].lit.(string)
		if !ok {
			return nnode{}, false
		}
		var re interface{ MatchString(string) bool }
		var pre *syntax.Regexp
		if c.parsed != nil {
			pre = c.parsed(pat)
		}
		if simple, ok := compileSimpleRegex(pat, pre); ok {
			re = simple
		} else if full, err := regexp.Compile(pat); err == nil {
			re = full
		} else {
			return nnode{}, false
		}
		s := args[0].stringFn()
		return boolNode(func(a *Activation) (bool, error) {
			v, err := s(a)
			if err != nil {
				return false, err
			}
			return re.MatchString(v), nil
		}), true
	case "string_glob_string":
		pat, ok := args[1].lit.(string)
		if !ok || !doublestar.ValidatePattern(pat) {
			return nnode{}, false
		}
		s := args[0].stringFn()
		return boolNode(func(a *Activation) (bool, error) {
			v, err := s(a)
			if err != nil {
				return false, err
			}
			ok, _ := doublestar.Match(pat, v)
			return ok, nil
		}), true
	case overloads.StringToDuration:
		lit, ok := args[0].lit.(string)
		if !ok {
			return nnode{}, false
		}
		d, ok := types.String(lit).ConvertToType(types.DurationType).(types.Duration)
		if !ok {
			return nnode{}, false
		}
		return nnode{kind: nDuration, lit: int64(d.Duration)}, kind == nDuration
	case overloads.StringToTimestamp:
		lit, ok := args[0].lit.(string)
		if !ok {
			return nnode{}, false
		}
		ts, ok := types.String(lit).ConvertToType(types.TimestampType).(types.Timestamp)
		if !ok {
			return nnode{}, false
		}
		return nnode{kind: nTimestamp, lit: ts.Time}, kind == nTimestamp
	}
	if cmp, ok := orderings[ov]; ok {
		return ordering(args[0], args[1], cmp)
	}
	return nnode{}, false
}
