package engine

import (
	"runtime"
	"sync"
	"sync/atomic"

	"cel.dev/cel-go/cel"
	"github.com/celpolicy/celpolicy/conditions"
)

// parallel calls fn(0..n-1) on up to GOMAXPROCS goroutines.
func parallel(n int, fn func(i int)) {
	workers := min(runtime.GOMAXPROCS(0), n)
	if workers <= 1 {
		for i := range n {
			fn(i)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				fn(i)
			}
		})
	}
	wg.Wait()
}

// programCache shares the program of an expression text among the
// policies of one compilation: policies generated from a template repeat
// the same where, repository and reason expressions. Programs are
// immutable; errors are not cached, so each policy reports its own.
//
// It also plans programs without cost tracking where that is safe (see
// conditions.PlanUntrackedBelow); the evaluator plans their tracked twin
// for images beyond the cost estimate's bounds.
//
// Expressions that differ only in literal values share their parsing and
// type-checking through shapes (see conditions.Shapes).
type programCache struct {
	m      sync.Map // programKey -> *conditions.Program
	shapes *conditions.Shapes
	envs   sync.Map // variableKey -> *variableEnv
}

type programKey struct {
	env   *conditions.Env
	scope conditions.Scope
	want  string
	text  string
}

func (c *programCache) compile(env *conditions.Env, text string, scope conditions.Scope, want *cel.Type) (*conditions.Program, error) {
	k := programKey{env: env, scope: scope, text: text}
	if want != nil {
		k.want = want.String()
	}
	if p, ok := c.m.Load(k); ok {
		return p.(*conditions.Program), nil
	}
	p, err := env.Compile(text, scope, want, conditions.PlanUntrackedBelow(env.RuntimeCostLimit()/2),
		conditions.WithShapes(c.shapes))
	if err != nil {
		return nil, err
	}
	actual, _ := c.m.LoadOrStore(k, p)
	return actual.(*conditions.Program), nil
}

type variableKey struct {
	parent     *conditions.Env
	name, kind string
}

type variableEnv struct {
	typ *cel.Type
	env *conditions.Env
}

// withVariable returns parent with v declared, the same Env each time
// for the same parent and declaration: policies generated from one
// template declare the same variables, and sharing their environment
// lets their expressions share shapes and programs, which are per
// environment, and saves cel-go setting up a checker for each policy.
func (c *programCache) withVariable(parent *conditions.Env, v conditions.Variable) (*conditions.Env, error) {
	k := variableKey{parent: parent, name: v.Name, kind: v.Type.String()}
	if e, ok := c.envs.Load(k); ok {
		if ve := e.(*variableEnv); ve.typ.IsExactType(v.Type) {
			return ve.env, nil
		}
	}
	env, err := parent.WithVariables(v)
	if err != nil {
		return nil, err
	}
	e, _ := c.envs.LoadOrStore(k, &variableEnv{typ: v.Type, env: env})
	if ve := e.(*variableEnv); ve.typ.IsExactType(v.Type) {
		return ve.env, nil
	}
	return env, nil
}
