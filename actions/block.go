package actions

import (
	"context"
	"errors"
	"log/slog"
)

// Blocker records that a verdict refused an image at a target. Nothing is
// copied; the refusal goes to the result (so the run report shows it)
// and, as a warning, to the audit log.
type Blocker struct{ o *options }

// NewBlocker returns the block executor.
func NewBlocker(opts ...Option) (*Blocker, error) {
	o, err := newOptions(opts)
	if err != nil {
		return nil, err
	}
	return &Blocker{o: o}, nil
}

// Execute records the refusal of t.
func (b *Blocker) Execute(ctx context.Context, t Task) (Result, error) {
	if t.Verdict == nil {
		return Result{Outcome: Failed}, errors.New("block: the task has no verdict")
	}
	b.o.logger.LogAttrs(ctx, slog.LevelWarn, "blocked",
		slog.String("image", imageRef(t.Image)), slog.String("target", t.Target),
		slog.String("policy", t.Policy), slog.String("reason", t.Verdict.Reason), slog.Bool("dryRun", t.DryRun))
	return Result{Outcome: Blocked, DryRun: t.DryRun, Detail: t.Verdict.Reason}, nil
}
