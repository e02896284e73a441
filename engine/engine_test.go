package engine

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const reloadTimeout = 2 * time.Second // the promise: a change is in force within 2 s

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	// Write and rename, as editors and config-map updates do.
	tmp := path + ".tmp"
	require.NoError(t, os.WriteFile(tmp, []byte(content), 0o644))
	require.NoError(t, os.Rename(tmp, path))
}

func tagPolicy(tag string) string {
	return policy("tagged", "  match: image.tag == \""+tag+"\"\n"+blockProd)
}

// watched starts an engine on dir with Watch running and returns it with
// a channel of its reload events.
func watched(t *testing.T, dir string, opts ...EngineOption) (*Engine, <-chan ReloadEvent, *bytes.Buffer) {
	t.Helper()
	events := make(chan ReloadEvent, 16)
	var logs bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewJSONHandler(&lockedWriter{w: &logs, mu: &mu}, nil))
	opts = append(opts, OnReload(func(ev ReloadEvent) { events <- ev }), WithLogger(logger), WithDebounce(50*time.Millisecond))
	e, err := NewEngine([]string{dir}, opts...)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Watch(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return e, events, &logs
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func nextEvent(t *testing.T, events <-chan ReloadEvent) ReloadEvent {
	t.Helper()
	select {
	case ev := <-events:
		return ev
	case <-time.After(reloadTimeout):
		t.Fatalf("no reload within %s", reloadTimeout)
		return ReloadEvent{}
	}
}

func matchedTagged(t *testing.T, e *Engine) bool {
	t.Helper()
	d, err := e.Evaluate(context.Background(), webImage()) // tag prod-1
	require.NoError(t, err)
	return len(d.Matched) == 1
}

func testHotReload(t *testing.T, opts ...EngineOption) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "inventory.yaml"), inventoryYAML)
	writeFile(t, filepath.Join(dir, "p.yaml"), tagPolicy("dev-1"))
	e, events, logs := watched(t, dir, opts...)
	first := e.PolicySet().Revision()
	assert.False(t, matchedTagged(t, e))

	// An edit is in force within 2 s.
	writeFile(t, filepath.Join(dir, "p.yaml"), tagPolicy("prod-1"))
	ev := nextEvent(t, events)
	require.NoError(t, ev.Err)
	assert.Equal(t, []string{"tagged"}, ev.Modified)
	assert.Equal(t, first, ev.OldRevision)
	assert.NotEqual(t, first, ev.NewRevision)
	assert.True(t, matchedTagged(t, e))
	good := e.PolicySet().Revision()

	// A broken edit keeps the last good set.
	writeFile(t, filepath.Join(dir, "p.yaml"), policy("tagged", "  match: image.tag ==\n"+blockProd))
	ev = nextEvent(t, events)
	require.Error(t, ev.Err)
	assert.Contains(t, ev.Err.Error(), "p.yaml:7:")
	assert.Equal(t, good, e.PolicySet().Revision())
	assert.True(t, matchedTagged(t, e))

	// Fixing it recovers; a new file is picked up too.
	writeFile(t, filepath.Join(dir, "p.yaml"), tagPolicy("dev-1"))
	ev = nextEvent(t, events)
	require.NoError(t, ev.Err)
	assert.False(t, matchedTagged(t, e))
	writeFile(t, filepath.Join(dir, "q.yaml"), policy("extra", "  match: \"true\"\n"+blockProd))
	ev = nextEvent(t, events)
	require.NoError(t, ev.Err)
	assert.Equal(t, []string{"extra"}, ev.Added)
	assert.Equal(t, 2, ev.Policies)

	require.NoError(t, os.Remove(filepath.Join(dir, "q.yaml")))
	ev = nextEvent(t, events)
	require.NoError(t, ev.Err)
	assert.Equal(t, []string{"extra"}, ev.Removed)

	assert.Contains(t, logs.String(), "policy reload failed; the previous policy set stays in force")
}

func TestEngineHotReloadEvents(t *testing.T) { testHotReload(t) }

func TestEngineHotReloadPolling(t *testing.T) { testHotReload(t, WithPolling(20*time.Millisecond)) }

func TestEngineStartsOnlyFromAGoodSet(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "p.yaml"), policy("p", "  match: image.nope\n"+blockProd))
	_, err := NewEngine([]string{dir})
	require.Error(t, err)
	assert.True(t, strings.Contains(err.Error(), "undefined field 'nope'"), err)
}

func TestEngineReloadWithoutChangeDoesNothing(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "p.yaml"), inventoryYAML+tagPolicy("x"))
	calls := 0
	e, err := NewEngine([]string{dir}, OnReload(func(ReloadEvent) { calls++ }))
	require.NoError(t, err)
	ev := e.Reload(context.Background())
	assert.Equal(t, ReloadEvent{}, ev)
	assert.Zero(t, calls)
}

func TestEngineOptionsValidate(t *testing.T) {
	for _, opt := range []EngineOption{WithLogger(nil), WithDebounce(-1), WithPolling(-time.Second), OnReload(nil)} {
		_, err := NewEngine([]string{"."}, opt)
		assert.Error(t, err)
	}
	_, err := NewEngine(nil)
	assert.ErrorContains(t, err, "no policy paths")
}
