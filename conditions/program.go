package conditions

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/interpreter"
	"cel.dev/cel-go/parser"
)

// Program is a compiled expression. It is immutable and safe for
// concurrent use.
type Program struct {
	env *cel.Env
	// ast is the checked expression, or nil once released (ReleaseAST);
	// AST checks the text again then. Shared by the copies Tracked makes.
	ast *atomic.Pointer[cel.Ast]
	out *cel.Type
	// native evaluates the expression when nativeCompile covers it and
	// its cost estimate allows running untracked; prg is then nil.
	native       *nativeProgram
	prg          cel.Program
	text         string
	want         *cel.Type
	cost         uint64
	runtimeLimit uint64

	// The tracing program is planned on first use: explain is rare, and
	// evaluation without it must not pay for state tracking.
	trace func() (*tracer, error)
}

// Text returns the expression as written.
func (p *Program) Text() string { return p.text }

// OutputType returns the type the checker inferred for the expression.
func (p *Program) OutputType() *cel.Type { return p.out }

// CostEstimate returns the worst-case static cost of the expression.
func (p *Program) CostEstimate() uint64 { return p.cost }

// AST returns the checked expression, for tools that inspect it (lint,
// the policy index, explain). After ReleaseAST it checks the text again,
// in the environment it was compiled in, which cannot fail, and does not
// keep the result: those tools are rare, memory is not.
func (p *Program) AST() *cel.Ast {
	if a := p.ast.Load(); a != nil {
		return a
	}
	a, iss := p.env.Compile(p.text)
	if iss.Err() != nil {
		panic(fmt.Sprintf("conditions: %q compiled once and no longer does: %v", p.text, iss.Err()))
	}
	return a
}

// ReleaseAST lets the checked expression go: a planned program does not
// need it, and it is about as large as the program. Holders of many
// programs (a policy set) release them once they have inspected them;
// AST rebuilds it on demand.
func (p *Program) ReleaseAST() { p.ast.Store(nil) }

// Eval evaluates the program. A CEL runtime error (a missing map key, a
// cost limit, a cancelled ctx) is returned as an error.
func (p *Program) Eval(ctx context.Context, act *Activation) (ref.Val, error) {
	if n := p.native; n != nil {
		if n.b != nil {
			b, err := n.b(act)
			if err != nil {
				return nil, err
			}
			return types.Bool(b), nil
		}
		s, err := n.s(act)
		if err != nil {
			return nil, err
		}
		return types.String(s), nil
	}
	val, _, err := p.prg.ContextEval(ctx, act)
	if err != nil {
		return nil, err
	}
	return val, nil
}

// EvalBool evaluates a program that must yield a bool.
func (p *Program) EvalBool(ctx context.Context, act *Activation) (bool, error) {
	if p.native != nil && p.native.b != nil {
		return p.native.b(act)
	}
	val, err := p.Eval(ctx, act)
	if err != nil {
		return false, err
	}
	b, ok := val.(types.Bool)
	if !ok {
		return false, fmt.Errorf("expression returned %s, not bool", val.Type().TypeName())
	}
	return bool(b), nil
}

// EvalString evaluates a program that must yield a string.
func (p *Program) EvalString(ctx context.Context, act *Activation) (string, error) {
	if p.native != nil && p.native.s != nil {
		return p.native.s(act)
	}
	val, err := p.Eval(ctx, act)
	if err != nil {
		return "", err
	}
	s, ok := val.(types.String)
	if !ok {
		return "", fmt.Errorf("expression returned %s, not string", val.Type().TypeName())
	}
	return string(s), nil
}

// Activation binds the values an expression reads. It is built once per
// evaluation and is not safe for concurrent use; programs are.
type Activation struct {
	image  *Image
	own    *Image // Rebind's copy, reused
	now    types.Timestamp
	target *Target
	vars   VariableResolver
}

// VariableResolver supplies `variables.<name>` values, typically computing
// each lazily and at most once per evaluation. A failure is returned as a
// CEL error value (types.NewErr), which propagates like any runtime error.
type VariableResolver interface {
	Variable(name string) (ref.Val, bool)
}

var _ interpreter.Activation = (*Activation)(nil)

// NewActivation binds image and now. The image is copied so that its Age
// can be derived from now without touching the caller's value.
func NewActivation(img *Image, now time.Time) *Activation {
	c := *img
	if !c.Created.IsZero() {
		c.Age = now.Sub(c.Created)
	}
	return &Activation{image: &c, now: types.Timestamp{Time: now}}
}

// WithTarget returns a copy of a that also binds target.
func (a *Activation) WithTarget(t *Target) *Activation {
	c := *a
	c.target = t
	return &c
}

// WithVariables returns a copy of a that resolves variables through r.
func (a *Activation) WithVariables(r VariableResolver) *Activation {
	c := *a
	c.vars = r
	return &c
}

// Image returns the bound image, with Age filled in.
func (a *Activation) Image() *Image { return a.image }

// ResolveName implements interpreter.Activation.
func (a *Activation) ResolveName(name string) (any, bool) {
	switch name {
	case "image":
		return a.image, true
	case "now":
		return a.now, true
	case "target":
		if a.target == nil {
			return nil, false
		}
		return a.target, true
	}
	if a.vars != nil && len(name) > len(VariablePrefix) && name[:len(VariablePrefix)] == VariablePrefix {
		return a.vars.Variable(name[len(VariablePrefix):])
	}
	return nil, false
}

// Parent implements interpreter.Activation.
func (a *Activation) Parent() interpreter.Activation { return nil }

// SubValue is the value one sub-expression had during a traced evaluation.
type SubValue struct {
	Expression string `json:"expression"`
	Value      any    `json:"value"`
}

type tracer struct {
	prg   cel.Program
	nodes []traceNode
}

type traceNode struct {
	id   int64
	text string
}

func (p *Program) tracer() (*tracer, error) {
	return p.trace()
}

func newTracer(env *cel.Env, checked *cel.Ast, runtimeLimit uint64) (*tracer, error) {
	if checked == nil {
		return nil, fmt.Errorf("no checked expression to trace")
	}
	prg, err := env.Program(checked,
		cel.CostLimit(runtimeLimit),
		cel.InterruptCheckFrequency(100),
		cel.EvalOptions(cel.OptExhaustiveEval))
	if err != nil {
		return nil, err
	}
	native := checked.NativeRep()
	info := native.SourceInfo()
	t := &tracer{prg: prg}
	seen := map[string]bool{}
	var walk func(e ast.NavigableExpr)
	walk = func(e ast.NavigableExpr) {
		if !readsInput(e) {
			return // constants such as duration("168h") explain nothing
		}
		switch e.Kind() {
		case ast.LiteralKind:
			return
		case ast.IdentKind:
			// The whole image or target is too large to be an explanation.
			if n := e.AsIdent(); n == "image" || n == "target" {
				return
			}
		case ast.ComprehensionKind:
			// Values inside a loop are those of its last iteration: show
			// the range and the result, not the body.
			t.add(e, info, seen)
			if r, ok := e.AsComprehension().IterRange().(ast.NavigableExpr); ok {
				walk(r)
			}
			return
		}
		if e.Kind() != ast.ListKind && e.Kind() != ast.MapKind {
			t.add(e, info, seen)
		}
		for _, c := range e.Children() {
			walk(c)
		}
	}
	walk(ast.NavigateAST(native))
	return t, nil
}

func (t *tracer) add(e ast.NavigableExpr, info *ast.SourceInfo, seen map[string]bool) {
	text, err := parser.Unparse(e, info)
	if err != nil || seen[text] {
		return
	}
	seen[text] = true
	t.nodes = append(t.nodes, traceNode{id: e.ID(), text: text})
}

// readsInput reports whether an expression reads any variable, i.e. is
// not a constant.
func readsInput(e ast.NavigableExpr) bool {
	if e.Kind() == ast.IdentKind {
		return true
	}
	for _, c := range e.Children() {
		if readsInput(c) {
			return true
		}
	}
	return false
}

// Trace evaluates the program without short-circuits and returns, besides
// the result, the value of each sub-expression in source order (the
// expression itself first). It is much slower than Eval: use it to
// explain, not to decide.
func (p *Program) Trace(ctx context.Context, act *Activation) (ref.Val, []SubValue, error) {
	t, err := p.tracer()
	if err != nil {
		return nil, nil, err
	}
	val, det, evalErr := t.prg.ContextEval(ctx, act)
	var subs []SubValue
	if det != nil && det.State() != nil {
		st := det.State()
		for _, n := range t.nodes {
			if v, ok := st.Value(n.id); ok {
				subs = append(subs, SubValue{Expression: n.text, Value: ToJSON(v)})
			}
		}
	}
	return val, subs, evalErr
}

func lazyTracer(env *cel.Env, checked func() *cel.Ast, runtimeLimit uint64) func() (*tracer, error) {
	return sync.OnceValues(func() (*tracer, error) { return newTracer(env, checked(), runtimeLimit) })
}
