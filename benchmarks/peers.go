package benchmarks

import (
	"context"
	"fmt"
	"slices"
	"time"

	"cel.dev/cel-go/cel"
	"github.com/bmatcuk/doublestar/v4"
	"github.com/celpolicy/celpolicy/conditions"
	"github.com/celpolicy/celpolicy/engine"
	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
)

// A Decider is one engine compiled with a workload: it names the
// policies that match an image. Each one is safe for concurrent use.
type Decider interface {
	Decide(ctx context.Context, img *conditions.Image) ([]string, error)
}

// Input is an image converted once to what a peer reads, so that a
// benchmark of the peer measures its decision and not the conversion.
type Input any

// Celpolicy compiles the workload with the engine (parse and compile).
func Celpolicy(w *Workload, opts ...engine.Option) (*engine.PolicySet, error) {
	src := w.YAML
	if src == nil {
		src = w.Policies()
	}
	b, err := engine.Parse(w.Name+".yaml", src)
	if err != nil {
		return nil, err
	}
	return engine.Compile(b, opts...)
}

// CelpolicyDecider decides with a compiled PolicySet.
type CelpolicyDecider struct{ Set *engine.PolicySet }

// Decide implements Decider.
func (d CelpolicyDecider) Decide(ctx context.Context, img *conditions.Image) ([]string, error) {
	dec, err := d.Set.Evaluate(ctx, img, engine.At(Now))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, m := range dec.Matched {
		out = append(out, m.Policy)
	}
	return sorted(out), nil
}

// OPA is the workload's Rego module prepared for evaluation: one rule
// body per policy, so OPA's rule indexing narrows the bodies it runs.
type OPA struct{ Query rego.PreparedEvalQuery }

// NewOPA parses, compiles and prepares the workload's Rego.
func NewOPA(ctx context.Context, w *Workload) (*OPA, error) {
	q, err := rego.New(rego.Query("data.celpolicy.match"), rego.Module(w.Name+".rego", w.Rego)).PrepareForEval(ctx)
	if err != nil {
		return nil, err
	}
	return &OPA{Query: q}, nil
}

// OPAInput converts an image once to OPA's input value; age is derived
// from Now as celpolicy derives it.
func OPAInput(img *conditions.Image) (ast.Value, error) {
	labels := map[string]any{}
	for k, v := range img.Labels {
		labels[k] = v
	}
	var age int64
	if !img.Created.IsZero() {
		age = int64(Now.Sub(img.Created))
	}
	return ast.InterfaceToValue(map[string]any{
		"registry": img.Registry, "repository": img.Repository, "tag": img.Tag,
		"labels": labels, "size": img.Size, "age": age,
	})
}

// Eval decides a converted input.
func (o *OPA) Eval(ctx context.Context, in ast.Value) ([]string, error) {
	rs, err := o.Query.Eval(ctx, rego.EvalParsedInput(in))
	if err != nil {
		return nil, err
	}
	if len(rs) != 1 || len(rs[0].Expressions) != 1 {
		return nil, fmt.Errorf("opa: unexpected result %v", rs)
	}
	vals, _ := rs[0].Expressions[0].Value.([]any)
	out := make([]string, 0, len(vals))
	for _, v := range vals {
		out = append(out, v.(string))
	}
	return out, nil
}

// Decide implements Decider.
func (o *OPA) Decide(ctx context.Context, img *conditions.Image) ([]string, error) {
	in, err := OPAInput(img)
	if err != nil {
		return nil, err
	}
	out, err := o.Eval(ctx, in)
	return sorted(out), err
}

// ExprImage is the environment of the expr-lang programs.
type ExprImage struct {
	Registry, Repository, Tag string
	Labels                    map[string]string
	Size                      int64
	Age                       time.Duration
}

// ExprInput converts an image once to expr-lang's environment.
func ExprInput(img *conditions.Image) *ExprImage {
	e := &ExprImage{Registry: img.Registry, Repository: img.Repository, Tag: img.Tag, Labels: img.Labels, Size: img.Size}
	if !img.Created.IsZero() {
		e.Age = Now.Sub(img.Created)
	}
	return e
}

// Expr is the workload as a loop over compiled expr-lang programs.
type Expr struct {
	Programs []*vm.Program
	names    []string
}

// NewExpr compiles every policy of the workload with expr-lang; glob is
// provided with the same library celpolicy uses.
func NewExpr(w *Workload) (*Expr, error) {
	opts := []expr.Option{expr.Env(&ExprImage{}), expr.AsBool(),
		expr.Function("glob", func(p ...any) (any, error) {
			return doublestar.Match(p[1].(string), p[0].(string))
		}, new(func(string, string) bool))}
	e := &Expr{Programs: make([]*vm.Program, len(w.Expr)), names: w.Names}
	for i, src := range w.Expr {
		prg, err := expr.Compile(src, opts...)
		if err != nil {
			return nil, fmt.Errorf("policy %d: %w", i, err)
		}
		e.Programs[i] = prg
	}
	return e, nil
}

// Eval runs every program against a converted input; one vm.VM is
// reused as expr-lang recommends for loops.
func (e *Expr) Eval(in *ExprImage) ([]int, error) {
	var machine vm.VM
	var out []int
	for i, p := range e.Programs {
		v, err := machine.Run(p, in)
		if err != nil {
			return nil, err
		}
		if v.(bool) {
			out = append(out, i)
		}
	}
	return out, nil
}

// Decide implements Decider.
func (e *Expr) Decide(_ context.Context, img *conditions.Image) ([]string, error) {
	idx, err := e.Eval(ExprInput(img))
	return pick(e.names, idx), err
}

// CELLoop is the workload as a plain loop over cel-go programs compiled in
// celpolicy's environment: no index, no decision, just the conditions.
type CELLoop struct {
	Programs []*conditions.Program
	names    []string
}

// NewCELLoop compiles every condition of the workload.
func NewCELLoop(w *Workload) (*CELLoop, error) {
	env, err := conditions.NewEnv()
	if err != nil {
		return nil, err
	}
	l := &CELLoop{Programs: make([]*conditions.Program, len(w.CEL)), names: w.Names}
	for i, src := range w.CEL {
		prg, err := env.Compile(src, conditions.ImageScope, cel.BoolType)
		if err != nil {
			return nil, fmt.Errorf("policy %d: %w", i, err)
		}
		l.Programs[i] = prg
	}
	return l, nil
}

// Eval runs every program against one activation. A program that fails
// (a missing label) does not match.
func (l *CELLoop) Eval(ctx context.Context, act *conditions.Activation) []int {
	var out []int
	for i, p := range l.Programs {
		if ok, err := p.EvalBool(ctx, act); err == nil && ok {
			out = append(out, i)
		}
	}
	return out
}

// Decide implements Decider.
func (l *CELLoop) Decide(ctx context.Context, img *conditions.Image) ([]string, error) {
	return pick(l.names, l.Eval(ctx, conditions.NewActivation(img, Now))), nil
}

func pick(names []string, idx []int) []string {
	var out []string
	for _, i := range idx {
		out = append(out, names[i])
	}
	return out
}

func sorted(s []string) []string {
	slices.Sort(s)
	return s
}
