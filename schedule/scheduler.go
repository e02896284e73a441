package schedule

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/celpolicy/celpolicy/engine"
	"github.com/robfig/cron/v3"
)

// RunFunc runs one pass for a policy. It should return when ctx is done.
type RunFunc func(ctx context.Context, policy string) error

// Observer hears about runs, e.g. to count them as metrics. Its methods
// are called from job goroutines and must be safe for concurrent use.
type Observer interface {
	// Ran reports a finished run; err is nil on success, and reports a
	// recovered panic as an error.
	Ran(policy string, err error)
	// Skipped reports a run not started because the previous one of the
	// same policy was still going.
	Skipped(policy string)
}

type options struct {
	clock    Clock
	logger   *slog.Logger
	observer Observer
	location *time.Location
}

// Option configures a Scheduler.
type Option func(*options) error

// WithClock sets the clock. Default: the wall clock.
func WithClock(c Clock) Option {
	return func(o *options) error {
		if c == nil {
			return errors.New("clock must not be nil")
		}
		o.clock = c
		return nil
	}
}

// WithLogger sets where runs, skips and panics are logged. Default: discard.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return errors.New("logger must not be nil")
		}
		o.logger = l
		return nil
	}
}

// WithObserver sets who hears about runs and skips. Default: nobody.
func WithObserver(ob Observer) Option {
	return func(o *options) error {
		if ob == nil {
			return errors.New("observer must not be nil")
		}
		o.observer = ob
		return nil
	}
}

// WithLocation sets the time zone schedules are read in, unless a
// schedule names its own with CRON_TZ=. Default: UTC.
func WithLocation(loc *time.Location) Option {
	return func(o *options) error {
		if loc == nil {
			return errors.New("location must not be nil")
		}
		o.location = loc
		return nil
	}
}

// Scheduler runs policies on their schedules. Safe for concurrent use.
type Scheduler struct {
	run RunFunc
	o   options

	mu      sync.Mutex
	entries map[string]*entry
	replan  chan struct{}
	running sync.WaitGroup
	stopped bool
	// jobCtx is what running jobs get; cancelled when Stop gives up.
	jobCtx    context.Context
	cancelJob context.CancelFunc
}

type entry struct {
	policy   string
	spec     string
	schedule cron.Schedule
	next     time.Time
	prev     time.Time
	running  bool
}

// Entry is a planned job, for status pages and tests.
type Entry struct {
	Policy  string
	Spec    string
	Next    time.Time
	Prev    time.Time
	Running bool
}

// New returns a scheduler with no jobs; Plan gives it some.
func New(run RunFunc, opts ...Option) (*Scheduler, error) {
	if run == nil {
		return nil, errors.New("run function must not be nil")
	}
	o := options{clock: realClock{}, logger: slog.New(slog.DiscardHandler), observer: nopObserver{}, location: time.UTC}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	jobCtx, cancel := context.WithCancel(context.Background())
	return &Scheduler{run: run, o: o, entries: map[string]*entry{}, replan: make(chan struct{}, 1),
		jobCtx: jobCtx, cancelJob: cancel}, nil
}

type nopObserver struct{}

func (nopObserver) Ran(string, error) {}
func (nopObserver) Skipped(string)    {}

// Next returns the first time after t at which spec fires, in loc unless
// spec names its own zone.
func Next(spec string, after time.Time, loc *time.Location) (time.Time, error) {
	s, err := engine.ParseSchedule(spec)
	if err != nil {
		return time.Time{}, fmt.Errorf("schedule %q: %w", spec, err)
	}
	return s.Next(after.In(loc)), nil
}

// Plan makes the jobs those of set: one per policy with a schedule. Jobs
// whose schedule did not change keep their next time; a running job of a
// removed policy finishes, and is not started again.
func (s *Scheduler) Plan(set *engine.PolicySet) error {
	now := s.o.clock.Now().In(s.o.location)
	want := map[string]string{}
	for _, p := range set.Policies() {
		if p.Schedule != nil {
			want[p.Name] = p.Schedule.Value
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, e := range s.entries {
		if spec, ok := want[name]; !ok || spec != e.spec {
			delete(s.entries, name)
			s.o.logger.Info("schedule removed", "policy", name, "schedule", e.spec)
		}
	}
	for name, spec := range want {
		if _, ok := s.entries[name]; ok {
			continue
		}
		sched, err := engine.ParseSchedule(spec)
		if err != nil {
			return fmt.Errorf("policy %q: schedule %q: %w", name, spec, err)
		}
		e := &entry{policy: name, spec: spec, schedule: sched, next: sched.Next(now)}
		s.entries[name] = e
		s.o.logger.Info("schedule planned", "policy", name, "schedule", spec, "next", e.next)
	}
	select {
	case s.replan <- struct{}{}:
	default:
	}
	return nil
}

// Entries returns the planned jobs sorted by policy name.
func (s *Scheduler) Entries() []Entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Entry, 0, len(s.entries))
	for _, e := range s.entries {
		out = append(out, Entry{Policy: e.policy, Spec: e.spec, Next: e.next, Prev: e.prev, Running: e.running})
	}
	slices.SortFunc(out, func(a, b Entry) int {
		switch {
		case a.Policy < b.Policy:
			return -1
		case a.Policy > b.Policy:
			return 1
		}
		return 0
	})
	return out
}

// Run starts due jobs until ctx is done or Stop is called. Call it once.
func (s *Scheduler) Run(ctx context.Context) {
	for {
		s.mu.Lock()
		if s.stopped {
			s.mu.Unlock()
			return
		}
		now := s.o.clock.Now()
		var wake time.Time
		for _, e := range s.entries {
			if !e.next.After(now) {
				s.startLocked(e, now)
			}
			if wake.IsZero() || e.next.Before(wake) {
				wake = e.next
			}
		}
		s.mu.Unlock()

		var timer <-chan time.Time
		release := func() {}
		if !wake.IsZero() {
			timer, release = s.o.clock.WakeAt(wake)
		}
		select {
		case <-ctx.Done():
			release()
			return
		case <-timer:
		case <-s.replan:
		}
		release()
	}
}

// startLocked starts e's job unless it is still running, and plans its
// next time. s.mu is held.
func (s *Scheduler) startLocked(e *entry, now time.Time) {
	e.next = e.schedule.Next(now.In(s.o.location))
	if e.running {
		s.o.logger.Warn("scheduled run skipped: the previous run is still going", "policy", e.policy)
		s.o.observer.Skipped(e.policy)
		return
	}
	e.running = true
	e.prev = now
	s.running.Add(1)
	go s.runJob(e)
}

func (s *Scheduler) runJob(e *entry) {
	defer s.running.Done()
	err := s.safeRun(e.policy)
	s.mu.Lock()
	e.running = false
	s.mu.Unlock()
	if err != nil {
		s.o.logger.Error("scheduled run failed", "policy", e.policy, "error", err.Error())
	} else {
		s.o.logger.Info("scheduled run finished", "policy", e.policy)
	}
	s.o.observer.Ran(e.policy, err)
}

// safeRun turns a panic in a job into an error, so that one bad run
// neither kills the process nor stops the schedule.
func (s *Scheduler) safeRun(policy string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			s.o.logger.Error("scheduled run panicked", "policy", policy, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return s.run(s.jobCtx, policy)
}

// Stop starts no more jobs and waits for running ones. When ctx is done
// first, it cancels their context and returns ctx's error without waiting
// further.
func (s *Scheduler) Stop(ctx context.Context) error {
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
	select {
	case s.replan <- struct{}{}:
	default:
	}
	done := make(chan struct{})
	go func() {
		s.running.Wait()
		close(done)
	}()
	select {
	case <-done:
		s.cancelJob()
		return nil
	case <-ctx.Done():
		s.cancelJob()
		return fmt.Errorf("stop scheduler: running jobs did not finish: %w", ctx.Err())
	}
}
