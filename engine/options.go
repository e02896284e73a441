package engine

import (
	"errors"
	"fmt"
	"time"

	"github.com/celpolicy/celpolicy/conditions"
)

// Combining says how the verdicts of several matched policies about one
// target combine.
type Combining string

const (
	// Priority (the default): the highest-priority policy that speaks
	// about a target wins; between policies of equal priority, block wins.
	Priority Combining = "priority"
	// DenyOverrides: any block wins.
	DenyOverrides Combining = "deny-overrides"
	// FirstMatch: only the highest-priority matched policy applies.
	FirstMatch Combining = "first-match"
)

// ParseCombining accepts the names used in flags and configuration.
func ParseCombining(s string) (Combining, error) {
	switch c := Combining(s); c {
	case Priority, DenyOverrides, FirstMatch:
		return c, nil
	}
	return "", fmt.Errorf("unknown combining algorithm %q (want priority, deny-overrides or first-match)", s)
}

type options struct {
	combining Combining
	clock     func() time.Time
	env       *conditions.Env
	noIndex   bool
	memo      int
	prev      *PolicySet
}

// Option configures how a PolicySet is compiled and evaluates.
type Option func(*options) error

// WithCombining sets the combining algorithm. Default: Priority.
func WithCombining(c Combining) Option {
	return func(o *options) error {
		if _, err := ParseCombining(string(c)); err != nil {
			return err
		}
		o.combining = c
		return nil
	}
}

// WithClock sets where `now` comes from when an evaluation does not fix
// it with At. Default: time.Now.
func WithClock(now func() time.Time) Option {
	return func(o *options) error {
		if now == nil {
			return errors.New("clock must not be nil")
		}
		o.clock = now
		return nil
	}
}

// WithEnv sets the CEL environment, e.g. one with other cost limits.
// Default: conditions.NewEnv().
func WithEnv(env *conditions.Env) Option {
	return func(o *options) error {
		if env == nil {
			return errors.New("environment must not be nil")
		}
		o.env = env
		return nil
	}
}

// WithoutIndex evaluates every policy for every image, as a plain loop
// in priority order. Decisions are the same; the index only makes them
// faster. It exists to measure the index and to check it. Default: the
// index narrows the policies evaluated.
func WithoutIndex() Option {
	return func(o *options) error {
		o.noIndex = true
		return nil
	}
}
