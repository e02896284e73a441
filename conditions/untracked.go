package conditions

import "cel.dev/cel-go/cel"

// Untracked returns p planned again without runtime cost tracking, which
// costs a third of a simple evaluation and a cost tracker per program.
// Evaluate it only for images within WithinCostBounds: for those an
// expression cannot cost more than its static estimate, which the
// caller checks is below the runtime limit. For other images, evaluate
// Tracked(). The copy shares p's AST, text and tracer; Trace still stops
// at the runtime limit.
func (p *Program) Untracked() (*Program, error) {
	prg, err := p.env.Program(p.ast,
		cel.InterruptCheckFrequency(100),
		cel.EvalOptions(cel.OptOptimize),
	)
	if err != nil {
		return nil, err
	}
	c := *p
	c.prg = prg
	return &c, nil
}

// Tracked returns p planned with the runtime cost limit, as Env.Compile
// plans it: the program to evaluate for an image beyond the cost
// estimate's bounds when p came from Untracked.
func (p *Program) Tracked() (*Program, error) {
	prg, err := p.env.Program(p.ast,
		cel.CostLimit(p.runtimeLimit),
		cel.InterruptCheckFrequency(100),
		cel.EvalOptions(cel.OptOptimize),
	)
	if err != nil {
		return nil, err
	}
	c := *p
	c.prg = prg
	return &c, nil
}
