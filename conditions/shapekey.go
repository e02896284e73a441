package conditions

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// A hole is one simple literal of an expression: a quoted string whose
// escapes are only \\ \" \' \n \t \r, or a decimal int without sign or
// suffix that fits in an int64. start and end are byte offsets, which are
// code point offsets too because only ASCII expressions have holes.
type hole struct {
	start, end int
	isInt      bool
	str        string // the decoded value of a string
	num        int64  // the value of an int
}

// Placeholders stand for a hole in a shape key. 0xff is never part of an
// ASCII expression, so a key cannot be mistaken for expression text.
const (
	stringPlaceholder = "\xffs"
	intPlaceholder    = "\xffi"
)

// shapeOf returns the shape key of an expression, its text with every
// simple literal replaced by the placeholder of its kind, and the
// literals in text order. ok is false when the expression is not ASCII
// or has no simple literal.
//
// The scan follows CEL's lexer closely enough that a literal it does not
// recognise stays verbatim in the key; one it recognises wrongly is caught
// when the template is built, since every hole must then be a literal
// node of the same span and value.
func shapeOf(text string) (key string, holes []hole, ok bool) {
	for i := 0; i < len(text); i++ {
		if text[i] >= utf8.RuneSelf {
			return "", nil, false
		}
	}
	var b strings.Builder
	last := 0 // text[last:i] is verbatim and not yet written
	for i := 0; i < len(text); {
		c := text[i]
		var h hole
		found := false
		switch {
		case c == '/' && strings.HasPrefix(text[i:], "//"):
			i = lineEnd(text, i)
		case c == '`':
			i = quotedIdentEnd(text, i)
		case isIdentStart(c):
			j := i + 1
			for j < len(text) && isIdentByte(text[j]) {
				j++
			}
			if j < len(text) && (text[j] == '"' || text[j] == '\'') {
				// A prefixed string: raw, bytes or both. Never a hole.
				j = stringEnd(text, j, strings.ContainsAny(text[i:j], "rR"))
			}
			i = j
		case c >= '0' && c <= '9':
			h, found = scanNumber(text, i)
			i = h.end
		case c == '"' || c == '\'':
			h, found = scanString(text, i)
			i = h.end
		default:
			i++
		}
		if found {
			b.WriteString(text[last:h.start])
			if h.isInt {
				b.WriteString(intPlaceholder)
			} else {
				b.WriteString(stringPlaceholder)
			}
			last = h.end
			holes = append(holes, h)
		}
	}
	if len(holes) == 0 {
		return "", nil, false
	}
	b.WriteString(text[last:])
	return b.String(), holes, true
}

// scanNumber scans the number at text[i]. It is a hole only when it is a
// decimal int that fits in an int64, with no sign, fraction, exponent or
// suffix, and not the fraction of a float such as `.5`.
func scanNumber(text string, i int) (hole, bool) {
	n := len(text)
	j := i
	if strings.HasPrefix(text[i:], "0x") || strings.HasPrefix(text[i:], "0X") {
		j += 2
		for j < n && isHexDigit(text[j]) {
			j++
		}
		if j < n && (text[j] == 'u' || text[j] == 'U') {
			j++
		}
		return hole{start: i, end: j}, false
	}
	for j < n && isDigit(text[j]) {
		j++
	}
	simple := i == 0 || text[i-1] != '.'
	if j+1 < n && text[j] == '.' && isDigit(text[j+1]) {
		simple = false
		j++
		for j < n && isDigit(text[j]) {
			j++
		}
	}
	if j < n && (text[j] == 'e' || text[j] == 'E') {
		k := j + 1
		if k < n && (text[k] == '+' || text[k] == '-') {
			k++
		}
		if k < n && isDigit(text[k]) {
			simple = false
			j = k
			for j < n && isDigit(text[j]) {
				j++
			}
		}
	}
	if j < n && isIdentByte(text[j]) {
		// A suffix (5u) or something the lexer splits oddly (5abc).
		simple = false
	}
	h := hole{start: i, end: j, isInt: true}
	if !simple {
		return h, false
	}
	v, err := strconv.ParseInt(text[i:j], 10, 64)
	if err != nil {
		return h, false // out of range: CEL reports it, or folds a sign
	}
	h.num = v
	return h, true
}

// scanString scans the unprefixed string at text[i]. It is a hole when it
// is on one line and its escapes are simple; it is decoded as CEL does.
func scanString(text string, i int) (hole, bool) {
	q := text[i]
	h := hole{start: i}
	if strings.HasPrefix(text[i:], strings.Repeat(string(q), 3)) {
		h.end = stringEnd(text, i, false)
		return h, false
	}
	var val []byte
	simple := true
	for j := i + 1; j < len(text); {
		c := text[j]
		switch {
		case c == q:
			h.end, h.str = j+1, string(val)
			return h, simple
		case c == '\n' || c == '\r':
			h.end = j // unterminated: a syntax error
			return h, false
		case c == '\\':
			if j+1 == len(text) {
				h.end = len(text)
				return h, false
			}
			switch e := text[j+1]; e {
			case '\\', '"', '\'':
				val = append(val, e)
			case 'n':
				val = append(val, '\n')
			case 't':
				val = append(val, '\t')
			case 'r':
				val = append(val, '\r')
			default:
				simple = false // \x41, \u0041, \101, \a ...: no quote among their digits
			}
			j += 2
		default:
			val = append(val, c)
			j++
		}
	}
	h.end = len(text)
	return h, false
}

// stringEnd returns the end of the string whose opening quote is at
// text[i], raw (no escapes) or not, on one line or triple-quoted.
func stringEnd(text string, i int, raw bool) int {
	q := text[i]
	triple := strings.Repeat(string(q), 3)
	if strings.HasPrefix(text[i:], triple) {
		for j := i + 3; j < len(text); j++ {
			switch {
			case !raw && text[j] == '\\':
				j++
			case strings.HasPrefix(text[j:], triple):
				return j + 3
			}
		}
		return len(text)
	}
	for j := i + 1; j < len(text); j++ {
		switch c := text[j]; {
		case !raw && c == '\\':
			j++
		case c == q:
			return j + 1
		case c == '\n' || c == '\r':
			return j
		}
	}
	return len(text)
}

// quotedIdentEnd returns the end of the backquoted field name at text[i].
func quotedIdentEnd(text string, i int) int {
	if j := strings.IndexByte(text[i+1:], '`'); j >= 0 {
		return i + 1 + j + 1
	}
	return len(text)
}

func lineEnd(text string, i int) int {
	if j := strings.IndexByte(text[i:], '\n'); j >= 0 {
		return i + j
	}
	return len(text)
}

func isDigit(c byte) bool      { return c >= '0' && c <= '9' }
func isIdentStart(c byte) bool { return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isIdentByte(c byte) bool  { return isIdentStart(c) || isDigit(c) }
func isHexDigit(c byte) bool {
	return isDigit(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}
