package actions_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/celpolicy/celpolicy/actions"
	"github.com/celpolicy/celpolicy/conditions"
	"github.com/celpolicy/celpolicy/engine"
)

// hook is a loopback webhook that answers from a script, then 200.
type hook struct {
	mu      sync.Mutex
	answers []int
	bodies  [][]byte
	headers []http.Header
}

func newHook(t *testing.T, answers ...int) (*hook, string) {
	h := &hook{answers: answers}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.bodies = append(h.bodies, body)
		h.headers = append(h.headers, r.Header.Clone())
		status := http.StatusOK
		if len(h.answers) > 0 {
			status, h.answers = h.answers[0], h.answers[1:]
		}
		h.mu.Unlock()
		if status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "7")
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	return h, srv.URL + "/hooks/images"
}

func notifyTask(url string) actions.Task {
	img := &conditions.Image{Registry: "127.0.0.1:5000", Repository: "team/app", Tag: "v1",
		Reference: "127.0.0.1:5000/team/app:v1", Digest: "sha256:" + string(bytes.Repeat([]byte("a"), 64))}
	dec := &engine.Decision{Image: engine.ImageRef{Reference: img.Reference, Digest: img.Digest}, Allowed: true,
		Targets: map[string]*engine.Verdict{"mirror": {Verdict: "blocked", Policy: "p", Reason: "no scan"}}}
	return actions.Task{Type: engine.ActionNotify, Policy: "p", Image: img, Decision: dec,
		Action: &engine.PlannedAction{Type: engine.ActionNotify, Policy: "p", Webhook: url}}
}

func TestNotify(t *testing.T) {
	secret := []byte("s3cret")
	tests := []struct {
		name        string
		answers     []int
		secret      bool
		dryRun      bool
		wantErr     string
		wantPosts   int
		wantWaits   []time.Duration // exact waits; nil: only counted
		wantWaitCnt int
	}{
		{name: "signed event", answers: nil, secret: true, wantPosts: 1},
		{name: "unsigned without a secret", wantPosts: 1},
		{name: "retried after 503 and 429 with its Retry-After", answers: []int{503, 429}, secret: true, wantPosts: 3, wantWaitCnt: 2},
		{name: "a 400 is not retried", answers: []int{400}, wantPosts: 1, wantErr: "answered 400"},
		{name: "gives up after the retries", answers: []int{500, 500, 500}, wantPosts: 3, wantErr: "answered 500", wantWaitCnt: 2},
		{name: "dry run sends nothing", dryRun: true, wantPosts: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, url := newHook(t, tc.answers...)
			clock := &instantClock{}
			var audit bytes.Buffer
			opts := []actions.Option{actions.WithClock(clock), actions.WithRetries(2),
				actions.WithLogger(slog.New(slog.NewJSONHandler(&audit, nil)))}
			if tc.secret {
				opts = append(opts, actions.WithWebhookSecret(func(u string) []byte {
					assert.Equal(t, url, u)
					return secret
				}))
			}
			n, err := actions.NewNotifier(opts...)
			require.NoError(t, err)
			task := notifyTask(url)
			task.DryRun = tc.dryRun
			res, err := n.Execute(context.Background(), task)
			h.mu.Lock()
			defer h.mu.Unlock()
			assert.Len(t, h.bodies, tc.wantPosts)
			assert.Len(t, clock.Waits(), tc.wantWaitCnt)
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				assert.Equal(t, actions.Failed, res.Outcome)
				assert.Contains(t, audit.String(), `"level":"ERROR"`)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, actions.Notified, res.Outcome)
			if tc.dryRun {
				assert.True(t, res.DryRun)
				return
			}
			body, hdr := h.bodies[len(h.bodies)-1], h.headers[len(h.headers)-1]
			assert.Equal(t, "application/json", hdr.Get("Content-Type"))
			assert.Equal(t, actions.EventDecision, hdr.Get(actions.EventHeader))
			assert.NotEmpty(t, hdr.Get(actions.DeliveryHeader))
			for _, earlier := range h.headers {
				assert.Equal(t, hdr.Get(actions.DeliveryHeader), earlier.Get(actions.DeliveryHeader), "a retry repeats the delivery id")
			}
			if tc.secret {
				got := hdr.Get(actions.SignatureHeader)
				assert.True(t, hmac.Equal([]byte(actions.Sign(secret, body)), []byte(got)), "signature %q", got)
				assert.Regexp(t, `^sha256=[0-9a-f]{64}$`, got)
			} else {
				assert.Empty(t, hdr.Get(actions.SignatureHeader))
			}
			var ev actions.Event
			require.NoError(t, json.Unmarshal(body, &ev))
			assert.Equal(t, "decision", ev.Type)
			assert.Equal(t, "p", ev.Policy)
			assert.Equal(t, epoch, ev.Time)
			assert.Equal(t, "127.0.0.1:5000/team/app:v1", ev.Image.Reference)
			assert.Equal(t, "no scan", ev.Decision.Targets["mirror"].Reason)
			if tc.wantWaitCnt == 2 && tc.answers[1] == 429 {
				assert.Equal(t, 7*time.Second, clock.Waits()[1], "Retry-After is honoured")
			}
		})
	}
}

// TestNotifyTimeout: a webhook that does not answer is given up on after
// the timeout, and reported.
func TestNotifyTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	n, err := actions.NewNotifier(actions.WithClock(&instantClock{}), actions.WithRetries(1),
		actions.WithWebhookTimeout(50*time.Millisecond))
	require.NoError(t, err)
	res, err := n.Execute(context.Background(), notifyTask(srv.URL))
	require.Error(t, err)
	assert.Equal(t, actions.Failed, res.Outcome)
	assert.Equal(t, 2, res.Attempts)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestBlock(t *testing.T) {
	var audit bytes.Buffer
	b, err := actions.NewBlocker(actions.WithLogger(slog.New(slog.NewJSONHandler(&audit, nil))))
	require.NoError(t, err)
	task := notifyTask("")
	task.Type, task.Target, task.Verdict, task.Action = engine.ActionBlock, "us-prod",
		&engine.Verdict{Verdict: "blocked", Policy: "require-scan", Reason: "no scan.status label"}, nil
	task.Policy = "require-scan"
	res, err := b.Execute(context.Background(), task)
	require.NoError(t, err)
	assert.Equal(t, actions.Result{Outcome: actions.Blocked, Detail: "no scan.status label"}, res)
	var rec map[string]any
	require.NoError(t, json.Unmarshal(audit.Bytes(), &rec))
	assert.Equal(t, "blocked", rec["msg"])
	assert.Equal(t, "require-scan", rec["policy"])
	assert.Equal(t, "us-prod", rec["target"])
	assert.Equal(t, "no scan.status label", rec["reason"])
}

func TestExecutorsLookup(t *testing.T) {
	called := false
	ex := actions.Executors{engine.ActionReplicate: actions.ExecutorFunc(func(ctx context.Context, t actions.Task) (actions.Result, error) {
		called = true
		return actions.Result{Outcome: actions.Copied}, nil
	})}
	res, err := ex.Execute(context.Background(), actions.Task{Type: engine.ActionReplicate})
	require.NoError(t, err)
	assert.True(t, called)
	assert.Equal(t, actions.Copied, res.Outcome)
	res, err = ex.Execute(context.Background(), actions.Task{Type: engine.ActionDelete})
	require.ErrorContains(t, err, `no executor for action type "delete"`)
	assert.Equal(t, actions.Failed, res.Outcome)
}
