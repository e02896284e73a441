package schedule

import "time"

// Clock tells the time and wakes the scheduler at a given time. Waking at
// an absolute time (not after a duration) lets a fake clock be advanced
// before or after the scheduler asks, with the same result.
type Clock interface {
	Now() time.Time
	// WakeAt returns a channel that receives once the clock reaches t
	// (at once when it already has), and a function that releases it.
	WakeAt(t time.Time) (<-chan time.Time, func())
}

// realClock is the wall clock.
type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) WakeAt(t time.Time) (<-chan time.Time, func()) {
	timer := time.NewTimer(time.Until(t))
	return timer.C, func() { timer.Stop() }
}
