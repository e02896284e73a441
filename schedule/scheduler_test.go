package schedule

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/celpolicy/celpolicy/engine"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeClock moves only when told to. settled tells the test when the
// scheduler has come back to wait after the last move, i.e. has done all
// it had to do at that time.
type fakeClock struct {
	mu      sync.Mutex
	cond    *sync.Cond
	now     time.Time
	waiters map[*waiter]bool
	moves   int // advances so far
	waited  int // the value of moves at the last WakeAt
}

type waiter struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock(now time.Time) *fakeClock {
	c := &fakeClock{now: now, waiters: map[*waiter]bool{}, waited: -1}
	c.cond = sync.NewCond(&c.mu)
	return c
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) WakeAt(t time.Time) (<-chan time.Time, func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := &waiter{at: t, ch: make(chan time.Time, 1)}
	if !t.After(c.now) {
		w.ch <- c.now
	} else {
		c.waiters[w] = true
		c.waited = c.moves
		c.cond.Broadcast()
	}
	return w.ch, func() {
		c.mu.Lock()
		delete(c.waiters, w)
		c.mu.Unlock()
	}
}

// advanceTo moves the clock and fires every waiter that is due.
func (c *fakeClock) advanceTo(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
	c.moves++
	fired := false
	for w := range c.waiters {
		if !w.at.After(t) {
			w.ch <- t
			delete(c.waiters, w)
			fired = true
		}
	}
	if !fired && len(c.waiters) > 0 {
		c.waited = c.moves // nothing woke: the scheduler is still waiting
		c.cond.Broadcast()
	}
}

// settled waits until the scheduler waits for a future time again,
// since the last move.
func (c *fakeClock) settled(t *testing.T) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		c.mu.Lock()
		for c.waited != c.moves {
			c.cond.Wait()
		}
		c.mu.Unlock()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("scheduler did not come back to wait")
	}
}

type recorder struct {
	mu      sync.Mutex
	ran     []string
	errs    []error
	skipped []string
	done    chan string
}

func newRecorder() *recorder { return &recorder{done: make(chan string, 100)} }

func (r *recorder) Ran(p string, err error) {
	r.mu.Lock()
	r.ran = append(r.ran, p)
	r.errs = append(r.errs, err)
	r.mu.Unlock()
	r.done <- p
}

func (r *recorder) Skipped(p string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.skipped = append(r.skipped, p)
}

func (r *recorder) skips() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.skipped...)
}

func (r *recorder) wait(t *testing.T) string {
	t.Helper()
	select {
	case p := <-r.done:
		return p
	case <-time.After(5 * time.Second):
		t.Fatal("no run finished")
		return ""
	}
}

func setWith(t *testing.T, schedules map[string]string) *engine.PolicySet {
	t.Helper()
	var b strings.Builder
	for name, spec := range schedules {
		fmt.Fprintf(&b, "---\napiVersion: celpolicy.dev/v1\nkind: Policy\nmetadata: {name: %s}\nspec:\n  match: \"true\"\n  actions: [{type: block}]\n", name)
		if spec != "" {
			fmt.Fprintf(&b, "  schedule: %q\n", spec)
		}
	}
	bundle, err := engine.Parse("s.yaml", []byte(b.String()))
	require.NoError(t, err)
	set, err := engine.Compile(bundle)
	require.NoError(t, err)
	return set
}

var t0 = time.Date(2026, 11, 27, 12, 0, 30, 0, time.UTC)

func TestNext(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	require.NoError(t, err)
	tests := []struct {
		spec string
		loc  *time.Location
		want time.Time
	}{
		{"*/10 * * * *", time.UTC, time.Date(2026, 11, 27, 12, 10, 0, 0, time.UTC)},
		{"0 */6 * * *", time.UTC, time.Date(2026, 11, 27, 18, 0, 0, 0, time.UTC)},
		{"@daily", time.UTC, time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)},
		{"@every 90s", time.UTC, t0.Add(90 * time.Second).Truncate(time.Second)},
		{"0 3 * * *", paris, time.Date(2026, 11, 28, 2, 0, 0, 0, time.UTC)},
		{"CRON_TZ=Europe/Paris 0 3 * * *", time.UTC, time.Date(2026, 11, 28, 2, 0, 0, 0, time.UTC)},
		{"0 0 1 1 *", time.UTC, time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)},
	}
	for _, tc := range tests {
		t.Run(tc.spec, func(t *testing.T) {
			got, err := Next(tc.spec, t0, tc.loc)
			require.NoError(t, err)
			assert.True(t, tc.want.Equal(got), "got %v, want %v", got, tc.want)
		})
	}
	_, err = Next("61 * * * *", t0, time.UTC)
	assert.ErrorContains(t, err, `schedule "61 * * * *"`)
}

// start runs a scheduler on a fake clock; run is the job.
func start(t *testing.T, set *engine.PolicySet, run RunFunc) (*Scheduler, *fakeClock, *recorder) {
	t.Helper()
	clock := newFakeClock(t0)
	rec := newRecorder()
	s, err := New(run, WithClock(clock), WithObserver(rec))
	require.NoError(t, err)
	require.NoError(t, s.Plan(set))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	clock.settled(t)
	t.Cleanup(func() {
		cancel()
		<-done
		require.NoError(t, s.Stop(context.Background()))
	})
	return s, clock, rec
}

func ok(context.Context, string) error { return nil }

func TestJobsFireAtTheirTimes(t *testing.T) {
	s, clock, rec := start(t, setWith(t, map[string]string{"every10": "*/10 * * * *", "hourly": "@hourly", "none": ""}), ok)
	require.Len(t, s.Entries(), 2, "only policies with a schedule are planned")

	clock.advanceTo(time.Date(2026, 11, 27, 12, 9, 59, 0, time.UTC))
	clock.settled(t)
	assert.Empty(t, rec.ran, "nothing is due before 12:10")

	clock.advanceTo(time.Date(2026, 11, 27, 12, 10, 0, 0, time.UTC))
	assert.Equal(t, "every10", rec.wait(t))
	clock.settled(t)
	e := s.Entries()[0]
	assert.Equal(t, "every10", e.Policy)
	assert.Equal(t, time.Date(2026, 11, 27, 12, 20, 0, 0, time.UTC), e.Next)

	// 13:00: both are due.
	clock.advanceTo(time.Date(2026, 11, 27, 13, 0, 0, 0, time.UTC))
	got := []string{rec.wait(t), rec.wait(t)}
	assert.ElementsMatch(t, []string{"every10", "hourly"}, got)
}

func TestRunsDoNotOverlap(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 10)
	s, clock, rec := start(t, setWith(t, map[string]string{"slow": "* * * * *"}), func(ctx context.Context, _ string) error {
		started <- struct{}{}
		<-release
		return nil
	})
	clock.advanceTo(t0.Add(30 * time.Second)) // 12:01
	<-started
	clock.settled(t)
	clock.advanceTo(t0.Add(90 * time.Second)) // 12:02: still running
	clock.settled(t)
	clock.advanceTo(t0.Add(150 * time.Second)) // 12:03: still running
	clock.settled(t)
	assert.Equal(t, []string{"slow", "slow"}, rec.skips())
	assert.True(t, s.Entries()[0].Running)
	close(release)
	assert.Equal(t, "slow", rec.wait(t))
	clock.advanceTo(t0.Add(210 * time.Second)) // 12:04: runs again
	<-started
	assert.Equal(t, "slow", rec.wait(t))
}

func TestPanicsAreRecovered(t *testing.T) {
	calls := 0
	_, clock, rec := start(t, setWith(t, map[string]string{"bad": "* * * * *"}), func(context.Context, string) error {
		calls++
		if calls == 1 {
			panic("boom")
		}
		return errors.New("plain failure")
	})
	clock.advanceTo(t0.Add(30 * time.Second))
	rec.wait(t)
	clock.settled(t)
	clock.advanceTo(t0.Add(90 * time.Second))
	rec.wait(t)
	require.Len(t, rec.errs, 2)
	assert.EqualError(t, rec.errs[0], "panic: boom")
	assert.EqualError(t, rec.errs[1], "plain failure")
}

func TestReplanOnReload(t *testing.T) {
	s, clock, rec := start(t, setWith(t, map[string]string{"a": "@hourly", "b": "@daily"}), ok)
	require.NoError(t, s.Plan(setWith(t, map[string]string{"a": "*/5 * * * *", "c": "@hourly"})))
	clock.settled(t)
	entries := s.Entries()
	require.Len(t, entries, 2)
	assert.Equal(t, "a", entries[0].Policy)
	assert.Equal(t, "*/5 * * * *", entries[0].Spec)
	assert.Equal(t, time.Date(2026, 11, 27, 12, 5, 0, 0, time.UTC), entries[0].Next)
	assert.Equal(t, "c", entries[1].Policy)
	clock.advanceTo(time.Date(2026, 11, 27, 12, 5, 0, 0, time.UTC))
	assert.Equal(t, "a", rec.wait(t))
}

func TestStopWaitsForRunningJobs(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{})
	var jobCtx context.Context
	clock := newFakeClock(t0)
	s, err := New(func(ctx context.Context, _ string) error {
		jobCtx = ctx
		close(started)
		<-release
		return nil
	}, WithClock(clock))
	require.NoError(t, err)
	require.NoError(t, s.Plan(setWith(t, map[string]string{"p": "* * * * *"})))
	go s.Run(context.Background())
	clock.settled(t)
	clock.advanceTo(t0.Add(30 * time.Second))
	<-started

	// A deadline that passes gives up and cancels the job's context.
	expired, cancel := context.WithCancel(context.Background())
	cancel()
	err = s.Stop(expired)
	require.ErrorIs(t, err, context.Canceled)
	assert.ErrorIs(t, jobCtx.Err(), context.Canceled)

	// Otherwise Stop returns once the job is done.
	stopped := make(chan error)
	go func() { stopped <- s.Stop(context.Background()) }()
	select {
	case <-stopped:
		t.Fatal("Stop returned while a job was running")
	default:
	}
	close(release)
	require.NoError(t, <-stopped)
}

func TestNewValidatesOptions(t *testing.T) {
	_, err := New(nil)
	assert.Error(t, err)
	for _, opt := range []Option{WithClock(nil), WithLogger(nil), WithObserver(nil), WithLocation(nil)} {
		_, err := New(ok, opt)
		assert.Error(t, err)
	}
}
