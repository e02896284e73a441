package conditions

import "cel.dev/cel-go/cel"

// Tracked returns p planned with the runtime cost limit: the program to
// evaluate for an image beyond the cost estimate's bounds when p was
// planned without tracking (PlanUntrackedBelow).
func (p *Program) Tracked() (*Program, error) {
	prg, err := p.env.Program(p.AST(),
		cel.CostLimit(p.runtimeLimit),
		cel.InterruptCheckFrequency(100),
		cel.EvalOptions(cel.OptOptimize),
	)
	if err != nil {
		return nil, err
	}
	c := *p
	c.prg = prg
	c.native = nil
	return &c, nil
}
