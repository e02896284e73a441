package conditions

import "cel.dev/cel-go/cel"

// CELEnv returns the CEL environment the program was checked in, with its
// scope and variables declared, for tools that analyse the AST further:
// constant folding and partial evaluation in lint. Like every cel.Env it
// is immutable.
func (p *Program) CELEnv() *cel.Env { return p.env }
