package conditions

import (
	"errors"
	"fmt"
	"strings"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/ext"
)

// EnvironmentVersion identifies the declarations and function library of
// the environment. It changes whenever an expression could compile or
// evaluate differently, so compiled programs keyed by it can be reused.
const EnvironmentVersion = "celpolicy.dev/env/v1"

// Type names of the declared values, as they appear in CEL error messages.
const (
	ImageTypeName  = "celpolicy.Image"
	TargetTypeName = "celpolicy.Target"
)

// Scope says which values an expression may read.
type Scope int

const (
	// ImageScope expressions (match, conditions, variables) read image,
	// now and variables.
	ImageScope Scope = iota
	// TargetScope expressions (an action's where, repository, tag and
	// reason) also read target.
	TargetScope
)

func (s Scope) String() string {
	if s == TargetScope {
		return "target"
	}
	return "image"
}

// Env is a CEL environment for policy expressions. It is immutable:
// WithVariables returns a new Env.
type Env struct {
	scopes        [2]*cel.Env
	variables     []string // declared variable names, in order
	staticLimit   uint64
	runtimeLimit  uint64
	interruptFreq uint
}

type options struct {
	staticLimit  uint64
	runtimeLimit uint64
}

// Option configures an Env.
type Option func(*options) error

// WithStaticCostLimit sets the largest worst-case cost estimate an
// expression may have to compile. Default: StaticCostLimit.
func WithStaticCostLimit(limit uint64) Option {
	return func(o *options) error {
		if limit == 0 {
			return errors.New("static cost limit must be greater than zero")
		}
		o.staticLimit = limit
		return nil
	}
}

// WithRuntimeCostLimit sets the cost at which one evaluation of an
// expression is stopped with an error. Default: RuntimeCostLimit.
func WithRuntimeCostLimit(limit uint64) Option {
	return func(o *options) error {
		if limit == 0 {
			return errors.New("runtime cost limit must be greater than zero")
		}
		o.runtimeLimit = limit
		return nil
	}
}

// NewEnv returns the policy environment.
func NewEnv(opts ...Option) (*Env, error) {
	o := options{staticLimit: StaticCostLimit, runtimeLimit: RuntimeCostLimit}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	base, err := cel.NewEnv(
		cel.Types(
			types.NativeTypeFor[Image](types.NativeTypeAlias(ImageTypeName), types.ParseStructTag("json")),
			types.NativeTypeFor[Target](types.NativeTypeAlias(TargetTypeName), types.ParseStructTag("json")),
		),
		cel.Variable("image", cel.ObjectType(ImageTypeName)),
		cel.Variable("now", cel.TimestampType),
		cel.OptionalTypes(),
		ext.Strings(),
		ext.Lists(),
		ext.Sets(),
		Library(),
		cel.ASTValidators(
			cel.ValidateDurationLiterals(),
			cel.ValidateTimestampLiterals(),
			cel.ValidateRegexLiterals(),
			cel.ValidateHomogeneousAggregateLiterals(),
			cel.ValidateComprehensionNestingLimit(2),
		),
	)
	if err != nil {
		return nil, fmt.Errorf("create CEL environment: %w", err)
	}
	withTarget, err := base.Extend(cel.Variable("target", cel.ObjectType(TargetTypeName)))
	if err != nil {
		return nil, fmt.Errorf("create CEL environment: %w", err)
	}
	return &Env{
		scopes:        [2]*cel.Env{base, withTarget},
		staticLimit:   o.staticLimit,
		runtimeLimit:  o.runtimeLimit,
		interruptFreq: 100,
	}, nil
}

// Variable declares one policy variable for WithVariables.
type Variable struct {
	Name string
	Type *cel.Type
}

// WithVariables returns an Env in which `variables.<name>` of each
// variable is declared with its type. Names already declared are an error.
func (e *Env) WithVariables(vars ...Variable) (*Env, error) {
	if len(vars) == 0 {
		return e, nil
	}
	decls := make([]cel.EnvOption, 0, len(vars))
	names := append([]string(nil), e.variables...)
	for _, v := range vars {
		if !isIdentifier(v.Name) {
			return nil, fmt.Errorf("variable name %q is not an identifier (letters, digits and _, not starting with a digit)", v.Name)
		}
		for _, n := range names {
			if n == v.Name {
				return nil, fmt.Errorf("variable %q is declared twice", v.Name)
			}
		}
		names = append(names, v.Name)
		decls = append(decls, cel.Variable(VariablePrefix+v.Name, v.Type))
	}
	next := *e
	next.variables = names
	for i, s := range e.scopes {
		ext, err := s.Extend(decls...)
		if err != nil {
			return nil, fmt.Errorf("declare variables: %w", err)
		}
		next.scopes[i] = ext
	}
	return &next, nil
}

// Variables returns the declared variable names in order.
func (e *Env) Variables() []string { return append([]string(nil), e.variables...) }

// VariablePrefix is how expressions name a policy variable:
// `variables.<name>`. Activations resolve the qualified name.
const VariablePrefix = "variables."

func isIdentifier(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_', r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	// Reserved words cannot be selected as fields.
	switch s {
	case "true", "false", "null", "in", "as", "break", "const", "continue", "else",
		"for", "function", "if", "import", "let", "loop", "package", "namespace",
		"return", "var", "void", "while":
		return false
	}
	return !strings.HasPrefix(s, "__")
}
