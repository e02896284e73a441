package conditions

import (
	"regexp/syntax"

	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/overloads"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"github.com/Masterminds/semver/v3"
	"github.com/bmatcuk/doublestar/v4"
)

// A copy of a template differs from it only in literal values, so of the
// environment's AST validators only those that read literal values can
// judge it differently. For the validators NewEnv installs, that is a
// literal in the argument position of matches (cel-go's regex validator),
// of glob, semver or satisfies (literalValidator), or anywhere under
// duration, timestamp or format (cel-go's duration, timestamp and string
// format validators, which evaluate the call). The others (homogeneous
// literals, comprehension nesting) read types and structure only, which
// copies share. literalChecks finds, for each hole, the check that
// stands for its validator, so a copy needs no walk over its tree; when
// a validator is not one of these, or a hole sits under a call that a
// validator evaluates, every validator runs on every copy.

type literalCheck uint8

const (
	checkNone literalCheck = iota
	checkRegex
	checkGlob
	checkSemver
	checkConstraint
)

// valueBlindValidators read no literal value; valueValidators are the
// ones literalChecks stands for.
var (
	valueBlindValidators = map[string]bool{
		"cel.validator.homogeneous_literals":        true,
		"cel.validator.comprehension_nesting_limit": true,
	}
	valueValidators = map[string]bool{
		"cel.validator.duration":       true,
		"cel.validator.timestamp":      true,
		"cel.validator.matches":        true,
		"cel.validator.string_format":  true,
		"celpolicy.validator.literals": true,
	}
	// evaluatedCalls are the functions whose validators evaluate the
	// whole call: a hole anywhere under one needs the validator itself.
	evaluatedCalls = map[string]bool{
		overloads.TypeConvertDuration:  true,
		overloads.TypeConvertTimestamp: true,
		"format":                       true,
	}
)

// literalChecks returns the check of each hole (by literal ID), or false
// when the template's copies must run the validators themselves.
func literalChecks(checked *ast.AST, validatorNames []string, holes map[int64]bool) (map[int64]literalCheck, bool) {
	for _, n := range validatorNames {
		if !valueBlindValidators[n] && !valueValidators[n] {
			return nil, false
		}
	}
	checks := map[int64]literalCheck{}
	ok := walkChecks(checked.Expr(), false, holes, checks)
	return checks, ok
}

func walkChecks(e ast.Expr, evaluated bool, holes map[int64]bool, checks map[int64]literalCheck) bool {
	if holes[e.ID()] && evaluated {
		return false
	}
	switch e.Kind() {
	case ast.SelectKind:
		return walkChecks(e.AsSelect().Operand(), evaluated, holes, checks)
	case ast.CallKind:
		c := e.AsCall()
		fn := c.FunctionName()
		under := evaluated || evaluatedCalls[fn]
		args := c.Args()
		if len(args) > 0 && holes[args[0].ID()] {
			// As cel-go's formatValidator and literalValidator pick
			// their literal: the first argument, the target excluded.
			switch {
			case fn == overloads.Matches:
				checks[args[0].ID()] = checkRegex
			case len(args) == 1 && fn == "glob" && c.IsMemberFunction():
				checks[args[0].ID()] = checkGlob
			case len(args) == 1 && fn == "semver" && !c.IsMemberFunction():
				checks[args[0].ID()] = checkSemver
			case len(args) == 1 && fn == "satisfies":
				checks[args[0].ID()] = checkConstraint
			}
		}
		if c.IsMemberFunction() && !walkChecks(c.Target(), under, holes, checks) {
			return false
		}
		for _, a := range args {
			if !walkChecks(a, under, holes, checks) {
				return false
			}
		}
	case ast.ListKind:
		for _, el := range e.AsList().Elements() {
			if !walkChecks(el, evaluated, holes, checks) {
				return false
			}
		}
	case ast.MapKind:
		for _, en := range e.AsMap().Entries() {
			m := en.AsMapEntry()
			if !walkChecks(m.Key(), evaluated, holes, checks) || !walkChecks(m.Value(), evaluated, holes, checks) {
				return false
			}
		}
	case ast.StructKind:
		for _, f := range e.AsStruct().Fields() {
			if !walkChecks(f.AsStructField().Value(), evaluated, holes, checks) {
				return false
			}
		}
	case ast.ComprehensionKind:
		// markPath refuses holes under comprehensions; nothing to check.
	}
	return true
}

// parseRegex parses pattern as regexp.Compile, which cel-go's regex
// validator calls, does. regexp.Compile fails only when this parse fails:
// the rest (simplify, program, one-pass) cannot, and costs most of the
// time. TestParseRegexIsRegexpCompile holds this to the regexp package.
func parseRegex(pattern string) (*syntax.Regexp, error) {
	return syntax.Parse(pattern, syntax.Perl)
}

// check reports whether a literal passes its check, as the validator it
// stands for would let it, and returns a regex literal parsed.
func (c literalCheck) check(v ref.Val) (*syntax.Regexp, bool) {
	s, ok := v.(types.String)
	if !ok {
		return nil, c == checkNone
	}
	switch c {
	case checkRegex:
		re, err := parseRegex(string(s))
		return re, err == nil
	case checkGlob:
		return nil, doublestar.ValidatePattern(string(s))
	case checkSemver:
		_, err := semver.NewVersion(string(s))
		return nil, err == nil
	case checkConstraint:
		_, err := semver.NewConstraint(string(s))
		return nil, err == nil
	}
	return nil, true
}
