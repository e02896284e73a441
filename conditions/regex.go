package conditions

import (
	"math/bits"
	"regexp/syntax"
	"unicode/utf8"
)

// A simpleRegex matches the regular expressions policies write most:
// a sequence of literal characters, character classes and ., each at
// most once, optionally or repeated (?, *, +), anchored with ^ and $ or
// not, like ^release-[0-9]+\. or ^v[0-9]+\.[0-9]+\.7$.
//
// It gives the same answer as regexp.MatchString (RE2 syntax, as CEL's
// matches uses) by simulating the automaton of its positions on a
// bitset: linear in the input, a few hundred bytes per pattern where a
// compiled *regexp.Regexp holds a few kilobytes (its program and its
// one-pass copy), which ten thousand policies feel. Other patterns are
// left to the regexp package: compileSimpleRegex reports false.
type simpleRegex struct {
	ops []reOp
	// closure[i] is the set of positions reachable from position i
	// without reading a character; len(ops) is the accepting position.
	closure                []uint64
	anchorStart, anchorEnd bool
}

type reOp struct {
	// ranges are inclusive rune ranges, lo-hi pairs, as regexp/syntax
	// keeps a class; a literal is a one-rune range.
	ranges []rune
	rep    reRep
}

type reRep uint8

const (
	repOne   reRep = iota
	repQuest       // ?
	repStar        // *
)

// maxSimpleRegexOps keeps the position sets in one word.
const maxSimpleRegexOps = 62

var anyRune = []rune{0, utf8.MaxRune}
var anyRuneNotNL = []rune{0, '\n' - 1, '\n' + 1, utf8.MaxRune}

// parsed, when not nil, is pattern as syntax.Parse(pattern, syntax.Perl)
// returns it; it is not changed.
func compileSimpleRegex(pattern string, parsed *syntax.Regexp) (*simpleRegex, bool) {
	re := parsed
	if re == nil {
		var err error
		if re, err = syntax.Parse(pattern, syntax.Perl); err != nil {
			return nil, false
		}
	}
	re = re.Simplify()
	subs := sequence(re, nil)
	m := &simpleRegex{}
	for i, s := range subs {
		switch s.Op {
		case syntax.OpBeginText:
			if i != 0 {
				return nil, false
			}
			m.anchorStart = true
		case syntax.OpEndText:
			if i != len(subs)-1 {
				return nil, false
			}
			m.anchorEnd = true
		case syntax.OpEmptyMatch:
		case syntax.OpLiteral:
			if s.Flags&syntax.FoldCase != 0 {
				return nil, false
			}
			for _, r := range s.Rune {
				m.ops = append(m.ops, reOp{ranges: []rune{r, r}})
			}
		case syntax.OpStar, syntax.OpPlus, syntax.OpQuest:
			ranges, ok := oneChar(s.Sub[0])
			if !ok {
				return nil, false
			}
			switch s.Op {
			case syntax.OpStar:
				m.ops = append(m.ops, reOp{ranges: ranges, rep: repStar})
			case syntax.OpQuest:
				m.ops = append(m.ops, reOp{ranges: ranges, rep: repQuest})
			default:
				m.ops = append(m.ops, reOp{ranges: ranges}, reOp{ranges: ranges, rep: repStar})
			}
		default:
			ranges, ok := oneChar(s)
			if !ok {
				return nil, false
			}
			m.ops = append(m.ops, reOp{ranges: ranges})
		}
		if len(m.ops) > maxSimpleRegexOps {
			return nil, false
		}
	}
	n := len(m.ops)
	m.closure = make([]uint64, n+1)
	m.closure[n] = 1 << n
	for i := n - 1; i >= 0; i-- {
		m.closure[i] = 1 << i
		if m.ops[i].rep != repOne {
			m.closure[i] |= m.closure[i+1]
		}
	}
	return m, true
}

// sequence appends the parts of a concatenation, through groups and
// nested concatenations (x{2,} simplifies to one).
func sequence(re *syntax.Regexp, out []*syntax.Regexp) []*syntax.Regexp {
	switch re.Op {
	case syntax.OpConcat:
		for _, s := range re.Sub {
			out = sequence(s, out)
		}
		return out
	case syntax.OpCapture:
		return sequence(re.Sub[0], out)
	}
	return append(out, re)
}

// oneChar returns the ranges of a pattern that matches exactly one
// character, or false.
func oneChar(s *syntax.Regexp) ([]rune, bool) {
	for s.Op == syntax.OpCapture {
		s = s.Sub[0]
	}
	switch s.Op {
	case syntax.OpLiteral:
		if len(s.Rune) != 1 || s.Flags&syntax.FoldCase != 0 {
			return nil, false
		}
		return []rune{s.Rune[0], s.Rune[0]}, true
	case syntax.OpCharClass:
		if len(s.Rune) == 0 {
			return nil, false
		}
		// A copy: s.Rune may point into the parse tree's own storage.
		return append([]rune(nil), s.Rune...), true
	case syntax.OpAnyCharNotNL:
		return anyRuneNotNL, true
	case syntax.OpAnyChar:
		return anyRune, true
	}
	return nil, false
}

func (o *reOp) matches(r rune) bool {
	rs := o.ranges
	for i := 0; i+1 < len(rs); i += 2 {
		if r < rs[i] {
			return false
		}
		if r <= rs[i+1] {
			return true
		}
	}
	return false
}

// MatchString reports whether s contains a match, as
// regexp.MatchString does.
func (m *simpleRegex) MatchString(s string) bool {
	n := len(m.ops)
	accept := uint64(1) << n
	start := m.closure[0]
	cur := start
	if cur&accept != 0 && (!m.anchorEnd || s == "") {
		return true
	}
	for i := 0; i < len(s); {
		r, w := rune(s[i]), 1
		if r >= utf8.RuneSelf {
			r, w = utf8.DecodeRuneInString(s[i:])
		}
		i += w
		var next uint64
		for set := cur &^ accept; set != 0; set &= set - 1 {
			j := bits.TrailingZeros64(set)
			op := &m.ops[j]
			if !op.matches(r) {
				continue
			}
			if op.rep == repStar {
				next |= m.closure[j]
			} else {
				next |= m.closure[j+1]
			}
		}
		if !m.anchorStart {
			next |= start
		}
		cur = next
		if cur&accept != 0 && (!m.anchorEnd || i == len(s)) {
			return true
		}
		if cur == 0 {
			return false
		}
	}
	return false
}
