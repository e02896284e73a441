package conditions

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"cel.dev/cel-go/common/overloads"
	"cel.dev/cel-go/common/types"
)

// The operators of native programs: each builds the closure of one CEL
// operation from the closures of its operands, with CEL's semantics.

// index is m[k], with CEL's error for a missing key.
func index(m mapFn, k stringFn) stringFn {
	return func(a *Activation) (string, error) {
		mv, err := m(a)
		if err != nil {
			return "", err
		}
		kv, err := k(a)
		if err != nil {
			return "", err
		}
		v, ok := mv[kv]
		if !ok {
			return "", noSuchKey(kv)
		}
		return v, nil
	}
}

func noSuchKey(k string) error {
	return types.NewErr("no such key: %v", k).(*types.Err)
}

func boolNode(f boolFn) nnode { return nnode{kind: nBool, fn: f} }

// logical is l && r, or l || r. It evaluates the right operand unless
// the left decides (false for &&, true for ||), and otherwise returns the
// left error first, as cel-go's planner does for a chain of them.
func logical(or bool, l, r boolFn) boolFn {
	return func(a *Activation) (bool, error) {
		lv, lerr := l(a)
		if lerr == nil && lv == or {
			return or, nil
		}
		rv, rerr := r(a)
		if rerr == nil && rv == or {
			return or, nil
		}
		if lerr != nil {
			return false, lerr
		}
		return !or, rerr
	}
}

func conditional(cond boolFn, yes, no nnode) (nnode, bool) {
	switch yes.kind {
	case nBool:
		y, n := yes.boolFn(), no.boolFn()
		return boolNode(func(a *Activation) (bool, error) {
			c, err := cond(a)
			if err != nil {
				return false, err
			}
			if c {
				return y(a)
			}
			return n(a)
		}), true
	case nString:
		y, n := yes.stringFn(), no.stringFn()
		return nnode{kind: nString, fn: stringFn(func(a *Activation) (string, error) {
			c, err := cond(a)
			if err != nil {
				return "", err
			}
			if c {
				return y(a)
			}
			return n(a)
		})}, true
	}
	return nnode{}, false
}

// binary evaluates two operands left to right, the first error winning,
// and combines them.
func binary[A, B any](l func(*Activation) (A, error), r func(*Activation) (B, error), f func(x A, y B) bool) boolFn {
	return func(a *Activation) (bool, error) {
		x, err := l(a)
		if err != nil {
			return false, err
		}
		y, err := r(a)
		if err != nil {
			return false, err
		}
		return f(x, y), nil
	}
}

func equality(l, r nnode, negate bool) (nnode, bool) {
	if l.kind != r.kind {
		return nnode{}, false
	}
	var f boolFn
	switch l.kind {
	case nString:
		if lit, ok := r.lit.(string); ok {
			// The common case, image.registry == "…", without a closure
			// for the constant.
			x := l.stringFn()
			f = func(a *Activation) (bool, error) {
				v, err := x(a)
				return v == lit, err
			}
		} else {
			f = binary(l.stringFn(), r.stringFn(), func(x, y string) bool { return x == y })
		}
	case nBool:
		f = binary(l.boolFn(), r.boolFn(), func(x, y bool) bool { return x == y })
	case nInt, nDuration:
		f = binary(l.intFn(), r.intFn(), func(x, y int64) bool { return x == y })
	case nTimestamp:
		f = binary(l.timeFn(), r.timeFn(), func(x, y time.Time) bool { return x.Equal(y) })
	default:
		return nnode{}, false
	}
	if negate {
		eq := f
		f = func(a *Activation) (bool, error) {
			v, err := eq(a)
			if err != nil {
				return false, err
			}
			return !v, nil
		}
	}
	return boolNode(f), true
}

// orderings are the comparison overloads: the sign of compare(x, y) they
// accept.
var orderings = map[string]func(c int) bool{}

func init() {
	lt := func(c int) bool { return c < 0 }
	le := func(c int) bool { return c <= 0 }
	gt := func(c int) bool { return c > 0 }
	ge := func(c int) bool { return c >= 0 }
	for _, o := range []struct {
		ids []string
		f   func(int) bool
	}{
		{[]string{overloads.LessInt64, overloads.LessString, overloads.LessDuration, overloads.LessTimestamp, overloads.LessBool}, lt},
		{[]string{overloads.LessEqualsInt64, overloads.LessEqualsString, overloads.LessEqualsDuration, overloads.LessEqualsTimestamp, overloads.LessEqualsBool}, le},
		{[]string{overloads.GreaterInt64, overloads.GreaterString, overloads.GreaterDuration, overloads.GreaterTimestamp, overloads.GreaterBool}, gt},
		{[]string{overloads.GreaterEqualsInt64, overloads.GreaterEqualsString, overloads.GreaterEqualsDuration, overloads.GreaterEqualsTimestamp, overloads.GreaterEqualsBool}, ge},
	} {
		for _, id := range o.ids {
			orderings[id] = o.f
		}
	}
}

func ordering(l, r nnode, accept func(int) bool) (nnode, bool) {
	if l.kind != r.kind {
		return nnode{}, false
	}
	switch l.kind {
	case nInt, nDuration:
		if lit, ok := r.lit.(int64); ok {
			x := l.intFn()
			return boolNode(func(a *Activation) (bool, error) {
				v, err := x(a)
				return err == nil && accept(cmp.Compare(v, lit)), err
			}), true
		}
		return boolNode(binary(l.intFn(), r.intFn(), func(x, y int64) bool { return accept(cmp.Compare(x, y)) })), true
	case nString:
		return boolNode(binary(l.stringFn(), r.stringFn(), func(x, y string) bool { return accept(cmp.Compare(x, y)) })), true
	case nBool:
		return boolNode(binary(l.boolFn(), r.boolFn(), func(x, y bool) bool { return accept(cmpBool(x, y)) })), true
	case nTimestamp:
		return boolNode(binary(l.timeFn(), r.timeFn(), func(x, y time.Time) bool { return accept(x.Compare(y)) })), true
	}
	return nnode{}, false
}

func cmpBool(x, y bool) int {
	switch {
	case x == y:
		return 0
	case !x:
		return -1
	}
	return 1
}

func in(elem, list nnode) (nnode, bool) {
	// cel-go plans x in [] as the constant false, without evaluating x.
	if vals, ok := list.lit.([]string); ok && len(vals) == 0 {
		return nnode{kind: nBool, lit: false}, true
	}
	if vals, ok := list.lit.([]int64); ok && len(vals) == 0 {
		return nnode{kind: nBool, lit: false}, true
	}
	switch {
	case elem.kind == nString && list.kind == nStringList:
		e := elem.stringFn()
		if vals, ok := list.lit.([]string); ok {
			set := make(map[string]struct{}, len(vals))
			for _, v := range vals {
				set[v] = struct{}{}
			}
			return boolNode(func(a *Activation) (bool, error) {
				v, err := e(a)
				if err != nil {
					return false, err
				}
				_, ok := set[v]
				return ok, nil
			}), true
		}
		return boolNode(binary(e, list.fn.(listFn), func(v string, l []string) bool { return slices.Contains(l, v) })), true
	case elem.kind == nInt && list.kind == nIntList:
		vals, ok := list.lit.([]int64)
		if !ok {
			return nnode{}, false
		}
		return boolNode(binary(elem.intFn(), func(*Activation) ([]int64, error) { return vals, nil },
			func(v int64, l []int64) bool { return slices.Contains(l, v) })), true
	}
	return nnode{}, false
}

func stringPredicate(ov string, l, r stringFn) nnode {
	var f func(s, x string) bool
	switch ov {
	case overloads.StartsWithString:
		f = strings.HasPrefix
	case overloads.EndsWithString:
		f = strings.HasSuffix
	default:
		f = strings.Contains
	}
	return boolNode(binary(l, r, f))
}
