package celast

import (
	"cel.dev/cel-go/common/ast"
)

// Start returns the offset, in code points of the expression text, where
// sub-expression e begins: the smallest offset in its subtree, since CEL
// places a call at its operator or function name.
func Start(info *ast.SourceInfo, e ast.NavigableExpr) int {
	start := -1
	var walk func(x ast.NavigableExpr)
	walk = func(x ast.NavigableExpr) {
		if r, ok := info.GetOffsetRange(x.ID()); ok && (start < 0 || int(r.Start) < start) {
			start = int(r.Start)
		}
		for _, c := range x.Children() {
			walk(c)
		}
	}
	walk(e)
	return max(start, 0)
}
