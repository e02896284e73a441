package conditions

import (
	"fmt"
	"strings"
	"sync/atomic"
	"unicode/utf8"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/cost"
)

// Issue is one problem with an expression, positioned inside the
// expression text: Line and Column are 1-based, Column and Offset count
// Unicode code points, as CEL does.
type Issue struct {
	Line, Column int
	Offset       int
	Message      string
}

// CompileError is every issue found compiling one expression.
type CompileError struct {
	Issues []Issue
}

func (e *CompileError) Error() string {
	parts := make([]string, len(e.Issues))
	for i, is := range e.Issues {
		parts[i] = fmt.Sprintf("%d:%d: %s", is.Line, is.Column, is.Message)
	}
	return strings.Join(parts, "; ")
}

// CompileOption adjusts how Compile plans a program.
type CompileOption func(*compileOptions)

type compileOptions struct {
	untrackedBelow uint64
	shapes         *Shapes
	noNative       bool
}

// PlanUntrackedBelow plans the program without runtime cost tracking when
// its static estimate is at most cost (see Program.Tracked for inputs
// beyond the estimate's bounds). Tracking costs about a third of a simple
// evaluation; planning twice to drop it would cost a third of a compile.
func PlanUntrackedBelow(cost uint64) CompileOption {
	return func(o *compileOptions) { o.untrackedBelow = cost }
}

// PlanWithCEL plans the program with cel-go's interpreter even when the
// native evaluator covers the expression: for comparing the two, and for
// callers that want cel-go's evaluation alone.
func PlanWithCEL() CompileOption {
	return func(o *compileOptions) { o.noNative = true }
}

// Compile parses, type-checks and cost-checks one expression and plans its
// program. want is the type the expression must have (cel.BoolType,
// cel.StringType) or nil for any type. A problem with the expression is a
// *CompileError.
func (e *Env) Compile(expr string, scope Scope, want *cel.Type, opts ...CompileOption) (*Program, error) {
	var o compileOptions
	for _, opt := range opts {
		opt(&o)
	}
	env := e.scopes[scope]
	ast, iss, inst := o.shapes.compile(env, expr)
	if iss.Err() != nil {
		ce := &CompileError{}
		for _, err := range iss.Errors() {
			line, col := err.Location.Line(), err.Location.Column()+1
			off := offsetOf(expr, line, col)
			msg, back := e.explainIssue(expr, off, err.Message, scope)
			ce.Issues = append(ce.Issues, Issue{Line: line, Column: col - back, Offset: off - back, Message: msg})
		}
		return nil, ce
	}
	out := ast.OutputType()
	if want != nil && !want.IsAssignableType(out) && out != cel.DynType {
		return nil, &CompileError{Issues: []Issue{{Line: 1, Column: 1,
			Message: fmt.Sprintf("expression must be of type %s, but it is %s", want, out)}}}
	}
	est, err := o.shapes.estimateCost(inst, func() (cost.CostEstimate, error) { return env.EstimateCost(ast, estimator{}) })
	if err != nil {
		return nil, &CompileError{Issues: []Issue{{Line: 1, Column: 1, Message: "estimate cost: " + err.Error()}}}
	}
	if est.Max > e.staticLimit {
		return nil, &CompileError{Issues: []Issue{{Line: 1, Column: 1, Message: fmt.Sprintf(
			"worst-case cost %s exceeds the limit of %d: iterate over fewer or smaller lists and maps, avoid nested loops and regular expressions inside loops",
			costString(est.Max), e.staticLimit)}}}
	}
	p := &Program{env: env, ast: &atomic.Pointer[cel.Ast]{}, out: ast.OutputType(), text: expr,
		want: want, cost: est.Max, runtimeLimit: e.runtimeLimit}
	// An expression the native evaluator covers runs without cel-go's
	// interpreter, when it may run untracked at all; cel-go plans the rest.
	if est.Max <= o.untrackedBelow && !o.noNative {
		p.native, _ = nativeCompile(ast.NativeRep(), inst.regex)
	}
	if p.native == nil {
		planOpts := []cel.ProgramOption{cel.InterruptCheckFrequency(e.interruptFreq), cel.EvalOptions(cel.OptOptimize)}
		if est.Max > o.untrackedBelow {
			planOpts = append(planOpts, cel.CostLimit(e.runtimeLimit))
		}
		prg, err := env.Program(ast, planOpts...)
		if err != nil {
			return nil, &CompileError{Issues: []Issue{{Line: 1, Column: 1, Message: "plan program: " + err.Error()}}}
		}
		p.prg = prg
	}
	p.ast.Store(ast)
	p.trace = lazyTracer(env, p.AST, e.runtimeLimit)
	return p, nil
}

func costString(c uint64) string {
	if c == ^uint64(0) {
		return "(unbounded)"
	}
	return fmt.Sprint(c)
}

// explainIssue rewrites CEL messages that are hard to read in a policy
// file. It returns the message and how many code points the position
// should move back: CEL places an undeclared `variables.x` at the dot.
func (e *Env) explainIssue(expr string, off int, msg string, scope Scope) (string, int) {
	const ref = "undeclared reference to '"
	switch {
	case strings.HasPrefix(msg, ref+"variables"):
		back := 0
		if off >= len("variables") && identAfter(expr, off-len("variables"), "variables.") != "" {
			back = len("variables")
		}
		name := identAfter(expr, off-back, "variables.")
		declared := "no variables are declared before this point"
		if len(e.variables) > 0 {
			declared = "declared before this point: " + strings.Join(e.variables, ", ")
		}
		if name == "" {
			return "undefined variable (" + declared + ")", back
		}
		return fmt.Sprintf("undefined variable %q (%s)", name, declared), back
	case strings.HasPrefix(msg, ref+"target'") && scope == ImageScope:
		return "target is not available here: match, conditions and variables are evaluated once per image; use target in an action's where, repository, tag or reason", 0
	}
	return msg, 0
}

// identAfter returns the identifier that follows prefix at rune offset off.
func identAfter(expr string, off int, prefix string) string {
	rs := []rune(expr)
	if off < 0 || off > len(rs) {
		return ""
	}
	rest := string(rs[off:])
	if !strings.HasPrefix(rest, prefix) {
		return ""
	}
	rest = rest[len(prefix):]
	end := strings.IndexFunc(rest, func(r rune) bool {
		return !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
	})
	if end < 0 {
		end = len(rest)
	}
	return rest[:end]
}

// offsetOf converts a 1-based line and column (in code points) to a rune
// offset in s.
func offsetOf(s string, line, col int) int {
	off, l := 0, 1
	for l < line {
		i := strings.IndexByte(s, '\n')
		if i < 0 {
			break
		}
		off += utf8.RuneCountInString(s[:i+1])
		s = s[i+1:]
		l++
	}
	return off + col - 1
}
