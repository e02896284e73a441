package engine

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// Expr is a CEL expression as written in a policy file. It keeps enough
// of the file to turn an offset inside the expression into a file
// position, also inside quoted, folded (>) and literal (|) scalars.
type Expr struct {
	Text string
	// Pos is where the scalar starts (for block scalars, the indicator).
	Pos   Position
	src   *sourceFile
	style yaml.Style
}

// sourceFile is a policy file's name and lines, kept to position errors.
type sourceFile struct {
	name  string
	lines []string
}

func newSourceFile(name string, data []byte) *sourceFile {
	return &sourceFile{name: name, lines: strings.Split(string(data), "\n")}
}

// PositionAt returns the file position of the code point at offset off of
// the expression text. It aligns the value with the file's characters:
// YAML only removes indentation, quotes and escapes, and folds line
// breaks into spaces.
func (e Expr) PositionAt(off int) Position {
	if e.src == nil || e.Pos.Line == 0 {
		return e.Pos
	}
	value := []rune(e.Text)
	off = max(0, min(off, len(value)))
	line := e.Pos.Line - 1 // 0-based index into src.lines
	col := e.Pos.Column - 1
	block := e.style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0
	quoted := e.style&(yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle) != 0
	indent := 0
	if block {
		line, col, indent = e.blockStart(line)
	} else if quoted {
		col++
	}
	runes := func(l int) []rune {
		if l < len(e.src.lines) {
			return []rune(strings.TrimRight(e.src.lines[l], "\r"))
		}
		return nil
	}
	cur := runes(line)
	nextLine := func() {
		line++
		cur = runes(line)
		col = 0
		if block {
			col = min(indent, len(cur))
			return
		}
		for col < len(cur) && (cur[col] == ' ' || cur[col] == '\t') {
			col++
		}
	}
	pos := func() Position { return Position{File: e.Pos.File, Line: line + 1, Column: col + 1} }
	for i := 0; i < off; i++ {
		v := value[i]
		for guard := 0; col >= len(cur) && guard < 1000 && line < len(e.src.lines); guard++ {
			if v == '\n' || v == ' ' {
				break
			}
			nextLine()
		}
		switch {
		case col >= len(cur):
			// A line break that became a space or stayed a newline.
			nextLine()
		case cur[col] == v:
			col++
			if quoted && e.style&yaml.SingleQuotedStyle != 0 && v == '\'' && col < len(cur) && cur[col] == '\'' {
				col++
			}
		case quoted && cur[col] == '\\':
			col += 2
		default:
			col++
		}
	}
	for col >= len(cur) && line+1 < len(e.src.lines) && block {
		nextLine()
	}
	return pos()
}

// blockStart finds the first content line of a block scalar whose
// indicator is on line (0-based) and returns it with its indentation.
func (e Expr) blockStart(line int) (int, int, int) {
	for l := line + 1; l < len(e.src.lines); l++ {
		s := strings.TrimRight(e.src.lines[l], "\r")
		if strings.TrimSpace(s) == "" {
			continue
		}
		indent := len(s) - len(strings.TrimLeftFunc(s, unicode.IsSpace))
		indent = utf8.RuneCountInString(s[:indent])
		return l, indent, indent
	}
	return line, e.Pos.Column - 1, 0
}
