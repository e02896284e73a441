// Package schedule runs policies on their cron schedules: each policy
// with a `schedule` becomes a job that starts a replication pass over the
// policy's sources at the times robfig/cron computes.
//
// Jobs never overlap with themselves (a run still going when the next is
// due is skipped and reported), recover from panics, and are re-planned
// when the policy set changes. The clock is injected, so tests drive time
// without sleeping.
//
//	s, _ := schedule.New(func(ctx context.Context, policy string) error {
//		return runPass(ctx, policy)
//	})
//	s.Plan(set)          // again after every reload
//	go s.Run(ctx)
//	...
//	err := s.Stop(shutdownCtx) // waits for running passes
package schedule
